/**
 * The handler's result as the WAF's response addresses: `server.response.status` and
 * `server.response.headers.no_cookies`. Results follow the API Gateway / ALB shape
 * (`{statusCode, headers, multiValueHeaders, body}`); HTTP APIs and function URLs also take a
 * result without `statusCode` and answer 200 with it as the body, so that is what the WAF sees
 * for them. A result that cannot be read gives undefined (the front door answers 502 anyway).
 */
import { addValue, type HttpTrigger, type ValueMap } from './http-request.ts';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function httpResponseAddressesOf(body: Buffer | undefined, trigger: HttpTrigger): Record<string, unknown> | undefined {
  if (body === undefined) return undefined;
  const infers200 = trigger === 'api-gateway-http' || trigger === 'function-url';
  let result: unknown;
  try {
    result = JSON.parse(body.toString('utf8'));
  } catch {
    // Not JSON: HTTP APIs and function URLs reject it too, with a 502 the WAF does not rate.
    return undefined;
  }
  if (!isObject(result) || result.statusCode === undefined) {
    return infers200 ? { 'server.response.status': '200', 'server.response.headers.no_cookies': { 'content-type': 'application/json' } } : undefined;
  }
  const status = result.statusCode;
  if (!(typeof status === 'number' && Number.isInteger(status)) && !(typeof status === 'string' && /^\d{3}$/.test(status))) return undefined;

  const headers: ValueMap = {};
  if (isObject(result.multiValueHeaders)) {
    for (const name in result.multiValueHeaders) {
      const values = result.multiValueHeaders[name];
      if (Array.isArray(values)) for (const v of values) if (typeof v === 'string' || typeof v === 'number') addValue(headers, name.toLowerCase(), String(v));
    }
  }
  if (isObject(result.headers)) {
    for (const name in result.headers) {
      const v = result.headers[name];
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') addValue(headers, name.toLowerCase(), String(v));
    }
  }
  delete headers['set-cookie'];
  return { 'server.response.status': String(status), 'server.response.headers.no_cookies': headers };
}
