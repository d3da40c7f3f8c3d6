/**
 * The interceptor the Runtime API proxy calls: monitor mode never holds or blocks, block mode
 * answers in the trigger's own shape (status, content type by Accept, ALB's description and
 * multi-value headers), deny lists by IP (and CIDR) and by user, also polled live from a real
 * HTTP server, response evaluation in the same context, span tags, metrics, redaction, the
 * bound on open contexts, and failures that stay contained.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WafEngine } from '../../src/agent/appsec/waf-engine.ts';
import { AppsecInterceptor, type AppsecEngine, type AppsecInterceptorOptions } from '../../src/agent/appsec/appsec-interceptor.ts';
import { DenyListClient, DenyListMatcher, deniedNothing, parseDenyList } from '../../src/agent/appsec/deny-list-client.ts';
import { blockedHtmlBody, blockedJsonBody, blockingResponse, prefersHtml } from '../../src/agent/appsec/blocking-response.ts';
import { redacted } from '../../src/agent/appsec/signals.ts';
import type { MetricPoint, SecuritySignal, TelemetrySink } from '../../src/agent/model.ts';
import { eventBuffer, eventShapes, triggerOfShape, type RequestSpec } from '../fixtures/appsec/http-events.ts';

let engine: WafEngine;
let dir: string;
before(async () => {
  engine = await WafEngine.start();
  dir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-appsec-i-'));
});
after(async () => {
  engine.dispose();
  await rm(dir, { recursive: true, force: true });
});

interface Recorder {
  sink: TelemetrySink;
  signals: SecuritySignal[];
  metrics: MetricPoint[];
  tags: Array<{ requestId: string; meta: Record<string, string>; metrics: Record<string, number> }>;
}

function recorder(): Recorder {
  const r: Recorder = { signals: [], metrics: [], tags: [], sink: undefined as unknown as TelemetrySink };
  r.sink = { addMetric: (p) => r.metrics.push(p), addSpans: () => {}, addLog: () => {}, addSecurity: (s) => r.signals.push(s) };
  return r;
}

function interceptorWith(rec: Recorder, options: Partial<AppsecInterceptorOptions> = {}): AppsecInterceptor {
  return new AppsecInterceptor({
    engine,
    sink: rec.sink,
    tagger: { tagRootSpan: (requestId, meta, metrics) => rec.tags.push({ requestId, meta, metrics: metrics ?? {} }) },
    mode: 'block',
    wafTimeoutMicros: 1_000_000,
    userClaim: 'sub',
    denyList: deniedNothing,
    ...options,
  });
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const okResponse = Buffer.from(JSON.stringify({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{}' }));
const sqli = (accept = 'application/json', extra: Partial<RequestSpec> = {}): RequestSpec => ({
  method: 'GET',
  rawPath: '/items/7',
  route: '/items/{id}',
  pathParameters: { id: '7' },
  rawQuery: `q=${encodeURIComponent("1' OR '1'='1' --")}`,
  headers: [
    ['User-Agent', 'Mozilla/5.0'],
    ['Accept', accept],
  ],
  sourceIp: '203.0.113.50',
  ...extra,
});
const benign: RequestSpec = { method: 'GET', rawPath: '/items/7', rawQuery: 'q=blue+mug', headers: [['Accept', 'application/json']], sourceIp: '203.0.113.51' };

function respondOf(verdict: unknown): Record<string, unknown> {
  assert.ok(verdict && typeof verdict === 'object' && 'respond' in verdict, 'a blocking answer');
  return JSON.parse((verdict as { respond: Buffer }).respond.toString('utf8')) as Record<string, unknown>;
}

describe('monitor mode', () => {
  test('never holds or blocks: the WAF runs on the next turn, signals and tags after the response', async () => {
    const rec = recorder();
    const interceptor = interceptorWith(rec, { mode: 'monitor' });
    for (const shape of eventShapes) {
      const id = `mon-${shape}`;
      const before = rec.signals.length;
      const verdict = interceptor.onInvocationEvent({ requestId: id, event: eventBuffer(shape, sqli()), headers: {} });
      assert.equal(verdict, undefined);
      assert.equal(rec.signals.length, before, 'nothing evaluated before the event is passed on');
      await nextTurn();
      interceptor.onInvocationResponse(id, okResponse);
      await nextTurn();
      const mine = rec.signals.filter((s) => s.requestId === id);
      assert.ok(mine.some((s) => s.category === 'sql_injection' && s.parameter === 'server.request.query.q' && s.value === "1' OR '1'='1' --"));
      for (const s of mine) {
        assert.equal(s.blocked, false);
        assert.equal(s.trigger, triggerOfShape[shape]);
        assert.equal(s.clientIp, '203.0.113.50');
        assert.equal(s.userAgent, 'Mozilla/5.0');
        assert.equal(s.method, 'GET');
      }
    }
    assert.equal(interceptor.openRequests, 0);
    const attacks = rec.metrics.filter((m) => m.name === 'nimbus.appsec.attacks');
    assert.ok(attacks.every((m) => m.tags.includes('blocked:false') && m.type === 'count'));
  });

  test('a response that comes before the deferred evaluation still gets both evaluated', async () => {
    const rec = recorder();
    const interceptor = interceptorWith(rec, { mode: 'monitor' });
    interceptor.onInvocationEvent({ requestId: 'fast', event: eventBuffer('function-url', sqli()), headers: {} });
    interceptor.onInvocationResponse('fast', okResponse);
    await nextTurn();
    await nextTurn();
    assert.ok(rec.signals.some((s) => s.requestId === 'fast' && s.category === 'sql_injection'));
    assert.equal(interceptor.openRequests, 0);
  });
});

describe('block mode', () => {
  test('blocks with a 403 in each trigger shape; JSON or HTML by the Accept header', () => {
    for (const shape of eventShapes) {
      for (const [accept, html] of [
        ['application/json', false],
        ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', true],
        ['text/html, application/json', false],
        ['*/*', false],
      ] as const) {
        const rec = recorder();
        const interceptor = interceptorWith(rec);
        const result = respondOf(interceptor.onInvocationEvent({ requestId: `blk-${shape}`, event: eventBuffer(shape, sqli(accept)), headers: {} }));
        assert.equal(result.statusCode, 403);
        assert.equal(result.isBase64Encoded, false);
        const contentType = html ? 'text/html; charset=utf-8' : 'application/json';
        assert.deepEqual(result.headers, { 'content-type': contentType });
        assert.equal(result.body, html ? blockedHtmlBody : blockedJsonBody);
        if (shape === 'alb' || shape === 'alb-multi') assert.equal(result.statusDescription, '403 Forbidden');
        else assert.equal(result.statusDescription, undefined);
        if (shape === 'alb-multi') assert.deepEqual(result.multiValueHeaders, { 'content-type': [contentType] });
        else assert.equal(result.multiValueHeaders, undefined);
        assert.ok(rec.signals.length > 0 && rec.signals.every((s) => s.blocked));
        assert.equal(interceptor.openRequests, 0, 'a blocked request holds no context');
        const tags = rec.tags.find((t) => t.requestId === `blk-${shape}`)!;
        assert.equal(tags.meta['appsec.blocked'], 'true');
      }
    }
    const body = JSON.parse(blockedJsonBody) as { errors: Array<{ title: string; detail: string }> };
    assert.deepEqual(body, {
      errors: [{ title: "You've been blocked", detail: 'Sorry, you cannot access this page. Please contact the customer service team. Security provided by Nimbus.' }],
    });
  });

  test('benign requests pass, and their responses are evaluated in the same context', () => {
    const rec = recorder();
    const interceptor = interceptorWith(rec);
    assert.equal(interceptor.onInvocationEvent({ requestId: 'ok-1', event: eventBuffer('api-gateway-http', benign), headers: {} }), undefined);
    assert.equal(interceptor.openRequests, 1);
    interceptor.onInvocationResponse('ok-1', okResponse);
    assert.equal(interceptor.openRequests, 0);
    assert.equal(rec.signals.length, 0);
    const tags = rec.tags.find((t) => t.requestId === 'ok-1')!;
    assert.equal(tags.metrics['_dd.appsec.enabled'], 1);
    assert.equal(tags.meta['_dd.appsec.waf.version'], engine.wafVersion);
    assert.equal(tags.meta['_dd.appsec.event_rules.version'], engine.ruleset!.version);
    assert.ok(tags.metrics['_dd.appsec.waf.duration']! > 0);
    assert.equal(tags.metrics['_dd.appsec.waf.timeouts'], 0);
    assert.equal(tags.meta['appsec.event'], undefined);
    assert.equal(tags.meta['_dd.appsec.json'], undefined);
    assert.deepEqual(
      rec.metrics.map((m) => [m.name, m.type, m.value, m.tags]),
      [['nimbus.appsec.requests', 'count', 1, ['trigger:api-gateway-http']]],
    );
  });

  test('attacks put appsec.event, _dd.appsec.json and the route on the span, as Datadog does', () => {
    const rec = recorder();
    const interceptor = interceptorWith(rec, { mode: 'monitor' });
    interceptor.onInvocationEvent({ requestId: 'tag-1', event: eventBuffer('api-gateway-rest', sqli()), headers: {} });
    interceptor.onInvocationResponse('tag-1', okResponse);
    return nextTurn().then(() => {
      const { meta, metrics } = rec.tags.find((t) => t.requestId === 'tag-1')!;
      assert.equal(meta['appsec.event'], 'true');
      assert.equal(meta['_dd.origin'], 'appsec');
      assert.equal(meta['http.route'], '/items/{id}');
      assert.equal(meta['network.client.ip'], '203.0.113.50');
      assert.equal(metrics['_sampling_priority_v1'], 2);
      const json = JSON.parse(meta['_dd.appsec.json']!) as { triggers: Array<{ rule: { id: string; tags: { type: string } }; rule_matches: unknown[] }> };
      assert.ok(json.triggers.some((t) => t.rule.tags.type === 'sql_injection' && t.rule_matches.length > 0));
      assert.deepEqual(
        json.triggers.map((t) => t.rule.id).sort(),
        rec.signals.map((s) => s.ruleId).sort(),
      );
      const attack = rec.metrics.find((m) => m.name === 'nimbus.appsec.attacks' && m.tags.includes('category:sql_injection'))!;
      assert.deepEqual(attack.tags, ['blocked:false', 'category:sql_injection', 'trigger:api-gateway-rest']);
    });
  });

  test('a rules file with explicit actions: only rules that ask to block do, with their status', async () => {
    const rules = {
      version: '2.2',
      metadata: { rules_version: 'explicit-1' },
      actions: [{ id: 'block', type: 'block_request', parameters: { status_code: 451, type: 'html', grpc_status_code: 10 } }],
      rules: [
        { id: 'watch-1', name: 'watch', tags: { type: 'sql_injection', category: 'attack_attempt' }, conditions: [{ operator: 'match_regex', parameters: { inputs: [{ address: 'server.request.query' }], regex: 'watchme' } }] },
        { id: 'stop-1', name: 'stop', tags: { type: 'xss', category: 'attack_attempt' }, on_match: ['block'], conditions: [{ operator: 'match_regex', parameters: { inputs: [{ address: 'server.request.query' }], regex: 'stopme' } }] },
      ],
    };
    const file = path.join(dir, 'explicit.json');
    await writeFile(file, JSON.stringify(rules));
    const custom = await WafEngine.start({ configured: file });
    try {
      assert.equal(custom.ruleset?.explicitActions, true);
      const rec = recorder();
      const interceptor = interceptorWith(rec, { engine: custom });
      const watch = interceptor.onInvocationEvent({ requestId: 'w', event: eventBuffer('alb', { method: 'GET', rawPath: '/', rawQuery: 'q=watchme' }), headers: {} });
      assert.equal(watch, undefined, 'a match without a blocking action is only reported');
      interceptor.onInvocationResponse('w', okResponse);
      assert.equal(rec.signals.find((s) => s.requestId === 'w')?.blocked, false);
      const stop = respondOf(interceptor.onInvocationEvent({ requestId: 's', event: eventBuffer('alb', { method: 'GET', rawPath: '/', rawQuery: 'q=stopme', headers: [['Accept', 'application/json']] }), headers: {} }));
      assert.equal(stop.statusCode, 451);
      assert.equal(stop.statusDescription, '451 Blocked');
      assert.deepEqual(stop.headers, { 'content-type': 'text/html; charset=utf-8' }, 'the action fixes the type whatever Accept says');
    } finally {
      custom.dispose();
    }
  });
});

