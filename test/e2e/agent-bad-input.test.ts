/**
 * Bad input to the agent, sent from inside a function (node-bad-input.mjs takes its
 * instructions from the event): malformed DogStatsD packets, oversized and invalid trace
 * payloads, invalid OTLP, a flood of log lines past the Telemetry API's buffers, unknown
 * flush strategies, invalid processing rules, and backends that answer garbage. Each time
 * the function succeeds, the agent says what was wrong (a 4xx to the client, a warning line),
 * and valid data sent afterwards still arrives.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { TestServer, logResult, payloadJson } from '../helpers/nimbus.ts';
import { agentLayerArn, agentLogs, bundledHandler, eventually, invokeTail, metricPoints, reportOf, traceSpans } from '../helpers/agent.ts';
import { RecordingServer } from '../helpers/recording-server.ts';
import type { TelemetryBatch } from '../../src/agent/model.ts';

let server: TestServer;
let layer: string;
let handler: string;

before(async () => {
  server = await TestServer.start({ env: { NIMBUS_IDLE_TIMEOUT_MS: '600000' } });
  [layer, handler] = await Promise.all([agentLayerArn(server), bundledHandler('node-bad-input.mjs')]);
});
after(async () => {
  await server.stop();
});

interface Response {
  path: string;
  status: number;
  body: string;
}
interface Result {
  datagrams: string[];
  responses: Response[];
}

async function createFn(fn: string, variables: Record<string, string> = {}, timeout = 30): Promise<void> {
  await server.createFunction({
    FunctionName: fn,
    Layers: [layer],
    MemorySize: 512,
    Timeout: timeout,
    Handler: 'index.handler',
    files: { 'index.js': handler },
    Environment: { Variables: { DD_SERVERLESS_FLUSH_STRATEGY: 'end', ...variables } },
  });
}

/**
 * Invokes; the function must succeed, and so must the invocation as a whole: an agent that
 * holds the environment past the deadline turns it into a timeout (REPORT `Status: timeout`,
 * the environment reset) even though the caller already has its answer.
 */
async function run(fn: string, event: Record<string, unknown>): Promise<Result & { requestId: string; durationMs: number }> {
  const out = await invokeTail(server, fn, event);
  assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload ?? []).toString());
  const tail = logResult(out.LogResult);
  assert.doesNotMatch(tail, /Status: timeout|Task timed out/, tail);
  const report = reportOf(out);
  return { ...(payloadJson(out.Payload) as Result), requestId: report.requestId, durationMs: report.durationMs };
}

/** The valid metric of invocation `seq` reached the telemetry store: the agent still works. */
async function validMetricArrives(fn: string, seq: number): Promise<void> {
  await eventually(
    () => metricPoints(server, fn, 'bad.input.ok'),
    (points) => points.some((p) => p.tags.includes(`seq:${seq}`)),
    20_000,
    `${fn}: bad.input.ok seq:${seq}`,
  );
}

const agentLines = async (fn: string, level: 'WARN' | 'ERROR'): Promise<string[]> =>
  (await server.logs(fn)).filter((l) => l.includes(`[nimbus-agent] ${level} `));

test('malformed DogStatsD packets: the function succeeds, the agent reports them, valid metrics still arrive', async () => {
  const fn = 'bad-dogstatsd';
  await createFn(fn);
  const malformed = [
    'garbage',
    '',
    ':1|c',
    'no.value|c',
    'no.type:1',
    'bad.type:1|zz',
    'bad.value:abc|c',
    'bad.rate:1|c|@x',
    '\u0000\u0001\u00ff\u00fe',
    '|||:::@@##',
    // One valid line among bad ones: the valid one counts, the others do not.
    'mixed.valid:3|c|#shop:a\n:::|x|@@\nmixed.broken:|c',
  ];
  const first = await run(fn, { datagrams: malformed, hugeDatagramBytes: 60_000, seq: 1 });
  assert.ok(first.datagrams.every((d) => d === 'sent'), JSON.stringify(first.datagrams));
  await validMetricArrives(fn, 1);
  const second = await run(fn, { datagrams: ['x'.repeat(1000)], seq: 2 });
  assert.equal(second.datagrams[0], 'sent');
  await validMetricArrives(fn, 2);

  const points = await metricPoints(server, fn);
  assert.equal(points.filter((p) => p.name === 'mixed.valid').reduce((n, p) => n + p.value, 0), 3);
  const names = new Set(points.map((p) => p.name));
  for (const bad of ['garbage', '', 'no.value', 'no.type', 'bad.type', 'bad.value', 'mixed.broken']) assert.ok(!names.has(bad), `no metric named ${JSON.stringify(bad)}`);
  // Reported, but not line by line: a client sending garbage cannot flood the function's log.
  const warnings = (await agentLines(fn, 'WARN')).filter((l) => l.includes('dogstatsd:'));
  assert.ok(warnings.length >= 1 && warnings.length <= 2, warnings.join('\n'));
  assert.deepEqual(await agentLines(fn, 'ERROR'), []);
});

