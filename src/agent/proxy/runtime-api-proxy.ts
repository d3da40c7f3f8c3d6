/**
 * The agent's Runtime API proxy. `/opt/nimbus-wrapper` points the runtime's
 * AWS_LAMBDA_RUNTIME_API here; every request is forwarded to the real Runtime API, so the
 * agent sees each event on its way to the handler and each response and error on its way
 * back (datadog-extension-notes.md §4, "Proxy").
 *
 * It sits in the path of every invoke, so it streams: bodies are piped, never buffered,
 * except the event of `/next` (at most Lambda's 6 MB, which interceptors must see whole
 * before the handler does) and a bounded copy (tee) of responses and errors. Interceptors
 * are told about a response only after it has been forwarded, so they never delay it.
 */
import http, { type ClientRequest, type IncomingMessage, type OutgoingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InterceptVerdict, InvocationEventInfo, ProxyInterceptor } from '../model.ts';

export interface RuntimeApiProxyOptions {
  host: string;
  port: number;
  /** `host:port` of the real Runtime API. */
  upstream: string;
  interceptors: ProxyInterceptor[];
  /** How much of a response body is kept for interceptors (6 MiB); past it they get undefined. */
  teeLimitBytes?: number;
  onError?(message: string): void;
}

export interface RuntimeApiProxy {
  port: number;
  close(): Promise<void>;
}

/** Lambda's hard limit on a payload (RIE's interop.MaxPayloadSize: 6 MiB + 100 bytes). */
const maxEventBytes = 6 * 1024 * 1024 + 100;
const defaultTeeLimit = 6 * 1024 * 1024;
const route = /^\/([^/?]+)\/runtime\/invocation\/(?:(next)|([^/?]+)\/(response|error))(?:\?|$)/;
/** Connection-specific fields: each side of the proxy has its own connection. */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'host']);

class UpstreamUnavailable extends Error {
  override readonly name = 'UpstreamUnavailable';
  readonly retryable: boolean;
  constructor(message: string, retryable = false) {
    super(message);
    this.retryable = retryable;
  }
}

function safeDecode(id: string): string {
  try {
    return decodeURIComponent(id);
  } catch {
    return id;
  }
}

