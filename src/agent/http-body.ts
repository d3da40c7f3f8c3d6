/**
 * HTTP plumbing shared by the agent's HTTP intakes (trace intake, OTLP receiver): reading a
 * request body into memory with a byte limit, JSON replies, listen and close. The limit is checked against Content-Length before anything is
 * read and against the bytes actually received (chunked bodies have no length), and again after
 * gzip/deflate decoding so that a small compressed body cannot expand without bound.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { gunzip, inflate } from 'node:zlib';

/** The body (or its decoded form) is larger than the intake accepts: answer 413. */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
  readonly limitBytes: number;
  constructor(limitBytes: number) {
    super(`request body exceeds ${limitBytes} bytes`);
    this.limitBytes = limitBytes;
  }
}

/** The body could not be read or decoded (unknown Content-Encoding, corrupt gzip, aborted upload): answer 400/415. */
export class BodyReadError extends Error {
  override readonly name = 'BodyReadError';
  /** The status an intake should answer with. */
  readonly statusCode: number;
  constructor(message: string, statusCode = 400, options?: { cause?: unknown }) {
    super(message, options);
    this.statusCode = statusCode;
  }
}

export interface ReadBodyOptions {
  maxBytes: number;
  /** Decode `Content-Encoding: gzip|deflate` (OTLP exporters compress); other encodings are refused. */
  decodeContentEncoding?: boolean;
}

export async function readBody(req: IncomingMessage, options: ReadBodyOptions): Promise<Buffer> {
  const { maxBytes } = options;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    // Keep the connection usable for the 413: discard what the client still sends.
    req.resume();
    throw new BodyTooLargeError(maxBytes);
  }
  const raw = await collect(req, maxBytes);
  if (!options.decodeContentEncoding) return raw;
  return decodeContentEncoding(raw, req.headers['content-encoding'], maxBytes);
}

function collect(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    const onData = (chunk: Buffer): void => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > maxBytes) {
        // Stop keeping bytes but go on draining, so the client can read the 413 instead of a reset.
        tooLarge = true;
        chunks.length = 0;
        reject(new BodyTooLargeError(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (!tooLarge) resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    });
    // After 'end' this is a no-op (the promise is settled); before it, the client went away mid-body.
    req.once('close', () => reject(new BodyReadError('request closed before its body was complete')));
    req.once('error', (error) => reject(new BodyReadError(`request body could not be read: ${error.message}`, 400, { cause: error })));
  });
}

async function decodeContentEncoding(raw: Buffer, header: string | undefined, maxBytes: number): Promise<Buffer> {
  const encoding = (header ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return raw;
  const decode = encoding === 'gzip' || encoding === 'x-gzip' ? gunzip : encoding === 'deflate' ? inflate : undefined;
  if (!decode) throw new BodyReadError(`Content-Encoding ${encoding} is not supported (use gzip or none)`, 415);
  return new Promise((resolve, reject) => {
    decode(raw, { maxOutputLength: maxBytes }, (error, decoded) => {
      if (!error) return resolve(decoded);
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return reject(new BodyTooLargeError(maxBytes));
      reject(new BodyReadError(`request body is not valid ${encoding}: ${error.message}`, 400, { cause: error }));
    });
  });
}

/**
 * Resolves once the rest of the request's body has been read and discarded, or after
 * `maxWaitMs`. An intake that refuses an oversized upload answers only then: a reply sent
 * with `Connection: close` while the client is still writing resets the connection, and the
 * client sees a broken pipe instead of the 413 (what clients inside an environment got).
 */
export function requestDrained(req: IncomingMessage, maxWaitMs: number): Promise<void> {
  if (req.complete || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      req.off('end', done);
      req.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, maxWaitMs);
    req.once('end', done);
    req.once('close', done);
    req.resume();
  });
}

/** How long a refused oversized upload may keep sending before the 413 goes out regardless. */
const oversizedDrainWaitMs = 5000;

/** Answers 413 once the client has finished sending (see requestDrained), then closes the connection. */
export function refuseOversized(req: IncomingMessage, res: ServerResponse, body: string): void {
  res.setHeader('connection', 'close');
  void requestDrained(req, oversizedDrainWaitMs).then(() => {
    if (!res.headersSent && !res.destroyed) sendJson(res, 413, body);
  });
}

export function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Resolves with the bound port (the one picked when `port` is 0). */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

/** Idempotent. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Keep-alive connections from tracers and SDKs would otherwise hold close() open until they time out.
    server.closeAllConnections();
  });
}
