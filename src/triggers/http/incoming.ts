/**
 * Reads an HTTP request off a node:http socket into an IncomingHttpRequest: the raw
 * request line split into path and query, header fields in arrival order with their
 * values decoded as UTF-8, and the body up to a limit. What a front door cannot accept
 * becomes a RequestRejection, which each front door renders in its own AWS shape.
 */
import type { IncomingMessage } from 'node:http';
import { isUtf8 } from 'node:buffer';
import type { IncomingHttpRequest } from '../types.ts';

export type RejectionKind = 'bad-request' | 'too-large';

/** A request refused before any function runs (front doors render it their own way). */
export class RequestRejection extends Error {
  override readonly name = 'RequestRejection';
  readonly kind: RejectionKind;
  constructor(kind: RejectionKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * Node hands header values over as latin1 strings (one char per byte). Front doors pass
 * UTF-8 on, as AWS does; bytes that are not UTF-8 are refused rather than guessed at.
 */
function decodeHeaderValue(name: string, latin1: string): string {
  // Plain ASCII is by far the common case and needs no copy.
  if (!/[^\x00-\x7f]/.test(latin1)) return latin1;
  const bytes = Buffer.from(latin1, 'latin1');
  if (!isUtf8(bytes)) throw new RequestRejection('bad-request', `The value of header ${name} is not valid UTF-8.`);
  return bytes.toString('utf8');
}

/**
 * The body, or RequestRejection('too-large'). An oversized body is still read to its end
 * (and dropped) before the answer, so the client sees the 413 rather than a reset while it
 * is still sending; past four times the limit the request is cut short.
 */
function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  const tooLarge = () => new RequestRejection('too-large', `Request body is over the ${limitBytes}-byte limit.`);
  if (declared > limitBytes * 4) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = declared > limitBytes;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limitBytes * 4) {
        req.off('data', onData);
        reject(tooLarge());
        return;
      }
      if (size > limitBytes) over = true;
      if (!over) chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => (over ? reject(tooLarge()) : resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))));
    req.on('error', reject);
  });
}

/**
 * Reads the whole request. `pathPrefix`, when the front door was reached through a
 * Nimbus path prefix (`/nimbus/apis/<id>`), is cut from the path first.
 */
export async function readIncoming(req: IncomingMessage, bodyLimitBytes: number, pathPrefix = ''): Promise<IncomingHttpRequest> {
  const receivedAtMs = Date.now();
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  let rawPath = q >= 0 ? url.slice(0, q) : url;
  const rawQuery = q >= 0 ? url.slice(q + 1) : '';
  if (pathPrefix) rawPath = rawPath.slice(pathPrefix.length) || '/';
  const headers: Array<readonly [string, string]> = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.push([raw[i]!, decodeHeaderValue(raw[i]!, raw[i + 1]!)]);
  const body = await readBody(req, bodyLimitBytes);
  return {
    method: req.method ?? 'GET',
    rawPath,
    rawQuery,
    headers,
    body,
    sourceIp: (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
    protocol: `HTTP/${req.httpVersion}`,
    receivedAtMs,
  };
}

/** The last value of a header (case-insensitive), or undefined. */
export function headerValue(request: IncomingHttpRequest, name: string): string | undefined {
  const lower = name.toLowerCase();
  let found: string | undefined;
  for (const [k, v] of request.headers) if (k.toLowerCase() === lower) found = v;
  return found;
}

/** Decodes a percent-encoded path; throws RequestRejection when it is not valid UTF-8. */
export function decodePath(rawPath: string): string {
  if (!rawPath.includes('%')) return rawPath;
  try {
    return decodeURIComponent(rawPath);
  } catch {
    throw new RequestRejection('bad-request', `The path ${rawPath} is not valid percent-encoded UTF-8.`);
  }
}