describe('blocking responses', () => {
  test('Accept parsing follows the tracers: HTML only when text/html is accepted and JSON is not', () => {
    assert.equal(prefersHtml(undefined), false);
    assert.equal(prefersHtml('text/html;q=0.9'), true);
    assert.equal(prefersHtml('TEXT/HTML'), true);
    assert.equal(prefersHtml('application/json;q=0.1, text/html'), false);
    assert.equal(prefersHtml('text/plain'), false);
  });

  test('a redirect action answers with its Location; odd statuses fall back to defaults', () => {
    const redirect = JSON.parse(blockingResponse({ trigger: 'api-gateway-http', accept: undefined, multiValueHeaders: false }, { location: 'https://example.com/blocked', status_code: 302 }).toString()) as Record<string, unknown>;
    assert.deepEqual(redirect, { statusCode: 302, headers: { location: 'https://example.com/blocked' }, body: '', isBase64Encoded: false });
    const badRedirect = JSON.parse(blockingResponse({ trigger: 'alb', accept: undefined, multiValueHeaders: false }, { location: '/x', status_code: 200 }).toString()) as Record<string, unknown>;
    assert.equal(badRedirect.statusCode, 303);
    assert.equal(badRedirect.statusDescription, '303 See Other');
    const badBlock = JSON.parse(blockingResponse({ trigger: 'function-url', accept: undefined, multiValueHeaders: false }, { status_code: 'abc' }).toString()) as Record<string, unknown>;
    assert.equal(badBlock.statusCode, 403);
  });
});

