/**
 * Function answers in payload format 1.0 to HTTP (REST APIs, HTTP API routes on 1.0).
 * The answer must be an object of exactly {statusCode, headers, multiValueHeaders, body,
 * isBase64Encoded} with a statusCode and a string body (API Gateway's "Malformed Lambda
 * proxy response" otherwise). `headers` and `multiValueHeaders` are merged; on a name in
 * both only the multi-value values survive (lambda-interfaces.md §5.1).
 */
import { decodeBase64Body } from '../http/body.ts';
import { headerField, MalformedResponse } from '../http/outgoing.ts';
import type { HttpResult } from '../types.ts';
import { isObject, optionalBoolean, optionalObject, optionalString, parsePayload, statusCodeOf } from './common.ts';

const allowedKeys = new Set(['statusCode', 'headers', 'multiValueHeaders', 'body', 'isBase64Encoded']);

export interface V1ResponseOptions {
  /**
   * Whether a base64 body is decoded: REST APIs decode only for their binary media
   * types (otherwise the client gets the base64 text); HTTP APIs always decode.
   */
  decodeBase64: (contentType: string | undefined) => boolean;
}

export function v1Response(payload: Buffer, options: V1ResponseOptions): HttpResult {
  const value = parsePayload(payload);
  if (!isObject(value)) throw new MalformedResponse('The function must return an object with statusCode and body.');
  const extra = Object.keys(value).filter((k) => !allowedKeys.has(k));
  if (extra.length > 0) throw new MalformedResponse(`Invalid response keys: ${extra.join(', ')}.`);
  if (!('statusCode' in value)) throw new MalformedResponse('The response has no statusCode.');
  const status = statusCodeOf(value.statusCode);
  const headers: Array<[string, string]> = [];
  const multi = optionalObject(value.multiValueHeaders, 'multiValueHeaders');
  const multiNames = new Set<string>();
  for (const [name, values] of Object.entries(multi)) {
    if (!Array.isArray(values)) throw new MalformedResponse(`multiValueHeaders.${name} must be an array.`);
    multiNames.add(name.toLowerCase());
    for (const v of values) {
      const field = headerField(name, v);
      if (field) headers.push(field);
    }
  }
  for (const [name, v] of Object.entries(optionalObject(value.headers, 'headers'))) {
    if (multiNames.has(name.toLowerCase())) continue;
    const field = headerField(name, v);
    if (field) headers.push(field);
  }
  let contentType = headers.find(([k]) => k.toLowerCase() === 'content-type')?.[1];
  if (contentType === undefined) {
    contentType = 'application/json';
    headers.push(['Content-Type', contentType]);
  }
  const text = optionalString(value.body, 'body') ?? '';
  let body: Buffer = Buffer.from(text, 'utf8');
  if (optionalBoolean(value.isBase64Encoded, 'isBase64Encoded') && options.decodeBase64(contentType)) {
    const decoded = decodeBase64Body(text);
    if (!decoded) throw new MalformedResponse('isBase64Encoded is true but body is not base64.');
    body = decoded;
  }
  return { status, headers, body };
}
