/**
 * An invocation event from an HTTP front door (API Gateway REST and HTTP APIs, ALB, function
 * URLs) turned into the WAF's request addresses, plus what signals, deny lists and blocking
 * need (method, route, client IP, user, Accept). Events of other triggers give undefined and
 * are left alone. Events are attacker-shaped: every field is checked before it is used, and
 * nothing here throws on a malformed event; a field of the wrong type is simply absent.
 *
 * Trigger detection follows the Datadog extension: ALB by `requestContext.elb`, function URLs
 * by a `lambda-url` domain, HTTP APIs by `version: "2.0"`, REST APIs by stage + method + resource.
 */
import { isUtf8 } from 'node:buffer';
import type { TriggerKind } from '../model.ts';
import { clientIpOf, lastForwardedFor } from './client-ip.ts';

export type HttpTrigger = Extract<TriggerKind, 'api-gateway-rest' | 'api-gateway-http' | 'function-url' | 'alb'>;

/** A header or parameter map as the WAF gets it: one value as a string, repeated ones as an array. */
export type ValueMap = Record<string, string | string[]>;

export interface HttpRequestInfo {
  trigger: HttpTrigger;
  /** `server.request.*`, `http.client_ip`, `usr.id`: the WAF's persistent request addresses. */
  addresses: Record<string, unknown>;
  method: string | undefined;
  /** The route template (`/items/{id}`) when the front door has one. */
  route: string | undefined;
  clientIp: string | undefined;
  /**
   * The address the front door itself saw (API Gateway's and function URLs' source IP, the
   * last X-Forwarded-For entry ALB appended). Deny lists check it as well as clientIp: the
   * first public X-Forwarded-For entry is the client's claim, and a denied client could
   * otherwise walk in by sending a made-up one.
   */
  peerIp: string | undefined;
  userAgent: string | undefined;
  userId: string | undefined;
  /** The Accept header, which picks the blocking response's body (JSON or HTML). */
  accept: string | undefined;
  /** ALB with multi-value headers on: its responses must use `multiValueHeaders`. */
  multiValueHeaders: boolean;
}

export interface HttpRequestOptions {
  /** The authorizer claim that names the user (`sub`). */
  userClaim: string;
  /** Bodies larger than this are given to the WAF unparsed (see parseRequestBody). */
  maxParsedBodyBytes?: number;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const stringOf = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** Which front door sent this event, or undefined for any other event. */
export function httpTriggerOf(event: unknown): HttpTrigger | undefined {
  if (!isObject(event)) return undefined;
  const rc = event.requestContext;
  if (!isObject(rc)) return undefined;
  if (isObject(rc.elb) && typeof rc.elb.targetGroupArn === 'string') return 'alb';
  if (event.version === '2.0' && isObject(rc.http)) {
    return typeof rc.domainName === 'string' && rc.domainName.includes('.lambda-url.') ? 'function-url' : 'api-gateway-http';
  }
  if (typeof rc.stage === 'string' && typeof event.httpMethod === 'string' && typeof event.resource === 'string') {
    // An HTTP API route configured for payload 1.0 says `version: "1.0"`; REST APIs say nothing.
    return event.version === '1.0' ? 'api-gateway-http' : 'api-gateway-rest';
  }
  return undefined;
}

/** Header maps, lower-cased and merged (`Accept` and `accept` are one header); non-strings dropped. */
function headerMap(single: unknown, multi: unknown): ValueMap {
  const out: ValueMap = {};
  if (isObject(multi)) {
    for (const name in multi) {
      const values = multi[name];
      if (!Array.isArray(values)) continue;
      for (const v of values) if (typeof v === 'string') addValue(out, name.toLowerCase(), v);
    }
    return out;
  }
  if (isObject(single)) {
    for (const name in single) {
      const v = single[name];
      if (typeof v === 'string') addValue(out, name.toLowerCase(), v);
    }
  }
  return out;
}

export function addValue(out: ValueMap, key: string, value: string): void {
  const existing = out[key];
  if (existing === undefined) out[key] = value;
  else if (typeof existing === 'string') out[key] = [existing, value];
  else existing.push(value);
}

/** decodeURIComponent that keeps the input when it holds a malformed escape. */
function decode(s: string, plusIsSpace: boolean): string {
  const t = plusIsSpace ? s.replace(/\+/g, ' ') : s;
  if (!t.includes('%')) return t;
  try {
    return decodeURIComponent(t);
  } catch {
    return t;
  }
}

/** `a=1; b=2` pairs (a Cookie header, or v2's `cookies` entries) into a map. */
function addCookies(out: ValueMap, header: string): void {
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    if (name === '') continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length > 1 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    addValue(out, name, decode(value, false));
  }
}

