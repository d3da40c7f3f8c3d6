/**
 * Writing a front door's answer: header fields checked before anything is sent (a
 * function must not be able to make node:http throw half-way through a response), hop-
 * by-hop fields dropped and Content-Length computed, as AWS's front doors do.
 */
import type { ServerResponse } from 'node:http';
import type { HttpResult } from '../types.ts';

/** A function's answer a front door cannot turn into HTTP (rendered as that door's 502/500). */
export class MalformedResponse extends Error {
  override readonly name = 'MalformedResponse';
}

// RFC 9110 §5.1 field names are tokens; §5.5 values exclude CR, LF and NUL. node:http
// additionally refuses characters above U+00FF, so UTF-8 text is sent as its bytes.
const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const badValue = /[\r\n\0]/;

/** RFC 9110 §7.6.1 connection-specific fields, and what the platform computes itself. */
const platformOwned = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'content-length']);

/** Checks and normalizes one header field from a function; throws MalformedResponse. */
export function headerField(name: string, value: unknown): [string, string] | undefined {
  if (!token.test(name)) throw new MalformedResponse(`Response header name ${JSON.stringify(name)} is not an HTTP token.`);
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
  else throw new MalformedResponse(`Response header ${name} must be a string, got ${value === null ? 'null' : typeof value}.`);
  if (badValue.test(text)) throw new MalformedResponse(`Response header ${name} contains CR, LF or NUL.`);
  if (platformOwned.has(name.toLowerCase())) return undefined;
  // Non-latin1 text goes out as its UTF-8 bytes (node:http writes strings as latin1).
  return [name, /[^\x00-\xff]/.test(text) ? Buffer.from(text, 'utf8').toString('latin1') : text];
}

/** Writes a streamed answer chunk by chunk (chunked transfer), as the function produces it. */
async function writeStream(res: ServerResponse, result: HttpResult, stream: AsyncIterable<Buffer>, method: string): Promise<void> {
  const flat: string[] = [];
  for (const [k, v] of result.headers) flat.push(k, v);
  res.writeHead(result.status, flat);
  res.flushHeaders();
  try {
    for await (const chunk of stream) {
      if (res.destroyed) break;
      if (method !== 'HEAD') res.write(chunk);
    }
  } finally {
    res.end();
  }
}

export function writeResult(res: ServerResponse, result: HttpResult, method: string): void {
  if (res.destroyed) return;
  if (result.stream) {
    void writeStream(res, result, result.stream, method).catch(() => res.destroy());
    return;
  }
  const flat: string[] = [];
  for (const [k, v] of result.headers) flat.push(k, v);
  // RFC 9110 §6.4.1: 204 and 304 answers have no content (and so no Content-Length).
  const bodiless = result.status === 204 || result.status === 304;
  if (!bodiless) flat.push('Content-Length', String(result.body.length));
  if (result.statusMessage !== undefined) res.writeHead(result.status, result.statusMessage, flat);
  else res.writeHead(result.status, flat);
  // RFC 9110 §9.3.2: a HEAD answer carries the headers of a GET and no content.
  res.end(method === 'HEAD' || bodiless ? undefined : result.body);
}

/** A small JSON answer from the front door itself (errors, preflights). */
export function jsonResult(status: number, body: unknown, headers: Array<[string, string]> = []): HttpResult {
  return { status, headers: [['Content-Type', 'application/json'], ...headers], body: Buffer.from(JSON.stringify(body)) };
}
