/**
 * A raw HTTP/1.1 client for front-door tests: node:http, so that the Host header, repeated
 * header fields and bytes that are not UTF-8 go out exactly as written (fetch forbids
 * setting Host and normalizes headers), and the answer comes back with its raw headers.
 */
import http from 'node:http';
import net from 'node:net';
import { createHash, createHmac } from 'node:crypto';

export interface RawResponse {
  status: number;
  statusMessage: string;
  /** Header fields in order, names lower-cased. */
  headers: Array<[string, string]>;
  body: Buffer;
}

export interface RawRequest {
  port: number;
  host?: string;
  method?: string;
  path: string;
  headers?: Array<[string, string]>;
  body?: Buffer | string;
}

export function send(req: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const flat: string[] = [];
    if (req.host !== undefined) flat.push('Host', req.host);
    for (const [k, v] of req.headers ?? []) flat.push(k, v);
    if (req.body !== undefined) flat.push('Content-Length', String(Buffer.byteLength(req.body)));
    const r = http.request({ host: '127.0.0.1', port: req.port, method: req.method ?? 'GET', path: req.path, headers: flat, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers: Array<[string, string]> = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) headers.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
        resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(req.body);
  });
}

/** One header's values, in order. */
export function values(res: RawResponse, name: string): string[] {
  return res.headers.filter(([k]) => k === name.toLowerCase()).map(([, v]) => v);
}

/**
 * Writes a request byte for byte on a socket (for what node:http refuses to send, such as
 * header values that are not UTF-8) and returns the raw answer text.
 */
export function sendBytes(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
  });
}

/** SHA-256 / HMAC-SHA-256 from node:crypto in the shape @smithy/signature-v4 takes, for signing test requests. */
type Source = string | ArrayBuffer | ArrayBufferView;
const bytesOf = (d: Source): Buffer =>
  typeof d === 'string' ? Buffer.from(d, 'utf8') : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);

export class Sha256 {
  readonly #hash;
  constructor(secret?: Source) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytesOf(secret));
  }
  update(data: Source): void {
    this.#hash.update(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
}