/** Query parameter maps of v1 and ALB events; ALB leaves values URL-encoded, API Gateway decodes them. */
function queryMap(single: unknown, multi: unknown, encoded: boolean): ValueMap {
  const out: ValueMap = {};
  const put = (k: string, v: string): void => addValue(out, encoded ? decode(k, true) : k, encoded ? decode(v, true) : v);
  if (isObject(multi)) {
    for (const k in multi) {
      const values = multi[k];
      if (Array.isArray(values)) for (const v of values) if (typeof v === 'string') put(k, v);
    }
  } else if (isObject(single)) {
    for (const k in single) {
      const v = single[k];
      if (typeof v === 'string') put(k, v);
    }
  }
  return out;
}

/** The query string of a v1 or ALB event, rebuilt: the raw one is not in those events. */
function queryStringOf(query: ValueMap, alreadyEncoded: boolean, rawSingle: unknown, rawMulti: unknown): string {
  const parts: string[] = [];
  if (alreadyEncoded) {
    // ALB: keep the client's own encoding, which is what path-traversal and XSS rules look at.
    const source = isObject(rawMulti) ? rawMulti : isObject(rawSingle) ? rawSingle : undefined;
    for (const k in source ?? {}) {
      const v = source![k];
      for (const one of Array.isArray(v) ? v : [v]) if (typeof one === 'string') parts.push(`${k}=${one}`);
    }
  } else {
    for (const k in query) {
      const v = query[k]!;
      for (const one of typeof v === 'string' ? [v] : v) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(one)}`);
    }
  }
  return parts.join('&');
}

function stringMap(v: unknown): Record<string, string> | undefined {
  if (!isObject(v)) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const k in v) {
    const s = v[k];
    if (typeof s === 'string') {
      out[k] = s;
      any = true;
    }
  }
  return any ? out : undefined;
}

/** A claim as a user id: strings and numbers only (a claim object is not an id). */
function claimOf(source: unknown, claim: string): string | undefined {
  if (!isObject(source)) return undefined;
  const v = source[claim];
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/**
 * v1: a Cognito user pool authorizer puts claims in `authorizer.claims`, a Lambda authorizer
 * its context in `authorizer` itself. v2: JWT authorizers use `authorizer.jwt.claims`,
 * Lambda authorizers `authorizer.lambda`.
 */
function userIdOf(rc: Json, v2: boolean, claim: string): string | undefined {
  const authorizer = rc.authorizer;
  if (!isObject(authorizer)) return undefined;
  if (v2) {
    const jwt = authorizer.jwt;
    return claimOf(isObject(jwt) ? jwt.claims : undefined, claim) ?? claimOf(authorizer.lambda, claim);
  }
  return claimOf(authorizer.claims, claim) ?? claimOf(authorizer, claim);
}

/** Maps an invocation event (already parsed from JSON) to the WAF's request addresses. */
export function httpRequestOf(event: unknown, options: HttpRequestOptions): HttpRequestInfo | undefined {
  const trigger = httpTriggerOf(event);
  if (!trigger) return undefined;
  const e = event as Json;
  const rc = e.requestContext as Json;
  const v2 = trigger === 'function-url' || (trigger === 'api-gateway-http' && e.version === '2.0');

  let headers: ValueMap;
  const cookies: ValueMap = {};
  let query: ValueMap;
  let uri: string | undefined;
  let method: string | undefined;
  let sourceIp: string | undefined;
  let route: string | undefined;

  if (v2) {
    headers = headerMap(e.headers, undefined);
    if (Array.isArray(e.cookies)) for (const c of e.cookies) if (typeof c === 'string') addCookies(cookies, c);
    const rawQuery = stringOf(e.rawQueryString);
    query = {};
    if (rawQuery !== undefined) {
      for (const [k, v] of new URLSearchParams(rawQuery)) addValue(query, k, v);
    } else if (isObject(e.queryStringParameters)) {
      // No raw query string: HTTP APIs comma-join repeated parameters.
      for (const k in e.queryStringParameters) {
        const v = e.queryStringParameters[k];
        if (typeof v === 'string') for (const one of v.split(',')) addValue(query, k, one);
      }
    }
    const http = rc.http as Json;
    const rawPath = stringOf(e.rawPath) ?? stringOf(http.path);
    if (rawPath !== undefined) uri = rawQuery ? `${rawPath}?${rawQuery}` : rawPath;
    method = stringOf(http.method);
    sourceIp = stringOf(http.sourceIp);
    const routeKey = stringOf(e.routeKey) ?? stringOf(rc.routeKey);
    // `GET /items/{id}` → `/items/{id}`; `$default` names no route.
    if (routeKey && routeKey !== '$default') route = routeKey.slice(routeKey.indexOf(' ') + 1);
  } else {
    const alb = trigger === 'alb';
    headers = headerMap(e.headers, e.multiValueHeaders);
    const cookieHeader = headers.cookie;
    if (cookieHeader !== undefined) {
      for (const c of typeof cookieHeader === 'string' ? [cookieHeader] : cookieHeader) addCookies(cookies, c);
      delete headers.cookie;
    }
    query = queryMap(e.queryStringParameters, e.multiValueQueryStringParameters, alb);
    const path = stringOf(e.path);
    if (path !== undefined) {
      const qs = queryStringOf(query, alb, e.queryStringParameters, e.multiValueQueryStringParameters);
      uri = qs ? `${path}?${qs}` : path;
    }
    method = stringOf(e.httpMethod);
    if (!alb) {
      const identity = rc.identity;
      sourceIp = isObject(identity) ? stringOf(identity.sourceIp) : undefined;
      route = stringOf(e.resource);
    }
  }

  const clientIp = clientIpOf(headers, sourceIp);
  const peerIp = trigger === 'alb' ? lastForwardedFor(headers) : clientIpOf({}, sourceIp);
  const userId = trigger === 'alb' ? undefined : userIdOf(rc, v2, options.userClaim);
  const addresses: Record<string, unknown> = { 'server.request.headers.no_cookies': headers };
  if (uri !== undefined) addresses['server.request.uri.raw'] = uri;
  if (method !== undefined) addresses['server.request.method'] = method;
  if (Object.keys(cookies).length > 0) addresses['server.request.cookies'] = cookies;
  if (Object.keys(query).length > 0) addresses['server.request.query'] = query;
  const pathParams = stringMap(e.pathParameters);
  if (pathParams) addresses['server.request.path_params'] = pathParams;
  const body = parseRequestBody(e.body, e.isBase64Encoded, first(headers['content-type']), options.maxParsedBodyBytes);
  if (body) addresses['server.request.body'] = body.body;
  if (clientIp !== undefined) addresses['http.client_ip'] = clientIp;
  if (userId !== undefined) addresses['usr.id'] = userId;

  return {
    trigger,
    addresses,
    method,
    route,
    clientIp,
    peerIp,
    userAgent: first(headers['user-agent']),
    userId,
    accept: first(headers.accept),
    multiValueHeaders: trigger === 'alb' && isObject(e.multiValueHeaders),
  };
}

// --- The body -------------------------------------------------------------------------------
// Parsed by its content type (JSON, form, multipart) so that rules see each field on its own.
// A body that is not what its content type says is kept as a string: the attacker controls
// the content type, so a parse failure must never hide the payload.

/** The WAF's `server.request.body`. */
export interface ParsedBody {
  body: unknown;
}

/**
 * Bodies larger than this are not parsed: libddwaf looks at no more than 256 items per
 * container, 20 levels and 4,096 characters per string, so parsing megabytes of JSON in the
 * agent would cost milliseconds for input the WAF ignores. Their first characters are given
 * as a string instead.
 */
export const defaultMaxParsedBodyBytes = 256 * 1024;
const unparsedPrefixChars = 4096;

function mediaTypeOf(contentType: string | undefined): string {
  if (!contentType) return '';
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/** `a=1&a=2&b=x` → `{a: ['1','2'], b: 'x'}`; malformed escapes are kept as written. */
export function parseForm(text: string): ValueMap {
  const out: ValueMap = {};
  for (const [key, value] of new URLSearchParams(text)) addValue(out, key, value);
  return out;
}

function boundaryOf(contentType: string): string | undefined {
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/**
 * Fields by name. A file part's value is its file name, not its bytes: the name is attacker
 * input the injection rules should see (`../../etc/passwd`), the bytes are not text. Names
 * are deliberately not given as `server.request.body.filenames`, as the Datadog extension
 * does not either: its "double extension" rule (dog-920-100) flags every upload named like
 * `report.v2.final.pdf`, and in block mode that would refuse ordinary uploads.
 */
function parseMultipart(text: string, boundary: string): ParsedBody | undefined {
  const parts = text.split(`--${boundary}`);
  // parts[0] is the preamble; the close delimiter leaves a part starting with `--`.
  if (parts.length < 3) return undefined;
  const fields: ValueMap = {};
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!;
    if (part.startsWith('--')) break;
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd === -1) continue;
    const disposition = /content-disposition:[^\r\n]*/i.exec(part.slice(0, headerEnd))?.[0] ?? '';
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1];
    if (name === undefined) continue;
    const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1];
    let value = filename ?? part.slice(headerEnd + 4);
    if (filename === undefined && value.endsWith('\r\n')) value = value.slice(0, -2);
    addValue(fields, name, value);
  }
  return { body: fields };
}

function parseJsonOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Types whose bytes are text even though they are not `text/*`. */
const textualApplicationType = /^application\/(?:xml|javascript|graphql|x-yaml|yaml|csv)$|\+xml$/;

/**
 * `raw` is the event's `body`, `isBase64` its `isBase64Encoded`. Undefined when there is
 * nothing for the WAF: no body, or bytes that are not text (images, archives).
 */
export function parseRequestBody(
  raw: unknown,
  isBase64: unknown,
  contentType: string | undefined,
  maxParsedBytes: number = defaultMaxParsedBodyBytes,
): ParsedBody | undefined {
  if (typeof raw !== 'string' || raw.length === 0) return undefined;
  const type = mediaTypeOf(contentType);
  let text: string;
  if (isBase64 === true) {
    const bytes = Buffer.from(raw, 'base64');
    if (bytes.length === 0) return undefined;
    if (isUtf8(bytes)) text = bytes.toString('utf8');
    // A binary upload: only a multipart envelope (text headers around file bytes) is worth reading.
    else if (type === 'multipart/form-data') text = bytes.toString('latin1');
    else return undefined;
  } else {
    text = raw;
  }
  if (text.length > maxParsedBytes) return { body: text.slice(0, unparsedPrefixChars) };

  if (type === '') {
    // No content type: Datadog tries JSON first; anything else is text.
    const c = text.trimStart()[0];
    return { body: c === '{' || c === '[' ? parseJsonOrText(text) : text };
  }
  if (type === 'application/json' || type === 'text/json' || type.endsWith('+json')) return { body: parseJsonOrText(text) };
  if (type === 'application/x-www-form-urlencoded') return { body: parseForm(text) };
  if (type === 'multipart/form-data') {
    const boundary = boundaryOf(contentType!);
    return (boundary ? parseMultipart(text, boundary) : undefined) ?? { body: text };
  }
  if (type.startsWith('text/') || textualApplicationType.test(type)) return { body: text };
  // Another type (octet-stream, a vendor type...): text the front door passed as text is still
  // attacker input; bytes it had to base64 are not text.
  return isBase64 === true ? undefined : { body: text };
}
