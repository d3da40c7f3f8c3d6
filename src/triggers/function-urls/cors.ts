/**
 * CORS for function URLs as Lambda applies a URL's Cors configuration: preflight
 * requests (OPTIONS with Origin and Access-Control-Request-Method) are answered from the
 * configuration without invoking the function, and on other requests Lambda's CORS
 * headers replace any the function returned (Fetch standard §3.2, CORS protocol).
 */
import type { HttpResult } from '../types.ts';
import type { UrlCors } from './types.ts';

export function isConfigured(cors: UrlCors | undefined): cors is UrlCors {
  return cors !== undefined && Object.keys(cors).length > 0;
}

export function isPreflight(method: string, origin: string | undefined, requestMethod: string | undefined): boolean {
  return method === 'OPTIONS' && origin !== undefined && requestMethod !== undefined;
}

/** The Access-Control-Allow-Origin value for `origin`, or undefined when it is not allowed. */
function allowedOrigin(cors: UrlCors, origin: string | undefined): string | undefined {
  if (origin === undefined) return undefined;
  const origins = cors.allowOrigins ?? [];
  if (origins.includes(origin)) return origin;
  // With credentials the wildcard cannot be sent back (Fetch §3.2.5): echo the origin.
  if (origins.includes('*')) return cors.allowCredentials ? origin : '*';
  return undefined;
}

export function preflight(cors: UrlCors, origin: string, requestMethod: string, requestHeaders: string | undefined): HttpResult {
  const headers: Array<[string, string]> = [['Vary', 'Origin']];
  const allowOrigin = allowedOrigin(cors, origin);
  const methods = cors.allowMethods ?? [];
  const methodAllowed = methods.includes('*') || methods.includes(requestMethod.toUpperCase());
  if (allowOrigin !== undefined && methodAllowed) {
    headers.push(['Access-Control-Allow-Origin', allowOrigin]);
    headers.push(['Access-Control-Allow-Methods', methods.join(', ')]);
    const wanted = (requestHeaders ?? '').split(',').map((h) => h.trim()).filter((h) => h !== '');
    const allowed = (cors.allowHeaders ?? []).map((h) => h.toLowerCase());
    if (wanted.length > 0 && (allowed.includes('*') || wanted.every((h) => allowed.includes(h.toLowerCase())))) {
      headers.push(['Access-Control-Allow-Headers', (cors.allowHeaders ?? []).join(', ')]);
    }
    if (cors.allowCredentials) headers.push(['Access-Control-Allow-Credentials', 'true']);
    if (cors.maxAgeSeconds !== undefined) headers.push(['Access-Control-Max-Age', String(cors.maxAgeSeconds)]);
  }
  return { status: 200, headers, body: Buffer.alloc(0) };
}

/** Replaces the function's CORS headers with the configuration's, for a request from `origin`. */
export function applyCors(result: HttpResult, cors: UrlCors, origin: string | undefined): HttpResult {
  const headers = result.headers.filter(([k]) => !k.toLowerCase().startsWith('access-control-'));
  const allowOrigin = allowedOrigin(cors, origin);
  if (allowOrigin !== undefined) {
    headers.push(['Access-Control-Allow-Origin', allowOrigin]);
    if (cors.exposeHeaders && cors.exposeHeaders.length > 0) headers.push(['Access-Control-Expose-Headers', cors.exposeHeaders.join(', ')]);
    if (cors.allowCredentials) headers.push(['Access-Control-Allow-Credentials', 'true']);
  }
  if (!headers.some(([k, v]) => k.toLowerCase() === 'vary' && /\borigin\b/i.test(v))) headers.push(['Vary', 'Origin']);
  return { ...result, headers };
}
