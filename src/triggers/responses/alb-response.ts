/**
 * ALB target answers to HTTP (lambda-interfaces.md §5.4): statusCode, optional
 * statusDescription (`"200 OK"`: its reason phrase is used), `headers` or, with
 * multi-value headers enabled on the target group, `multiValueHeaders`, and an optional
 * body (base64 when isBase64Encoded). ALB takes at most 1 MB of response JSON.
 */
import { decodeBase64Body } from '../http/body.ts';
import { headerField, MalformedResponse } from '../http/outgoing.ts';
import type { HttpResult } from '../types.ts';
import { isObject, optionalBoolean, optionalObject, optionalString, parsePayload, statusCodeOf } from './common.ts';

export const albMaxResponseBytes = 1024 * 1024;

export function albResponse(payload: Buffer, multiValueHeaders: boolean): HttpResult {
  if (payload.length > albMaxResponseBytes) throw new MalformedResponse(`The response is ${payload.length} bytes; ALB takes at most ${albMaxResponseBytes}.`);
  const value = parsePayload(payload);
  if (!isObject(value)) throw new MalformedResponse('The function must return an object with statusCode.');
  const status = statusCodeOf(value.statusCode);
  const description = optionalString(value.statusDescription, 'statusDescription');
  let statusMessage: string | undefined;
  if (description !== undefined) {
    const m = /^\d{3} ([\t\x20-\x7e]*)$/.exec(description);
    if (!m) throw new MalformedResponse(`statusDescription must look like "200 OK", got ${JSON.stringify(description)}.`);
    statusMessage = m[1];
  }
  const headers: Array<[string, string]> = [];
  if (multiValueHeaders) {
    for (const [name, values] of Object.entries(optionalObject(value.multiValueHeaders, 'multiValueHeaders'))) {
      if (!Array.isArray(values)) throw new MalformedResponse(`multiValueHeaders.${name} must be an array.`);
      for (const v of values) {
        const field = headerField(name, v);
        if (field) headers.push(field);
      }
    }
  } else {
    for (const [name, v] of Object.entries(optionalObject(value.headers, 'headers'))) {
      const field = headerField(name, v);
      if (field) headers.push(field);
    }
  }
  const text = optionalString(value.body, 'body') ?? '';
  let body: Buffer = Buffer.from(text, 'utf8');
  if (optionalBoolean(value.isBase64Encoded, 'isBase64Encoded')) {
    const decoded = decodeBase64Body(text);
    if (!decoded) throw new MalformedResponse('isBase64Encoded is true but body is not base64.');
    body = decoded;
  }
  return { status, statusMessage, headers, body };
}
