/**
 * The Telemetry API (and the older Logs API) end to end: a real Node.js extension in a
 * layer subscribes and records what it receives; the platform events come in Lambda's
 * order with Lambda's fields and request ids, function and extension log records in the
 * form the schema version and log format call for; bad subscriptions are refused with
 * Lambda's ValidationError; and a subscriber that is slow or down never blocks the
 * function, loses events (counted) rather than memory, and is told with platform.logsDropped.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { TestServer, payloadJson, logResult } from '../helpers/nimbus.ts';
import { executable, extensionLayer, readRecordHandler, waitForLog } from '../fixtures/extensions/helpers.ts';

let server: TestServer;
let layer: string;
before(async () => {
  server = await TestServer.start();
  layer = await extensionLayer(server, 'node-telemetry', { 'node-telemetry': 'node-telemetry.mjs' });
});
after(async () => {
  await server.stop();
});

interface TelemetryEvent {
  time: string;
  type: string;
  record: Record<string, unknown> & { requestId?: string; metrics?: Record<string, number>; spans?: Array<{ name: string; start: string; durationMs: number }> };
}

const handler = readRecordHandler('node-telemetry.ndjson');
const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

async function invoke(FunctionName: string, payload: Record<string, unknown> = {}, tail = false) {
  const out = await server.client.send(new InvokeCommand({ FunctionName, Payload: Buffer.from(JSON.stringify(payload)), LogType: tail ? 'Tail' : 'None' }));
  assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload ?? new Uint8Array()).toString());
  return { out, body: payloadJson(out.Payload) as { records: TelemetryEvent[] }, tail: logResult(out.LogResult) };
}

/** Invokes until the recorded events satisfy `done` (telemetry arrives after the fact). */
async function recordsUntil(fn: string, done: (records: TelemetryEvent[]) => boolean, timeoutMs = 10_000): Promise<TelemetryEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await invoke(fn, {});
    if (done(body.records)) return body.records;
    if (Date.now() > deadline) throw new Error(`telemetry not complete after ${timeoutMs} ms:\n${body.records.map((r) => JSON.stringify(r)).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const requestIdOf = (tail: string) => /START RequestId: (\S+)/.exec(tail)![1]!;

test('a Node.js extension subscribed to the Telemetry API gets Init, invoke and log events in order, with their fields', async () => {
  await server.createFunction({ FunctionName: 'tel-order', Layers: [layer], MemorySize: 256, files: { 'index.mjs': handler } });
  const first = await invoke('tel-order', { log: 'hello telemetry' }, true);
  const id1 = requestIdOf(first.tail);
  const initDuration = Number(/Init Duration: ([\d.]+) ms/.exec(first.tail)![1]);
  const records = await recordsUntil('tel-order', (rs) => rs.some((r) => r.type === 'platform.report' && r.record.requestId === id1));

  for (const r of records) assert.match(r.time, iso, JSON.stringify(r));
  assert.ok(records.every((r) => (r as unknown as { receivedBy: string }).receivedBy === '/telemetry'), 'POSTed to the subscriber URI path');
  const platform = records.filter((r) => r.type.startsWith('platform.'));
  const at = (type: string, requestId?: string) => platform.findIndex((r) => r.type === type && (requestId === undefined || r.record.requestId === requestId));
  assert.equal(platform[0]!.type, 'platform.initStart', platform.map((r) => r.type).join());
  const order = [at('platform.initStart'), at('platform.telemetrySubscription'), at('platform.initRuntimeDone'), at('platform.extension'), at('platform.initReport'), at('platform.start', id1), at('platform.runtimeDone', id1), at('platform.report', id1)];
  assert.ok(order.every((i) => i >= 0), `all there: ${order}`);
  assert.deepEqual([...order].sort((a, b) => a - b), order, `in Lambda's order: ${platform.map((r) => r.type).join(', ')}`);

  const get = (type: string, requestId?: string) => platform[at(type, requestId)]!.record;
  assert.deepEqual(get('platform.initStart'), { initializationType: 'on-demand', phase: 'init', functionName: 'tel-order', functionVersion: '$LATEST', runtimeVersion: 'nodejs:24.v1' });
  assert.deepEqual(get('platform.telemetrySubscription'), { name: 'node-telemetry', state: 'Subscribed', types: ['platform', 'function', 'extension'] });
  assert.deepEqual(get('platform.extension'), { name: 'node-telemetry', state: 'Ready', events: ['INVOKE', 'SHUTDOWN'] });
  assert.deepEqual(get('platform.initRuntimeDone'), { initializationType: 'on-demand', phase: 'init', status: 'success' });
  const initReport = get('platform.initReport');
  assert.equal(initReport.status, 'success');
  assert.equal(initReport.phase, 'init');
  assert.ok(Math.abs(initReport.metrics!.durationMs! - initDuration) < 0.01, `initReport ${initReport.metrics!.durationMs} vs INIT ${initDuration}`);

  const start = get('platform.start', id1);
  assert.equal(start.version, '$LATEST');
  assert.equal((start.tracing as { type: string }).type, 'X-Amzn-Trace-Id');
  const runtimeDone = get('platform.runtimeDone', id1);
  assert.equal(runtimeDone.status, 'success');
  assert.ok(runtimeDone.metrics!.durationMs! > 0);
  assert.ok(runtimeDone.metrics!.producedBytes! > 0);
  assert.deepEqual(runtimeDone.spans!.map((s) => s.name), ['responseLatency', 'responseDuration', 'runtimeOverhead']);
  for (const s of runtimeDone.spans!) {
    assert.match(s.start, iso);
    assert.ok(s.durationMs >= 0);
  }
  const report = get('platform.report', id1);
  assert.equal(report.status, 'success');
  assert.deepEqual(Object.keys(report.metrics!).sort(), ['billedDurationMs', 'durationMs', 'initDurationMs', 'maxMemoryUsedMB', 'memorySizeMB']);
  assert.equal(report.metrics!.memorySizeMB, 256);
  assert.ok(report.metrics!.durationMs! >= runtimeDone.metrics!.durationMs!);
  assert.equal(report.metrics!.billedDurationMs, Math.max(1, Math.ceil(report.metrics!.durationMs!)));
  assert.deepEqual(report.spans!.map((s) => s.name), ['extensionOverhead']);
  const reportLine = first.tail.split('\n').find((l) => l.startsWith('REPORT'))!;
  assert.equal(report.metrics!.durationMs!.toFixed(2), /Duration: ([\d.]+) ms/.exec(reportLine)![1], 'platform.report and REPORT agree');

  // Log records: Text format, so strings, attributed as the function and extension wrote them.
  const fnLine = records.find((r) => r.type === 'function' && String(r.record).includes('hello telemetry'));
  assert.ok(fnLine, 'the function line');
  assert.match(fnLine.record as unknown as string, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\t${id1}\\tINFO\\thello telemetry$`));
  assert.ok(records.some((r) => r.type === 'extension' && String(r.record).startsWith('[node-telemetry] registered 200')), 'the extension line');
});

test('JSON log format with schema 2022-12-13: function records are objects; schema 2022-07-01 keeps strings', async () => {
  for (const [schema, structured] of [
    ['2022-12-13', true],
    ['2022-07-01', false],
  ] as const) {
    const fn = `tel-json-${schema}`;
    await server.createFunction({
      FunctionName: fn,
      Layers: [layer],
      LoggingConfig: { LogFormat: 'JSON' },
      Environment: { Variables: { TELEMETRY_SCHEMA: schema, TELEMETRY_TYPES: 'function' } },
      files: { 'index.mjs': handler },
    });
    const first = await invoke(fn, { log: 'structured please' });
    void first;
    const records = await recordsUntil(fn, (rs) => rs.some((r) => JSON.stringify(r.record).includes('structured please')));
    assert.ok(records.every((r) => r.type === 'function'), 'only the subscribed type');
    const rec = records.find((r) => JSON.stringify(r.record).includes('structured please'))!.record;
    if (structured) {
      assert.equal(typeof rec, 'object');
      assert.equal(rec.message, 'structured please');
      assert.equal(rec.level, 'INFO');
      assert.match(String(rec.requestId), /^[0-9a-f-]{36}$/);
    } else {
      assert.equal(typeof rec, 'string');
      assert.ok(JSON.parse(rec as unknown as string).message === 'structured please');
    }
  }
});

test('the Logs API (2021-03-18): its own event names and records, no Init events', async () => {
  await server.createFunction({ FunctionName: 'tel-logs-api', Layers: [layer], Environment: { Variables: { TELEMETRY_API: 'logs' } }, files: { 'index.mjs': handler } });
  const first = await invoke('tel-logs-api', { log: 'to the logs api' }, true);
  const id1 = requestIdOf(first.tail);
  const records = await recordsUntil('tel-logs-api', (rs) => rs.some((r) => r.type === 'platform.report' && r.record.requestId === id1));
  const types = records.map((r) => r.type);
  assert.ok(!types.some((t) => t.startsWith('platform.init')), types.join());
  assert.ok(types.includes('platform.logsSubscription'));
  assert.ok(!types.includes('platform.telemetrySubscription'));
  const of = (type: string) => records.find((r) => r.type === type && r.record.requestId === id1)!.record;
  assert.deepEqual(of('platform.start'), { requestId: id1 });
  assert.deepEqual(of('platform.runtimeDone'), { requestId: id1, status: 'success' });
  assert.deepEqual(of('platform.end'), { requestId: id1 });
  assert.deepEqual(Object.keys(of('platform.report')), ['requestId', 'metrics']);
  assert.ok(records.some((r) => r.type === 'function' && typeof r.record === 'string' && (r.record as unknown as string).includes('to the logs api')));
  const order = ['platform.start', 'platform.runtimeDone', 'platform.end', 'platform.report'].map((t) => records.findIndex((r) => r.type === t && r.record.requestId === id1));
  assert.deepEqual([...order].sort((a, b) => a - b), order);
});

test('bad subscriptions are refused with ValidationError and what is wrong; subscribing twice too', async () => {
  await server.createFunction({ FunctionName: 'tel-bad', Layers: [layer], Environment: { Variables: { TELEMETRY_BAD_REQUESTS: '1' } }, files: { 'index.mjs': handler } });
  await invoke('tel-bad');
  const lines = await waitForLog(server, 'tel-bad', /\[node-telemetry\] subscribed again/);
  const answers = lines.filter((l) => l.startsWith('[node-telemetry] bad subscription '));
  const expected = [
    'types should not be empty',
    'schemaVersion should be one of 2022-07-01, 2022-12-13, 2025-01-29',
    'buffering.maxItems should be an integer from 1000 to 10000; buffering.maxBytes should be an integer from 262144 to 1048576; buffering.timeoutMs should be an integer from 25 to 30000',
    'URI port is not provided',
    'URI scheme should be http (HTTPS is not supported); URI host should be sandbox.localdomain',
    'destination protocol TCP is not available in Nimbus; use HTTP',
    'the request body should be a JSON object',
  ];
  assert.deepEqual(
    answers,
    expected.map((m) => `[node-telemetry] bad subscription 400 ${JSON.stringify({ errorMessage: m, errorType: 'ValidationError' })}`),
  );
  assert.ok(lines.includes('[node-telemetry] subscription without identifier 403 {"errorMessage":"Missing Lambda-Extension-Identifier header","errorType":"Extension.MissingExtensionIdentifier"}'));
  assert.ok(lines.includes('[node-telemetry] subscribed 200 "OK"'));
  assert.ok(lines.includes('[node-telemetry] subscribed again 400 {"errorMessage":"Extension node-telemetry is already subscribed","errorType":"ValidationError"}'));
});

test('subscriptions close with Init: a later one gets Telemetry.SubscriptionClosed', async () => {
  // An internal extension (through the exec wrapper) that tries to subscribe during an invoke.
  const wrapper = `#!/bin/bash
API="http://\${AWS_LAMBDA_RUNTIME_API}"
H="\${TMPDIR:-/tmp}/late.headers"
(
  curl -sS -D "$H" -o /dev/null -X POST "$API/2020-01-01/extension/register" -H 'Lambda-Extension-Name: late' -d '{"events":["INVOKE"]}'
  ID=$(grep -i '^lambda-extension-identifier:' "$H" | tr -d '\\r' | awk '{print $2}')
  touch "\${TMPDIR:-/tmp}/late.ready"
  while true; do
    curl -sS -o /dev/null "$API/2020-01-01/extension/event/next" -H "Lambda-Extension-Identifier: $ID"
    echo "late subscribe: $(curl -sS -w ' %{http_code}' -X PUT "$API/2022-07-01/telemetry" -H "Lambda-Extension-Identifier: $ID" -d '{"schemaVersion":"2022-12-13","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243"}}')"
  done
) &
while [ ! -f "\${TMPDIR:-/tmp}/late.ready" ]; do sleep 0.01; done
exec "$@"
`;
  await server.createFunction({
    FunctionName: 'tel-late',
    Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: '/var/task/wrapper.sh' } },
    files: { 'index.mjs': handler, 'wrapper.sh': executable(wrapper) },
  });
  await invoke('tel-late');
  const lines = await waitForLog(server, 'tel-late', /late subscribe/);
  assert.ok(lines.includes('late subscribe: {"errorMessage":"Telemetry API subscription is closed","errorType":"Telemetry.SubscriptionClosed"} 403'), lines.join('\n'));
});

test('a slow subscriber never blocks the function: events are dropped, counted, and reported with platform.logsDropped', async () => {
  await server.createFunction({
    FunctionName: 'tel-slow',
    Layers: [layer],
    // The extension's memory counts too, as on Lambda.
    MemorySize: 512,
    Timeout: 30,
    Environment: { Variables: { TELEMETRY_DELAY_MS: '700', TELEMETRY_TYPES: 'platform,function', TELEMETRY_BUFFERING: '{"maxItems":1000,"timeoutMs":25}' } },
    files: { 'index.mjs': handler },
  });
  await invoke('tel-slow'); // cold
  const lines = 5000;
  const t0 = performance.now();
  await invoke('tel-slow', { lines });
  const elapsed = performance.now() - t0;
  assert.ok(elapsed < 2000, `the invoke took ${elapsed.toFixed(0)} ms while each delivery takes 700 ms`);
  const records = await recordsUntil('tel-slow', (rs) => rs.some((r) => r.type === 'platform.logsDropped'), 20_000);
  const dropped = records.filter((r) => r.type === 'platform.logsDropped');
  const droppedRecords = dropped.reduce((n, r) => n + (r.record.droppedRecords as number), 0);
  assert.ok(droppedRecords > 0);
  assert.ok((dropped[0]!.record.droppedBytes as number) > 0);
  assert.equal(dropped[0]!.record.reason, 'Some logs were dropped because the downstream consumer is slower than the logs production rate');
  const received = records.filter((r) => r.type === 'function' && String(r.record).includes('\tline ')).length;
  assert.ok(received < lines, `received ${received} of ${lines}`);
  assert.ok(received + droppedRecords >= lines, `received ${received} + dropped ${droppedRecords} account for all ${lines}`);
});

test('a subscriber that is down loses what could not be delivered, then gets platform.logsDropped when it is back', async () => {
  await server.createFunction({
    FunctionName: 'tel-down',
    Layers: [layer],
    Environment: { Variables: { TELEMETRY_LISTEN_AFTER_MS: '1500', TELEMETRY_TYPES: 'platform,function' } },
    files: { 'index.mjs': handler },
  });
  const t0 = performance.now();
  await invoke('tel-down', { log: 'while down' });
  await invoke('tel-down', { log: 'still down' });
  assert.ok(performance.now() - t0 < 1500, 'invokes are not held by a subscriber that is down');
  await waitForLog(server, 'tel-down', /listening now/);
  const records = await recordsUntil('tel-down', (rs) => rs.some((r) => r.type === 'platform.logsDropped'));
  const dropped = records.find((r) => r.type === 'platform.logsDropped')!;
  assert.ok((dropped.record.droppedRecords as number) > 0);
  assert.equal(dropped.record.reason, 'Some logs were dropped because they could not be delivered to node-telemetry');
  assert.ok(!records.some((r) => String(r.record).includes('while down')), 'what was sent while it was down is gone');
});
