/**
 * Function answers in payload format 2.0 to HTTP (HTTP APIs, function URLs).
 *
 * A JSON value without `statusCode` is an inferred response: 200, `content-type:
 * application/json`, and the function's JSON output as the body, byte for byte (Lambda's
 * function URL guide shows `"Hello, world!"` arriving with its quotes, content-length
 * 15). An object with `statusCode` is read as {statusCode, headers, cookies, body,
 * isBase64Encoded}; each cookie becomes a `set-cookie` field. Anything else is malformed.
 */
import { decodeBase64Body } from '../http/body.ts';
import { headerField, MalformedResponse } from '../http/outgoing.ts';
import type { HttpResult } from '../types.ts';
import { isObject, optionalBoolean, optionalObject, optionalString, parsePayload, statusCodeOf } from './common.ts';

export function v2Response(payload: Buffer): HttpResult {
  const value = parsePayload(payload);
  if (!isObject(value) || !('statusCode' in value)) {
    return { status: 200, headers: [['Content-Type', 'application/json']], body: payload };
  }
  const status = statusCodeOf(value.statusCode);
  const headers: Array<[string, string]> = [];
  for (const [name, v] of Object.entries(optionalObject(value.headers, 'headers'))) {
    const field = headerField(name, v);
    if (field) headers.push(field);
  }
  if (!headers.some(([k]) => k.toLowerCase() === 'content-type')) headers.push(['Content-Type', 'application/json']);
  if (value.cookies !== undefined && value.cookies !== null) {
    if (!Array.isArray(value.cookies)) throw new MalformedResponse('cookies must be an array of strings.');
    for (const cookie of value.cookies) {
      if (typeof cookie !== 'string') throw new MalformedResponse('cookies must be an array of strings.');
      const field = headerField('Set-Cookie', cookie);
      if (field) headers.push(field);
    }
  }
  const text = optionalString(value.body, 'body') ?? '';
  let body: Buffer;
  if (optionalBoolean(value.isBase64Encoded, 'isBase64Encoded')) {
    const decoded = decodeBase64Body(text);
    if (!decoded) throw new MalformedResponse('isBase64Encoded is true but body is not base64.');
    body = decoded;
  } else {
    body = Buffer.from(text, 'utf8');
  }
  return { status, headers, body };
}