test('trace intake: an oversized payload gets 413, invalid msgpack, JSON or content type 400; valid traces are still taken', async () => {
  const fn = 'bad-traces';
  await createFn(fn);
  const intake = (path: string, contentType: string, body: Record<string, unknown>) => ({ port: 8126, path, contentType, ...body });
  const validTrace = JSON.stringify([[{ trace_id: 4242, span_id: 77, name: 'e2e.valid', service: 'bad-traces', resource: 'ok', start: '__NOW_NS__', duration: 1_000_000 }]]);
  const result = await run(fn, {
    requests: [
      intake('/v0.4/traces', 'application/msgpack', { bodyBytes: 51 * 1024 * 1024 }),
      intake('/v0.4/traces', 'application/msgpack', { bodyBase64: Buffer.from([0xc1, 0xc1, 0xc1]).toString('base64') }),
      intake('/v0.4/traces', 'application/msgpack', { body: '' }),
      intake('/v0.4/traces', 'text/plain', { body: 'this is not a trace' }),
      intake('/v0.4/traces', 'application/json', { body: '[[{"trace_id": 1,' }),
      intake('/v0.4/traces', 'application/json', { body: '{"not":"an array"}' }),
      intake('/v0.5/traces', 'application/json', { body: '[]' }),
      intake('/v0.4/traces', 'application/json', { body: validTrace }),
    ],
    seq: 1,
  });
  assert.deepEqual(
    result.responses.map((r) => r.status),
    [413, 400, 400, 400, 400, 400, 400, 200],
    JSON.stringify(result.responses),
  );
  assert.match(result.responses[0]!.body, /exceeds 52428800 bytes/);
  assert.match(result.responses[1]!.body, /invalid msgpack/);
  assert.match(result.responses[4]!.body, /invalid JSON/);
  assert.match(result.responses[6]!.body, /v0.5 payloads must be msgpack/);
  await validMetricArrives(fn, 1);
  const spans = await eventually(() => traceSpans(server, fn), (s) => s.some((x) => x.name === 'e2e.valid'), 20_000, 'the valid trace');
  const valid = spans.find((s) => s.name === 'e2e.valid')!;
  const root = spans.find((s) => s.name === 'aws.lambda' && s.meta.request_id === result.requestId);
  assert.equal(valid.parentId, root?.spanId, 'the valid span was joined under its invocation');
});

test('OTLP receiver: invalid JSON, a wrong shape and corrupt gzip get 400, protobuf 415, oversized 413; valid OTLP is still taken', async () => {
  const fn = 'bad-otlp';
  await createFn(fn);
  const otlp = (path: string, contentType: string, body: Record<string, unknown>) => ({ port: 4318, path, contentType, ...body });
  const validLogs = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: 'otlp line after the bad ones' } }] }] }] });
  const result = await run(fn, {
    requests: [
      otlp('/v1/traces', 'application/json', { body: '{not json' }),
      otlp('/v1/metrics', 'application/json', { body: JSON.stringify({ resourceMetrics: [{ scopeMetrics: [{ metrics: [{ name: '' }] }] }] }) }),
      otlp('/v1/logs', 'application/json', { body: 'not gzip at all', contentEncoding: 'gzip' }),
      otlp('/v1/traces', 'application/x-protobuf', { bodyBase64: Buffer.from([0x0a, 0x00]).toString('base64') }),
      otlp('/v1/traces', 'application/json', { bodyBytes: 5 * 1024 * 1024 }),
      otlp('/v1/logs', 'application/json', { body: validLogs }),
    ],
    seq: 1,
  });
  assert.deepEqual(result.responses.map((r) => r.status), [400, 400, 400, 415, 413, 200], JSON.stringify(result.responses));
  assert.match(result.responses[0]!.body, /invalid JSON/);
  assert.match(result.responses[1]!.body, /name must be a non-empty string/);
  assert.match(result.responses[2]!.body, /not valid gzip/);
  assert.match(result.responses[3]!.body, /OTEL_EXPORTER_OTLP_PROTOCOL=http\/json/);
  await validMetricArrives(fn, 1);
  await eventually(() => agentLogs(server, fn), (logs) => logs.some((l) => l.message === 'otlp line after the bad ones'), 20_000, 'the valid OTLP log');
});

