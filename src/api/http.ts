/**
 * The control API's HTTP plumbing: a find-my-way router on node:http, bounded body
 * reading, JSON parsing, and one error mapper that renders every failure in AWS's
 * restJson1 error shape. Route handlers only translate HTTP into calls on the domain.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import {
  PlatformError,
  ServiceException,
  InvalidRequestContentException,
  RequestTooLargeException,
  UnknownOperationException,
} from '../errors/platform-errors.ts';
import type { Logger } from '../logging/logger.ts';

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** Objects are sent as JSON; Buffers and strings as they are. */
  body?: unknown;
  /** A body written piece by piece as it is produced (chunked), instead of `body`. */
  stream?: AsyncIterable<Buffer>;
}

export class RequestContext {
  readonly req: IncomingMessage;
  readonly params: Record<string, string | undefined>;
  readonly query: URLSearchParams;
  readonly requestId = randomUUID();
  readonly #operation: string;

  constructor(req: IncomingMessage, params: Record<string, string | undefined>, operation: string) {
    this.req = req;
    this.params = params;
    this.#operation = operation;
    const q = req.url!.indexOf('?');
    this.query = new URLSearchParams(q >= 0 ? req.url!.slice(q + 1) : '');
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  }

  /** The raw body; past `limitBytes` the request is refused with RequestTooLargeException. */
  body(limitBytes: number): Promise<Buffer> {
    const declared = Number(this.req.headers['content-length'] ?? 0);
    if (declared > limitBytes) return Promise.reject(this.#tooLarge(limitBytes));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      this.req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limitBytes) {
          reject(this.#tooLarge(limitBytes));
          this.req.removeAllListeners('data');
          this.req.resume();
          return;
        }
        chunks.push(chunk);
      });
      this.req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
      this.req.on('error', reject);
    });
  }

  /** The body parsed as a JSON object ({} when empty). */
  async json(limitBytes: number): Promise<Record<string, unknown>> {
    const raw = await this.body(limitBytes);
    if (raw.length === 0) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new InvalidRequestContentException(`Could not parse request body into json: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new InvalidRequestContentException('Could not parse request body into json: the body must be a JSON object.');
    }
    return parsed as Record<string, unknown>;
  }

  #tooLarge(limitBytes: number): RequestTooLargeException {
    return new RequestTooLargeException(`Request must be smaller than ${limitBytes} bytes for the ${this.#operation} operation`);
  }
}

export type RouteHandler = (ctx: RequestContext) => Promise<Reply> | Reply;

export interface Route {
  method: HTTPMethod;
  path: string;
  /** AWS operation name, used in messages and logs. */
  operation: string;
  handler: RouteHandler;
}

function renderError(err: unknown, requestId: string, logger: Logger): Reply {
  const known = err instanceof PlatformError ? err : undefined;
  if (!known) logger.error('unhandled error in control API', { requestId, error: (err as Error)?.stack ?? String(err) });
  const e = known ?? new ServiceException('An internal error occurred. See the Nimbus server log for details.');
  return {
    status: e.statusCode,
    headers: { 'x-amzn-ErrorType': e.name, ...e.extraHeaders },
    body: { Type: e.fault, message: e.message, ...e.extraBody },
  };
}

async function sendStream(res: ServerResponse, reply: Reply, stream: AsyncIterable<Buffer>, requestId: string): Promise<void> {
  res.writeHead(reply.status, { 'x-amzn-RequestId': requestId, ...reply.headers });
  res.flushHeaders();
  try {
    for await (const chunk of stream) {
      if (res.destroyed) break;
      res.write(chunk);
    }
  } finally {
    res.end();
  }
}

function send(res: ServerResponse, reply: Reply, requestId: string): void {
  if (reply.stream) {
    void sendStream(res, reply, reply.stream, requestId).catch(() => res.destroy());
    return;
  }
  const headers: Record<string, string | number> = { 'x-amzn-RequestId': requestId, ...reply.headers };
  let payload: Buffer | string | undefined;
  if (reply.body === undefined) payload = undefined;
  else if (Buffer.isBuffer(reply.body) || typeof reply.body === 'string') payload = reply.body;
  else {
    payload = JSON.stringify(reply.body);
    headers['Content-Type'] ??= 'application/json';
  }
  headers['Content-Length'] = payload === undefined ? 0 : Buffer.byteLength(payload);
  res.writeHead(reply.status, headers);
  res.end(payload);
}

/**
 * Tried before the control API's router: answers requests meant for an HTTP front door
 * (function URLs, API Gateway, ALB; chosen by Host or path prefix) and returns true, or
 * returns false to leave the request to the control API.
 */
export type FrontDoorHook = (req: IncomingMessage, res: ServerResponse) => boolean;

export class ApiServer {
  readonly #server: http.Server;
  readonly #logger: Logger;

  constructor(routes: Route[], logger: Logger, frontDoor?: FrontDoorHook) {
    this.#logger = logger;
    const router = FindMyWay({
      ignoreTrailingSlash: true,
      // Layer names reach 140 characters and ARNs more: find-my-way's default is 100.
      maxParamLength: 2048,
      defaultRoute: (req, res) => {
        const ctx = new RequestContext(req, {}, 'Unknown');
        const err = new UnknownOperationException(`No operation at ${req.method} ${req.url?.split('?')[0]}.`);
        send(res, renderError(err, ctx.requestId, logger), ctx.requestId);
        req.resume();
      },
    });
    for (const route of routes) {
      router.on(route.method, route.path, (req, res, params) => {
        void this.#handle(route, new RequestContext(req, params, route.operation), res);
      });
    }
    this.#server = http.createServer((req, res) => {
      if (frontDoor?.(req, res)) return;
      router.lookup(req, res);
    });
    // Invokes can run for the whole function timeout (up to 15 minutes).
    this.#server.requestTimeout = 0;
    this.#server.keepAliveTimeout = 65_000;
  }

  async #handle(route: Route, ctx: RequestContext, res: ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      reply = await route.handler(ctx);
    } catch (err) {
      reply = renderError(err, ctx.requestId, this.#logger);
    }
    if (!res.destroyed) send(res, reply, ctx.requestId);
    // Unread request bodies would stall a keep-alive connection.
    if (!ctx.req.complete) ctx.req.resume();
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve());
    });
    return this.#server.address() as AddressInfo;
  }

  /** Stops accepting connections; in-flight requests may finish. */
  async close(): Promise<void> {
    this.#server.closeIdleConnections();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    setTimeout(() => this.#server.closeAllConnections(), 2000).unref();
    await closed;
  }
}