function splitHostPort(upstream: string): { host: string; port: number } {
  const colon = upstream.lastIndexOf(':');
  const port = Number(upstream.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new TypeError(`upstream must be host:port, got ${JSON.stringify(upstream)}`);
  return { host: upstream.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port };
}

/** rawHeaders without hop-by-hop fields, plus `host` for the other side. */
function forwardable(raw: string[], host?: string): string[] {
  const out: string[] = host ? ['Host', host] : [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!hopByHop.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

function trailerPairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** Pipes a message on, then its trailers (streamed responses declare error trailers), then ends. */
function pipeWithTrailers(src: IncomingMessage, dst: OutgoingMessage, done?: () => void): void {
  // pipe() does not pass a failure on: a side that breaks mid-body must not leave the other waiting.
  const broken = (): void => {
    if (!dst.writableFinished) dst.destroy();
  };
  src.once('aborted', broken);
  src.once('error', broken);
  src.pipe(dst, { end: false });
  src.once('end', () => {
    if (src.rawTrailers.length > 0) dst.addTrailers(trailerPairs(src.rawTrailers));
    dst.end();
    done?.();
  });
}

const isThenable = (v: unknown): v is PromiseLike<unknown> => typeof (v as PromiseLike<unknown> | undefined)?.then === 'function';

export async function startRuntimeApiProxy(options: RuntimeApiProxyOptions): Promise<RuntimeApiProxy> {
  const upstream = splitHostPort(options.upstream);
  const upstreamHost = options.upstream;
  const interceptors = options.interceptors;
  const teeLimit = options.teeLimitBytes ?? defaultTeeLimit;
  const onError = options.onError ?? (() => {});
  // Keep-alive: the runtime calls /next, /response, /next... for its whole life. No
  // timeouts anywhere: /next waits as long as the environment is idle.
  const agent = new http.Agent({ keepAlive: true });

  const request = (method: string, path: string, headers: string[]): ClientRequest =>
    http.request({ agent, host: upstream.host, port: upstream.port, method, path, headers });

  /** A request with a small (or no) body, its answer awaited. */
  const send = (method: string, path: string, headers: string[], body?: Buffer): { req: ClientRequest; response: Promise<IncomingMessage> } => {
    const req = request(method, path, headers);
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive socket that the upstream closed while idle: safe to send again once.
        const retryable = req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
        reject(new UpstreamUnavailable(`${method} ${path}: ${err.message}`, retryable));
      });
    });
    req.end(body);
    return { req, response };
  };

  const badGateway = (res: ServerResponse, message: string): void => {
    // The caller left first (and the upstream request was cut because of it): nothing to say.
    if (res.destroyed) return;
    onError(`Runtime API proxy: ${message}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = JSON.stringify({ errorMessage: `The Runtime API at ${upstreamHost} is unreachable: ${message}`, errorType: 'Runtime.ProxyUpstreamUnavailable' });
    res.writeHead(502, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };

  /**
   * Forwards a request with its body streamed. `tee` sees each chunk on its way;
   * `after(status)` runs once the upstream's answer has been passed back in full.
   */
  const forward = (req: IncomingMessage, res: ServerResponse, tee?: (chunk: Buffer) => void, after?: (status: number) => void): void => {
    const up = request(req.method ?? 'GET', req.url ?? '/', forwardable(req.rawHeaders, upstreamHost));
    up.once('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, forwardable(answer.rawHeaders));
      pipeWithTrailers(answer, res, () => after?.(answer.statusCode ?? 0));
    });
    up.once('error', (err) => badGateway(res, `${req.method} ${req.url}: ${err.message}`));
    // The runtime went away before the upstream answered: nothing waits for the answer.
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    if (tee) req.on('data', tee);
    pipeWithTrailers(req, up);
  };

  const intercept = async (info: InvocationEventInfo): Promise<Buffer | undefined> => {
    let block: Buffer | undefined;
    // Every interceptor sees every event, even one already blocked: the tracker still
    // needs its span, threat detection its signal.
    for (const interceptor of interceptors) {
      try {
        let verdict: InterceptVerdict | Promise<InterceptVerdict> = interceptor.onInvocationEvent(info);
        if (isThenable(verdict)) verdict = await verdict;
        if (verdict && block === undefined && Buffer.isBuffer(verdict.respond)) block = verdict.respond;
      } catch (err) {
        onError(`Runtime API proxy: an interceptor failed on event ${info.requestId}: ${(err as Error)?.message ?? String(err)}`);
      }
    }
    return block;
  };

  const notify = (what: string, requestId: string, call: (i: ProxyInterceptor) => void): void => {
    for (const interceptor of interceptors) {
      try {
        call(interceptor);
      } catch (err) {
        onError(`Runtime API proxy: an interceptor failed on the ${what} of ${requestId}: ${(err as Error)?.message ?? String(err)}`);
      }
    }
  };

  /** Posts the interceptor's answer as the invocation's response; true when the Runtime API took it. */
  const answerOnBehalf = async (version: string, requestId: string, body: Buffer): Promise<boolean> => {
    const path = `/${version}/runtime/invocation/${encodeURIComponent(requestId)}/response`;
    let answer: IncomingMessage;
    try {
      answer = await send('POST', path, ['Host', upstreamHost, 'Content-Type', 'application/json', 'Content-Length', String(body.length)], body).response;
    } catch (err) {
      onError(`Runtime API proxy: the blocking response of ${requestId} could not be sent (${(err as Error).message}); the event goes to the handler`);
      return false;
    }
    answer.resume();
    const status = answer.statusCode ?? 0;
    if (status >= 200 && status < 300) return true;
    onError(`Runtime API proxy: the Runtime API refused the blocking response of ${requestId} (${status}); the event goes to the handler`);
    return false;
  };

  /** Reads at most `limit` bytes; `complete` false means more is pending (the stream is paused). */
  const readUpTo = (src: IncomingMessage, limit: number): Promise<{ chunks: Buffer[]; size: number; complete: boolean }> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const cleanup = (): void => {
        src.off('data', onData);
        src.off('end', onEnd);
        src.off('error', onFail);
        src.off('aborted', onAbort);
      };
      const onData = (chunk: Buffer): void => {
        chunks.push(chunk);
        size += chunk.length;
        if (size > limit) {
          src.pause();
          cleanup();
          resolve({ chunks, size, complete: false });
        }
      };
      const onEnd = (): void => {
        cleanup();
        resolve({ chunks, size, complete: true });
      };
      const onFail = (err: Error): void => {
        cleanup();
        reject(new UpstreamUnavailable(err.message));
      };
      const onAbort = (): void => onFail(new Error('the upstream closed the connection mid-body'));
      src.on('data', onData);
      src.once('end', onEnd);
      src.once('error', onFail);
      src.once('aborted', onAbort);
    });

  const next = async (req: IncomingMessage, res: ServerResponse, version: string): Promise<void> => {
    let current: ClientRequest | undefined;
    let gone = false;
    res.once('close', () => {
      if (res.writableFinished) return;
      gone = true;
      current?.destroy();
    });
    const headers = forwardable(req.rawHeaders, upstreamHost);
    req.resume();
    let retried = false;
    try {
      for (;;) {
        const call = send('GET', req.url ?? '/', headers);
        current = call.req;
        let answer: IncomingMessage;
        try {
          answer = await call.response;
        } catch (err) {
          if (err instanceof UpstreamUnavailable && err.retryable && !retried && !gone) {
            retried = true;
            continue;
          }
          throw err;
        }
        retried = false;
        const status = answer.statusCode ?? 502;
        const relayHeaders = forwardable(answer.rawHeaders);
        const requestId = answer.headers['lambda-runtime-aws-request-id'];
        if (status !== 200 || typeof requestId !== 'string') {
          res.writeHead(status, answer.statusMessage, relayHeaders);
          pipeWithTrailers(answer, res);
          return;
        }
        const read = await readUpTo(answer, maxEventBytes);
        if (!read.complete) {
          // Larger than any Lambda event: not inspected, but still delivered unchanged.
          onError(`Runtime API proxy: event ${requestId} is larger than ${maxEventBytes} bytes; passed through without interceptors`);
          res.writeHead(status, answer.statusMessage, relayHeaders);
          for (const chunk of read.chunks) res.write(chunk);
          pipeWithTrailers(answer, res);
          return;
        }
        const event = read.chunks.length === 1 ? read.chunks[0]! : Buffer.concat(read.chunks, read.size);
        const block = await intercept({ requestId, event, headers: answer.headers });
        if (block !== undefined && (await answerOnBehalf(version, requestId, block))) {
          notify('response', requestId, (i) => i.onInvocationResponse(requestId, block));
          if (gone) return;
          // The handler never sees the blocked event: ask for the next one on its behalf.
          continue;
        }
        if (gone) {
          onError(`Runtime API proxy: the runtime left before event ${requestId} could be delivered`);
          return;
        }
        res.writeHead(status, answer.statusMessage, relayHeaders);
        res.end(event);
        return;
      }
    } catch (err) {
      if (!gone) badGateway(res, (err as Error).message);
    }
  };

  const response = (req: IncomingMessage, res: ServerResponse, requestId: string): void => {
    let chunks: Buffer[] | undefined = [];
    let size = 0;
    const tee = (chunk: Buffer): void => {
      if (chunks === undefined) return;
      size += chunk.length;
      if (size > teeLimit) chunks = undefined;
      else chunks.push(chunk);
    };
    forward(req, res, tee, (status) => {
      if (status < 200 || status >= 300) return;
      // A streamed response that failed mid-way says so in its trailers (lambda-interfaces.md §1.5).
      const errorType = req.trailers['lambda-runtime-function-error-type'];
      if (errorType !== undefined) {
        const rawBody = req.trailers['lambda-runtime-function-error-body'];
        const body = rawBody ? Buffer.from(rawBody, 'base64') : Buffer.from('{}');
        notify('error', requestId, (i) => i.onInvocationError(requestId, body, errorType));
        return;
      }
      const body = chunks === undefined ? undefined : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      notify('response', requestId, (i) => i.onInvocationResponse(requestId, body));
    });
  };

  const error = (req: IncomingMessage, res: ServerResponse, requestId: string): void => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tee = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= teeLimit) chunks.push(chunk);
    };
    const errorType = req.headers['lambda-runtime-function-error-type'];
    forward(req, res, tee, (status) => {
      if (status < 200 || status >= 300) return;
      const body = size > teeLimit ? Buffer.from('{}') : Buffer.concat(chunks, size);
      notify('error', requestId, (i) => i.onInvocationError(requestId, body, typeof errorType === 'string' ? errorType : undefined));
    });
  };

  const server = http.createServer((req, res) => {
    const m = route.exec(req.url ?? '');
    if (m && m[2] === 'next' && req.method === 'GET') {
      void next(req, res, m[1]!);
    } else if (m && m[4] === 'response' && req.method === 'POST') {
      response(req, res, safeDecode(m[3]!));
    } else if (m && m[4] === 'error' && req.method === 'POST') {
      error(req, res, safeDecode(m[3]!));
    } else {
      forward(req, res);
    }
  });
  // A runtime may wait on /next for minutes, and its keep-alive socket must never be closed
  // under it (runtime clients do not retry a reset connection).
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 0;
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => onError(`Runtime API proxy: ${err.message}`));

  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}