test('a log flood: 20,000 lines in one invocation; the function returns normally, the agent survives, and every missing line is reported as dropped', async (t) => {
  const backend = await RecordingServer.start();
  try {
    const fn = 'bad-flood';
    await createFn(fn, { NIMBUS_TELEMETRY_ENDPOINT: `${backend.url}/telemetry` });
    const lines = 20_000;
    const flood = await run(fn, { floodLines: lines, seq: 1 });
    await run(fn, { seq: 2 });
    await run(fn, { seq: 3 });
    const batches = await eventually(
      async () => backend.accepted().map((r) => r.json as TelemetryBatch),
      (bs) => [2, 3].every((seq) => bs.some((b) => b.metrics.some((p) => p.name === 'bad.input.ok' && p.tags.includes(`seq:${seq}`)))),
      20_000,
      'the metrics of the invocations after the flood',
    );
    const logs = batches.flatMap((b) => b.logs);
    const received = logs.flatMap((l) => /flood line (\d+)$/.exec(l.message)?.[1] ?? []).map(Number);
    assert.equal(new Set(received).size, received.length, 'no flood line twice');
    // Two places may drop: the Telemetry API's buffers (the platform reports platform.logsDropped,
    // which the agent turns into a warn line) and the agent's own bound (NIMBUS_AGENT_MAX_BUFFERED,
    // counted in every batch's `dropped`).
    const platformDropped = logs
      .flatMap((l) => /^Lambda dropped (\d+) log records/.exec(l.message)?.[1] ?? [])
      .reduce((n, count) => n + Number(count), 0);
    const agentDropped = batches.at(-1)!.dropped.logs;
    const missing = lines - received.length;
    t.diagnostic(`flood: ${received.length} of ${lines} lines received; agent dropped ${agentDropped}, platform dropped ${platformDropped}; the invocation took ${flood.durationMs} ms`);
    assert.ok(missing <= agentDropped + platformDropped, `${missing} missing lines, ${agentDropped + platformDropped} reported dropped`);
    // Besides flood lines only a handful of others (START, the extension line) can be among the dropped.
    assert.ok(agentDropped + platformDropped - missing <= 5, `${agentDropped + platformDropped - missing} dropped records were not flood lines`);
    if (platformDropped === 0) {
      // The agent's bound drops the oldest: what came through is the newest lines, all of them.
      const oldest = Math.min(...received);
      assert.deepEqual(received.slice().sort((a, b) => a - b), Array.from({ length: lines - oldest + 1 }, (_, i) => oldest + i));
    }
  } finally {
    await backend.stop();
  }
});

test('unknown flush strategy: a clear warning, and the default (data still arrives)', async () => {
  const fn = 'bad-strategy';
  await createFn(fn, { DD_SERVERLESS_FLUSH_STRATEGY: 'sometimes' });
  await run(fn, { seq: 1 });
  // The default flushes at the end of a new function's invocations: the metric is already there.
  await validMetricArrives(fn, 1);
  const warnings = await agentLines(fn, 'WARN');
  assert.ok(
    warnings.some((w) => w.includes('flush strategy "sometimes" is not one of') && w.includes('using the adaptive default')),
    warnings.join('\n'),
  );
});

const cardLine = JSON.stringify({ level: 'info', message: 'paid', card: '4111-1111-1111-1111', note: 'card 4111-1111-1111-1111 charged' });

test('processing rules: an invalid regex is skipped with a warning naming it; the valid mask still applies', async () => {
  const fn = 'bad-rules';
  const rules = [
    { type: 'exclude_at_match', name: 'broken_rule', pattern: '([unclosed' },
    { type: 'mask_sequences', name: 'mask_cards', pattern: '\\d{4}-\\d{4}-\\d{4}-\\d{4}', replace_placeholder: '[card]' },
  ];
  await createFn(fn, { DD_LOGS_CONFIG_PROCESSING_RULES: JSON.stringify(rules) });
  const { requestId } = await run(fn, { lines: [cardLine, 'plain card 5500-0000-0000-0004 here'], seq: 1 });
  await validMetricArrives(fn, 1);
  const warnings = await agentLines(fn, 'WARN');
  assert.ok(warnings.some((w) => w.includes('processing rule "broken_rule" (#0) has an invalid pattern')), warnings.join('\n'));
  // Both lines, which may come in different batches (a line printed just before the
  // response can reach the agent after that invocation's end flush).
  const logs = await eventually(
    () => agentLogs(server, fn),
    (ls) => ls.some((l) => l.message.includes('plain card')) && ls.some((l) => l.attributes?.message === 'paid'),
    20_000,
    'the masked lines',
  );
  const mine = logs.filter((l) => l.requestId === requestId && l.source === 'function');
  const json = mine.find((l) => l.attributes?.message === 'paid');
  assert.equal(json?.attributes?.card, '[card]');
  assert.equal(json?.attributes?.note, 'card [card] charged');
  assert.ok(mine.some((l) => l.message.endsWith('plain card [card] here')), JSON.stringify(mine.map((l) => l.message)));
  assert.ok(!logs.some((l) => JSON.stringify(l).match(/\d{4}-\d{4}-\d{4}-\d{4}/)), 'no card number left in the stored logs');
});

