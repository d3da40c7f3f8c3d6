/**
 * RESPONSE_STREAM function URLs: turns a streamed function response into HTTP as it
 * arrives. A response made with `awslambda.HttpResponseStream.from` has content type
 * `application/vnd.awslambda.http-integration-response` and starts with a JSON prelude
 * (`statusCode`, `headers`, `cookies`) followed by 8 NUL bytes; anything else is the body
 * as is, with status 200 (lambda-interfaces.md §1.5).
 */
import type { StreamedOutcome } from '../../environments/types.ts';
import type { HttpResult } from '../types.ts';
import { headerField, MalformedResponse } from '../http/outgoing.ts';

export const httpIntegrationContentType = 'application/vnd.awslambda.http-integration-response';
const delimiter = Buffer.alloc(8);
/** A prelude longer than this is not a prelude. */
const maxPreludeBytes = 64 * 1024;

interface Prelude {
  statusCode?: unknown;
  headers?: Record<string, unknown>;
  cookies?: unknown;
}

export async function streamedResult(outcome: StreamedOutcome): Promise<HttpResult> {
  if (outcome.contentType !== httpIntegrationContentType) {
    return { status: 200, headers: [['Content-Type', outcome.contentType ?? 'application/octet-stream']], body: Buffer.alloc(0), stream: outcome.body };
  }
  const iterator = outcome.body[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let at = -1;
  while (at < 0) {
    const next = await iterator.next();
    if (next.done) break;
    head = Buffer.concat([head, next.value]);
    at = head.indexOf(delimiter);
    if (at < 0 && head.length > maxPreludeBytes) throw new MalformedResponse('The streamed HTTP response has no prelude delimiter.');
  }
  let prelude: Prelude = {};
  let rest: Buffer;
  if (at >= 0) {
    try {
      prelude = JSON.parse(head.subarray(0, at).toString('utf8')) as Prelude;
    } catch {
      throw new MalformedResponse('The streamed HTTP response prelude is not JSON.');
    }
    rest = head.subarray(at + delimiter.length);
  } else {
    rest = head;
  }
  const status = prelude.statusCode === undefined ? 200 : Number(prelude.statusCode);
  if (!Number.isInteger(status) || status < 100 || status > 599) throw new MalformedResponse('The streamed HTTP response has an invalid statusCode.');
  const headers: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(prelude.headers ?? {})) {
    const field = headerField(name, value);
    if (field) headers.push(field);
  }
  if (Array.isArray(prelude.cookies)) for (const cookie of prelude.cookies) headers.push(['set-cookie', String(cookie)]);
  async function* body(): AsyncIterable<Buffer> {
    if (rest.length > 0) yield rest;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { status, headers, body: Buffer.alloc(0), stream: body() };
}
