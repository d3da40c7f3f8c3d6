/**
 * The HTTP server of one environment on 127.0.0.1:<port> (AWS_LAMBDA_RUNTIME_API): the
 * Runtime API 2018-06-01 here, the Extensions API (extensions-api.ts) and the Telemetry
 * and Logs APIs (telemetry-api.ts) installed beside it, as Lambda serves them all on one
 * port. HTTP only: each handler validates the request and calls one method of a core,
 * which owns the state. A refused transition is a 403 InvalidStateTransition, as in
 * Lambda's runtime interface emulator.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import FindMyWay from 'find-my-way';

/**
 * Lambda's limit on a streamed response: 200 MB in the current API reference (it was a
 * 20 MB soft limit before 2025).
 */
export const maxStreamedResponseBytes = 200 * 1024 * 1024;

/** Lambda's hard limit on a buffered response: 6 MiB + 100 bytes (RIE interop.MaxPayloadSize). */
export const maxRuntimeResponseBytes = 6 * 1024 * 1024 + 100;

export interface RuntimeApiReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export const accepted: RuntimeApiReply = { status: 202, body: { status: 'OK' } };

export function errorReply(status: number, errorType: string, errorMessage: string): RuntimeApiReply {
  return { status, body: { errorMessage, errorType } };
}

/** When the runtime's answer arrived: its first byte (headers) and its last, in performance.now() ms. */
export interface ResponseTiming {
  startedAt: number;
  endedAt: number;
}

/** What the environment core offers the Runtime API. */
export interface RuntimeApiCore {
  /** A runtime long-polls for its next event; the core answers `res` when one comes. */
  next(res: ServerResponse): RuntimeApiReply | undefined;
  response(requestId: string, body: Buffer, contentType: string | undefined, timing: ResponseTiming): RuntimeApiReply;
  /** The response was larger than the limit; the body was not kept. */
  responseTooLarge(requestId: string, timing: ResponseTiming): RuntimeApiReply;
  /** A streamed response (response mode `streaming`); answered when the stream ends. */
  responseStream(requestId: string, req: IncomingMessage, contentType: string | undefined, startedAt: number): Promise<RuntimeApiReply>;
  error(requestId: string, body: Buffer, errorType: string | undefined, timing: ResponseTiming): RuntimeApiReply;
  initError(body: Buffer, errorType: string | undefined): RuntimeApiReply;
}

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string | undefined>) => void;

/** Adds routes of another API surface to the environment's server. */
export type RouteInstaller = (route: (method: 'GET' | 'POST' | 'PUT', path: string, handler: RouteHandler) => void) => void;

export function send(res: ServerResponse, reply: RuntimeApiReply): void {
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify(reply.body);
  res.writeHead(reply.status, { ...reply.headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Reads a body up to `limit` bytes; past it, drains the rest and resolves undefined. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(over ? undefined : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

export const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Runs an async handler; a failure becomes a 500 (never an unhandled rejection). */
export async function respond(req: IncomingMessage, res: ServerResponse, work: () => Promise<RuntimeApiReply | undefined>): Promise<void> {
  try {
    const reply = await work();
    if (reply) send(res, reply);
  } catch (err) {
    send(res, errorReply(500, 'ServiceException', (err as Error).message));
    req.destroy();
  }
}

export class RuntimeApiServer {
  readonly #server: http.Server;
  readonly #core: RuntimeApiCore;
  #closed = false;

  constructor(core: RuntimeApiCore, installers: readonly RouteInstaller[] = []) {
    this.#core = core;
    const router = FindMyWay({
      defaultRoute: (_req, res) => send(res, errorReply(404, 'NotFound', 'Not found')),
    });
    router.on('GET', '/2018-06-01/runtime/invocation/next', (_req, res) => {
      const reply = this.#core.next(res);
      if (reply) send(res, reply);
    });
    router.on('POST', '/2018-06-01/runtime/invocation/:requestId/response', (req, res, params) => {
      const startedAt = performance.now();
      void respond(req, res, async () => {
        const mode = header(req, 'lambda-runtime-function-response-mode');
        if (mode === 'streaming') return this.#core.responseStream(params.requestId!, req, header(req, 'content-type'), startedAt);
        if (mode !== undefined) {
          req.resume();
          return errorReply(400, 'InvalidFunctionResponseMode', 'Invalid function response mode');
        }
        const body = await readBody(req, maxRuntimeResponseBytes);
        const timing = { startedAt, endedAt: performance.now() };
        if (body === undefined) return this.#core.responseTooLarge(params.requestId!, timing);
        return this.#core.response(params.requestId!, body, header(req, 'content-type'), timing);
      });
    });
    router.on('POST', '/2018-06-01/runtime/invocation/:requestId/error', (req, res, params) => {
      const startedAt = performance.now();
      void respond(req, res, async () => {
        const body = (await readBody(req, maxRuntimeResponseBytes)) ?? Buffer.from('{}');
        return this.#core.error(params.requestId!, body, header(req, 'lambda-runtime-function-error-type'), { startedAt, endedAt: performance.now() });
      });
    });
    router.on('POST', '/2018-06-01/runtime/init/error', (req, res) => {
      void respond(req, res, async () => {
        const body = (await readBody(req, maxRuntimeResponseBytes)) ?? Buffer.from('{}');
        return this.#core.initError(body, header(req, 'lambda-runtime-function-error-type'));
      });
    });
    for (const install of installers) install((method, path, handler) => router.on(method, path, handler));
    this.#server = http.createServer((req, res) => router.lookup(req, res));
    // Long-polls must never time out on the server side (a runtime may wait for minutes).
    this.#server.requestTimeout = 0;
    this.#server.headersTimeout = 0;
    this.#server.keepAliveTimeout = 0;
  }

  /** Listens on an ephemeral loopback port; returns `127.0.0.1:<port>`. */
  async listen(): Promise<string> {
    if (this.#closed) throw new Error('The environment is stopping.');
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => resolve());
    });
    if (this.#closed) {
      // Closed while it was starting to listen: do not leave the port open.
      this.#server.close();
      throw new Error('The environment is stopping.');
    }
    const { port } = this.#server.address() as AddressInfo;
    return `127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (!this.#server.listening) return;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