test('processing rules that are not JSON: a warning, and the logs are shipped unprocessed', async () => {
  const fn = 'bad-rules-json';
  await createFn(fn, { DD_LOGS_CONFIG_PROCESSING_RULES: '[{"type": "mask_sequences", "name": oops' });
  const { requestId } = await run(fn, { lines: ['a line that still arrives'], seq: 1 });
  await validMetricArrives(fn, 1);
  const warnings = await agentLines(fn, 'WARN');
  assert.ok(warnings.some((w) => w.includes('DD_LOGS_CONFIG_PROCESSING_RULES is not valid JSON') && w.includes('no processing rules apply')), warnings.join('\n'));
  await eventually(
    () => agentLogs(server, fn),
    (logs) => logs.some((l) => l.requestId === requestId && l.message.endsWith('a line that still arrives')),
    20_000,
    'the unprocessed line',
  );
});

/** A TCP server that answers every request with bytes that are not HTTP, then hangs up. */
async function garbageServer(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => socket.end('\u0000\u0001 this is not HTTP at all\r\n\r\n'));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const { port } = tcp.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/telemetry`,
    connections: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        tcp.close(() => resolve());
      }),
  };
}

test('backends answering garbage or 4xx: every invocation succeeds well within its timeout, and nothing is retried forever', async () => {
  const garbage = await garbageServer();
  const refusing = await RecordingServer.start();
  refusing.answerWith({ status: 400, body: '<html>nope</html>' });
  try {
    const fn = 'bad-backends';
    // The Nimbus backend gets bytes that are not HTTP; Datadog answers 400 with HTML; OTLP answers 400.
    await createFn(fn, { NIMBUS_TELEMETRY_ENDPOINT: garbage.url, DD_API_KEY: 'k', DD_URL: refusing.url, NIMBUS_OTLP_ENDPOINT: refusing.url }, 3);
    for (let seq = 1; seq <= 5; seq++) await run(fn, { seq });
    assert.ok(garbage.connections() >= 5, `${garbage.connections()} attempts at the garbage backend`);
    const warnings = await eventually(
      () => agentLines(fn, 'WARN'),
      (lines) => lines.some((l) => l.includes('backend nimbus failed')) && lines.some((l) => l.includes('backend otlp refused the batch for good')),
      10_000,
      'the failures reported',
    );
    assert.ok(warnings.some((w) => w.includes('backend datadog failed') || w.includes('backend datadog refused')), warnings.join('\n'));
    // OTLP's 400 is permanent: each batch was posted once, never again.
    const otlpLogs = refusing.requests.filter((r) => r.path === '/v1/logs');
    const bodies = otlpLogs.map((r) => r.body.toString());
    assert.equal(new Set(bodies).size, bodies.length, 'no OTLP batch was sent twice');
  } finally {
    await Promise.all([garbage.close(), refusing.stop()]);
  }
});

test('a backend that never answers: invocations end before their deadline instead of timing out', async () => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const fn = 'bad-silent-backend';
    // DD_FLUSH_TIMEOUT stays at 30 s, far past the function's 2 s timeout.
    await createFn(fn, { NIMBUS_TELEMETRY_ENDPOINT: `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/telemetry` }, 2);
    const first = await run(fn, { seq: 1 });
    const second = await run(fn, { seq: 2 });
    // The end-of-invocation flush waited for the silent backend, but only up to the deadline.
    for (const r of [first, second]) assert.ok(r.durationMs < 2000, `Duration ${r.durationMs} ms`);
    assert.ok(sockets.size >= 1, 'the agent did try the backend');
    // No timeout, so no reset: the second invocation ran in the same (warm) environment.
    const lines = await server.logs(fn);
    assert.equal(lines.filter((l) => l.startsWith('EXTENSION\tName: nimbus-agent')).length, 1, 'one environment');
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});
