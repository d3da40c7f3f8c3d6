/**
 * Whether a request body goes to the function as text or as base64. Function URLs and
 * HTTP APIs base64-encode what is not text; ALB passes `text/*`, JSON, JavaScript and
 * XML as they are (lambda-interfaces.md §5.4). A body that is not valid UTF-8 is always
 * base64-encoded: a JSON string cannot carry it unchanged.
 */
import { isUtf8 } from 'node:buffer';

const textTypes = /^(text\/[^;]*|application\/(json|javascript|x-javascript|xml|[^;]*\+json|[^;]*\+xml))\s*(;|$)/i;

export function isTextContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && textTypes.test(contentType.trim());
}

export interface EventBody {
  body: string;
  isBase64Encoded: boolean;
}

export function encodeBody(body: Buffer, contentType: string | undefined): EventBody {
  if (body.length === 0) return { body: '', isBase64Encoded: false };
  if (isTextContentType(contentType) && isUtf8(body)) return { body: body.toString('utf8'), isBase64Encoded: false };
  return { body: body.toString('base64'), isBase64Encoded: true };
}

/** Decodes a response body the function marked `isBase64Encoded`; undefined if it is not base64. */
export function decodeBase64Body(text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) return undefined;
  return Buffer.from(compact, 'base64');
}