describe('deny lists', () => {
  const matcher = new DenyListMatcher({ ips: ['198.51.100.0/24', '2001:db8::/32', '203.0.113.66', 'garbage', '10.0.0.0/99'], users: ['mallory'] });

  test('the matcher: addresses, CIDR ranges (both families), IPv4-mapped IPv6; bad entries skipped', () => {
    assert.equal(matcher.isIpDenied('198.51.100.200'), true);
    assert.equal(matcher.isIpDenied('198.51.101.1'), false);
    assert.equal(matcher.isIpDenied('203.0.113.66'), true);
    assert.equal(matcher.isIpDenied('::ffff:203.0.113.66'), true);
    assert.equal(matcher.isIpDenied('2001:db8:1::5'), true);
    assert.equal(matcher.isIpDenied('2001:db9::5'), false);
    assert.equal(matcher.isIpDenied('not an ip'), false);
    assert.equal(matcher.isUserDenied('mallory'), true);
    assert.equal(matcher.isUserDenied('Mallory'), false);
  });

  test('a denied IP is refused before the WAF spends any time; monitor mode only reports it', () => {
    let contexts = 0;
    const counting: AppsecEngine = {
      get available() {
        return engine.available;
      },
      wafVersion: engine.wafVersion,
      get ruleset() {
        return engine.ruleset;
      },
      createContext: () => {
        contexts++;
        return engine.createContext();
      },
    };
    const rec = recorder();
    const blocking = interceptorWith(rec, { engine: counting, denyList: matcher });
    const spec: RequestSpec = { ...benign, headers: [['X-Forwarded-For', '198.51.100.9']], sourceIp: '10.0.0.1' };
    const result = respondOf(blocking.onInvocationEvent({ requestId: 'ip-1', event: eventBuffer('api-gateway-rest', spec), headers: {} }));
    assert.equal(result.statusCode, 403);
    assert.equal(contexts, 0);
    assert.deepEqual(
      rec.signals.map((s) => [s.ruleId, s.category, s.parameter, s.value, s.blocked]),
      [['nimbus-deny-ip', 'block_ip', 'http.client_ip', '198.51.100.9', true]],
    );
    const tags = rec.tags.find((t) => t.requestId === 'ip-1')!;
    assert.equal(tags.meta['appsec.event'], 'true');
    assert.match(tags.meta['_dd.appsec.json']!, /nimbus-deny-ip/);

    const monitorRec = recorder();
    const monitoring = interceptorWith(monitorRec, { mode: 'monitor', denyList: matcher });
    assert.equal(monitoring.onInvocationEvent({ requestId: 'ip-2', event: eventBuffer('api-gateway-rest', spec), headers: {} }), undefined);
    return nextTurn().then(() => {
      monitoring.onInvocationResponse('ip-2', okResponse);
      return nextTurn().then(() => {
        assert.deepEqual(monitorRec.signals.map((s) => [s.category, s.blocked]), [['block_ip', false]]);
      });
    });
  });

  test('a denied client cannot walk in by claiming another address in X-Forwarded-For', () => {
    for (const shape of eventShapes) {
      const rec = recorder();
      const interceptor = interceptorWith(rec, { denyList: matcher });
      const spoofed: RequestSpec = { ...benign, headers: [['X-Forwarded-For', '8.8.8.8']], sourceIp: '203.0.113.66' };
      assert.ok(interceptor.onInvocationEvent({ requestId: `spoof-${shape}`, event: eventBuffer(shape, spoofed), headers: {} }), shape);
      assert.deepEqual(rec.signals.map((s) => [s.category, s.value, s.clientIp]), [['block_ip', '203.0.113.66', '8.8.8.8']]);
    }
  });

  test('a denied user (from the authorizer claim) is refused; another user passes', () => {
    const rec = recorder();
    const interceptor = interceptorWith(rec, { denyList: matcher, userClaim: 'username' });
    const asUser = (name: string): RequestSpec => ({ ...benign, authorizer: { jwt: { claims: { username: name, sub: 'x' } } } });
    const refused = respondOf(interceptor.onInvocationEvent({ requestId: 'u-1', event: eventBuffer('api-gateway-http', asUser('mallory')), headers: {} }));
    assert.equal(refused.statusCode, 403);
    assert.deepEqual(rec.signals.map((s) => [s.ruleId, s.category, s.parameter, s.value]), [['nimbus-deny-user', 'block_user', 'usr.id', 'mallory']]);
    assert.equal(interceptor.onInvocationEvent({ requestId: 'u-2', event: eventBuffer('api-gateway-http', asUser('alice')), headers: {} }), undefined);
  });

  test('polled from a real server: ETag and 304, changes applied live, last list kept when the server fails', async () => {
    let list: unknown = { ips: [{ value: '198.51.100.7', addedAt: '2024-01-01T00:00:00Z' }], users: [] };
    let etag = '"v1"';
    let mode: 'ok' | 'error' | 'garbage' = 'ok';
    const seen: Array<string | undefined> = [];
    const server = http.createServer((req, res) => {
      assert.equal(req.url, '/nimbus/v1/security/deny-list');
      seen.push(req.headers['if-none-match']);
      if (mode === 'error') return void res.writeHead(500).end('boom');
      if (mode === 'garbage') return void res.writeHead(200, { etag: '"g"' }).end('{"ips": 12');
      if (req.headers['if-none-match'] === etag) return void res.writeHead(304, { etag }).end();
      res.writeHead(200, { etag, 'content-type': 'application/json' }).end(JSON.stringify(list));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const errors: Error[] = [];
    const client = new DenyListClient({ endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/nimbus/v1/telemetry`, pollMs: 20, onError: (e) => errors.push(e) });
    const rec = recorder();
    const interceptor = interceptorWith(rec, { denyList: client });
    const from = (ip: string): RequestSpec => ({ ...benign, headers: [['X-Forwarded-For', ip]] });
    try {
      assert.equal(await client.refresh(), true);
      assert.ok(interceptor.onInvocationEvent({ requestId: 'p-1', event: eventBuffer('function-url', from('198.51.100.7')), headers: {} }));
      assert.equal(await client.refresh(), false, 'unchanged: a 304');
      assert.deepEqual(seen, [undefined, '"v1"']);

      list = { ips: [], users: ['eve'] };
      etag = '"v2"';
      assert.equal(await client.refresh(), true);
      assert.equal(interceptor.onInvocationEvent({ requestId: 'p-2', event: eventBuffer('function-url', from('198.51.100.7')), headers: {} }), undefined);
      interceptor.onInvocationResponse('p-2', okResponse);
      assert.deepEqual(client.snapshot, { ips: [], users: ['eve'] });

      mode = 'error';
      assert.equal(await client.refresh(), false);
      assert.equal(await client.refresh(), false);
      mode = 'garbage';
      assert.equal(await client.refresh(), false);
      assert.deepEqual(client.snapshot, { ips: [], users: ['eve'] }, 'the last good list stays');
      assert.equal(errors.length, 1, 'told once per failing streak');
      assert.match(errors[0]!.message, /keeping the last one/);

      // Polling on its own timer picks up changes.
      mode = 'ok';
      list = { ips: ['203.0.113.0/24'], users: [] };
      etag = '"v3"';
      client.start();
      const deadline = Date.now() + 5000;
      while (!client.isIpDenied('203.0.113.9') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(client.isIpDenied('203.0.113.9'), true);
    } finally {
      client.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('an unreachable server: nothing denied, one error, no throw', async () => {
    const errors: Error[] = [];
    const client = new DenyListClient({ endpoint: 'http://127.0.0.1:9', pollMs: 50, requestTimeoutMs: 500, onError: (e) => errors.push(e) });
    assert.equal(await client.refresh(), false);
    assert.equal(client.isIpDenied('1.2.3.4'), false);
    assert.equal(errors.length, 1);
    client.stop();
  });

  test('deny list bodies are checked', () => {
    assert.deepEqual(parseDenyList('{"ips":["1.2.3.4",{"value":"10.0.0.0/8"},{"nope":1},7],"users":[{"value":"bob"}]}'), { ips: ['1.2.3.4', '10.0.0.0/8'], users: ['bob'] });
    assert.deepEqual(parseDenyList('{}'), { ips: [], users: [] });
    assert.throws(() => parseDenyList('nope'), /not JSON/);
    assert.throws(() => parseDenyList('null'), /not a JSON object/);
    assert.throws(() => parseDenyList('{"ips":"1.2.3.4"}'), /"ips" is not an array/);
  });
});

describe('response evaluation, redaction, limits and failures', () => {
  test('response addresses are evaluated: a rule on the response status and headers reports its match', async () => {
    const rules = {
      version: '2.2',
      metadata: { rules_version: 'resp-1' },
      rules: [
        { id: 'resp-1', name: 'leaky header', tags: { type: 'information_disclosure', category: 'attack_attempt' }, conditions: [{ operator: 'match_regex', parameters: { inputs: [{ address: 'server.response.headers.no_cookies', key_path: ['x-powered-by'] }], regex: 'PHP' } }] },
        { id: 'resp-2', name: 'server error', tags: { type: 'error', category: 'attack_attempt' }, conditions: [{ operator: 'match_regex', parameters: { inputs: [{ address: 'server.response.status' }], regex: '^5' } }] },
      ],
    };
    const file = path.join(dir, 'response.json');
    await writeFile(file, JSON.stringify(rules));
    const custom = await WafEngine.start({ configured: file });
    try {
      const rec = recorder();
      const interceptor = interceptorWith(rec, { engine: custom });
      assert.equal(interceptor.onInvocationEvent({ requestId: 'r-1', event: eventBuffer('api-gateway-rest', benign), headers: {} }), undefined);
      interceptor.onInvocationResponse('r-1', Buffer.from(JSON.stringify({ statusCode: 502, headers: { 'X-Powered-By': 'PHP/8.1' }, body: '' })));
      assert.deepEqual(rec.signals.map((s) => [s.ruleId, s.parameter, s.blocked]).sort(), [
        ['resp-1', 'server.response.headers.no_cookies.x-powered-by', false],
        ['resp-2', 'server.response.status', false],
      ]);
    } finally {
      custom.dispose();
    }
  });

  test('secrets in matched values are redacted in signals and in _dd.appsec.json', () => {
    const rec = recorder();
    const interceptor = interceptorWith(rec, { mode: 'block' });
    const spec: RequestSpec = {
      method: 'POST',
      rawPath: '/login',
      headers: [['Content-Type', 'application/json']],
      body: JSON.stringify({ user: 'bob', password: "x' OR '1'='1' --", note: "token=abcd1234 ' OR '1'='1' --" }),
    };
    interceptor.onInvocationEvent({ requestId: 'sec-1', event: eventBuffer('api-gateway-http', spec), headers: {} });
    assert.ok(rec.signals.length > 0);
    for (const s of rec.signals) assert.equal(s.value, redacted, `${s.parameter} is redacted`);
    const json = rec.tags.find((t) => t.requestId === 'sec-1')!.meta['_dd.appsec.json']!;
    assert.ok(!json.includes("OR '1'='1'"), json);
    assert.ok(!json.includes('abcd1234'), json);
  });

  test('open contexts are bounded: the oldest invocation is reported and closed', () => {
    const rec = recorder();
    const interceptor = interceptorWith(rec, { maxOpenRequests: 3 });
    for (let i = 0; i < 10; i++) interceptor.onInvocationEvent({ requestId: `open-${i}`, event: eventBuffer('alb', benign), headers: {} });
    assert.equal(interceptor.openRequests, 3);
    assert.equal(rec.metrics.filter((m) => m.name === 'nimbus.appsec.requests').length, 7, 'the evicted ones are counted');
    interceptor.onInvocationError('open-9', Buffer.from('{}'), 'Runtime.Error');
    interceptor.onInvocationResponse('open-0', okResponse);
    assert.equal(interceptor.openRequests, 2);
    interceptor.close();
    assert.equal(interceptor.openRequests, 0);
    assert.equal(rec.metrics.filter((m) => m.name === 'nimbus.appsec.requests').length, 10);
  });

  test('a tiny budget: the timeout is counted on the span and in metrics, and the request passes', () => {
    const rec = recorder();
    const interceptor = interceptorWith(rec, { wafTimeoutMicros: 1 });
    const headers: Array<[string, string]> = Array.from({ length: 3000 }, (_, i) => [`X-H-${i}`, `value ${i} <b>${i}</b>`]);
    const spec: RequestSpec = { method: 'POST', rawPath: '/bulk', headers: [...headers, ['Content-Type', 'application/json']], body: JSON.stringify({ rows: Array.from({ length: 5000 }, (_, i) => ({ i, s: `row ${i}` })) }) };
    assert.equal(interceptor.onInvocationEvent({ requestId: 't-1', event: eventBuffer('api-gateway-rest', spec), headers: {} }), undefined);
    interceptor.onInvocationResponse('t-1', okResponse);
    const tags = rec.tags.find((t) => t.requestId === 't-1')!;
    assert.ok(tags.metrics['_dd.appsec.waf.timeouts']! >= 1);
    const timeouts = rec.metrics.find((m) => m.name === 'nimbus.appsec.waf.timeouts')!;
    assert.ok(timeouts.value >= 1);
  });

  test('events that are not HTTP, or not events at all, pass untouched and leave nothing open', async () => {
    for (const mode of ['block', 'monitor'] as const) {
      const rec = recorder();
      const interceptor = interceptorWith(rec, { mode });
      const bodies = ['not json', '[1,2,3]', '"a string"', '{"Records":[{"eventSource":"aws:sqs","body":"1 OR 1=1"}]}', '{"truncated": ', '', '   '];
      bodies.forEach((body, i) => assert.equal(interceptor.onInvocationEvent({ requestId: `x-${i}`, event: Buffer.from(body), headers: {} }), undefined));
      await nextTurn();
      assert.equal(interceptor.openRequests, 0, mode);
      interceptor.onInvocationResponse('x-3', okResponse);
      interceptor.onInvocationResponse('never-seen', okResponse);
      interceptor.onInvocationError('never-seen', Buffer.from('{}'), undefined);
      assert.deepEqual(rec.signals, []);
      assert.deepEqual(rec.metrics, []);
    }
  });

  test('without a WAF (engine unavailable) requests pass, and deny lists still apply', async () => {
    const off = await WafEngine.start({
      loadBinding: () => {
        throw new Error('no prebuilt binary');
      },
    });
    const rec = recorder();
    const interceptor = interceptorWith(rec, { engine: off, denyList: new DenyListMatcher({ ips: ['203.0.113.50'], users: [] }) });
    assert.equal(interceptor.onInvocationEvent({ requestId: 'off-1', event: eventBuffer('alb', sqli('application/json', { sourceIp: '198.51.100.1' })), headers: {} }), undefined);
    interceptor.onInvocationResponse('off-1', okResponse);
    assert.equal(rec.signals.length, 0);
    assert.ok(interceptor.onInvocationEvent({ requestId: 'off-2', event: eventBuffer('alb', { ...benign, headers: [['X-Forwarded-For', '203.0.113.50']] }), headers: {} }));
  });

  test('a failing tagger or sink costs the report, never the invocation', () => {
    const errors: Error[] = [];
    const interceptor = new AppsecInterceptor({
      engine,
      sink: { addMetric: () => {}, addSpans: () => {}, addLog: () => {}, addSecurity: () => {} },
      tagger: {
        tagRootSpan: () => {
          throw new Error('tracker gone');
        },
      },
      mode: 'block',
      wafTimeoutMicros: 1_000_000, // the verdict must not depend on the machine's load
      userClaim: 'sub',
      denyList: deniedNothing,
      onError: (e) => errors.push(e),
    });
    const verdict = interceptor.onInvocationEvent({ requestId: 'f-1', event: eventBuffer('function-url', sqli()), headers: {} });
    assert.ok(verdict, 'still blocked');
    assert.equal(interceptor.onInvocationEvent({ requestId: 'f-2', event: eventBuffer('function-url', benign), headers: {} }), undefined);
    interceptor.onInvocationResponse('f-2', okResponse);
    assert.equal(interceptor.openRequests, 0);
    assert.ok(errors.length >= 2 && errors.every((e) => e.message === 'tracker gone'));
  });
});
