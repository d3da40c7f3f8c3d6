/**
 * The Nimbus agent end to end: the built-in layer on real Node.js and Python functions in
 * the real sandbox. Each enhanced metric is checked against the REPORT line of the same
 * invocation; custom metrics come from hot-shots, spans from the OpenTelemetry SDK (joined
 * under the invocation's aws.lambda span), logs carry request ids; the SHUTDOWN flush
 * (on reconfiguration and on idle reaping) sends what was still buffered.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { UpdateFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { TestServer } from '../helpers/nimbus.ts';
import { agentLayerArn, agentLogs, bundledHandler, enhanced, eventually, invokeTail, metricPoints, reportOf, traceSpans, type Report } from '../helpers/agent.ts';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/nimbus.ts';

let server: TestServer;
let layer: string;
let nodeHandler: string;

before(async () => {
  server = await TestServer.start({ env: { NIMBUS_IDLE_TIMEOUT_MS: '600000' } });
  [layer, nodeHandler] = await Promise.all([agentLayerArn(server), bundledHandler('node-observed.mjs')]);
});
after(async () => {
  await server.stop();
});

/** Retires the function's environments: each agent gets SHUTDOWN and flushes what it holds. */
async function spinDown(fn: string): Promise<void> {
  await server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Description: `spun down ${Date.now()}` }));
}

const byRequest = (points: { requestId?: string; value: number }[], requestId: string): number[] => points.filter((p) => p.requestId === requestId).map((p) => p.value);
const close = (actual: number, expected: number, tolerance: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected} (±${tolerance})`);

test('Node.js: every enhanced metric matches the REPORT line of its invocation; custom metrics, spans and logs arrive', async () => {
  const fn = 'agent-node';
  await server.createFunction({ FunctionName: fn, Layers: [layer], MemorySize: 256, Handler: 'index.handler', files: { 'index.js': nodeHandler } });
  const reports: Report[] = [];
  for (let i = 0; i < 3; i++) {
    const out = await invokeTail(server, fn, { orderId: i + 1 });
    assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload ?? []).toString());
    reports.push(reportOf(out));
  }
  await spinDown(fn);
  const ids = reports.map((r) => r.requestId);
  const points = await eventually(
    () => metricPoints(server, fn),
    (ps) => ids.every((id) => enhanced(ps, 'duration').some((p) => p.requestId === id)) && enhanced(ps, 'shutdowns').length > 0,
    30_000,
    'enhanced metrics of all three invocations and the shutdown',
  );

  for (const [i, r] of reports.entries()) {
    const id = r.requestId;
    assert.deepEqual(byRequest(enhanced(points, 'invocations'), id), [1]);
    close(byRequest(enhanced(points, 'duration'), id)[0]!, r.durationMs / 1000, 0.00001, 'duration (s)');
    assert.deepEqual(byRequest(enhanced(points, 'billed_duration'), id), [r.billedMs / 1000]);
    assert.deepEqual(byRequest(enhanced(points, 'memorysize'), id), [256]);
    assert.deepEqual(byRequest(enhanced(points, 'max_memory_used'), id), [r.maxMemoryMb]);
    const cost = byRequest(enhanced(points, 'estimated_cost'), id)[0]!;
    close(cost, 2e-7 + (r.billedMs / 1000) * (256 / 1024) * (process.arch === 'arm64' ? 1.33334e-5 : 1.66667e-5), 1e-11, 'estimated_cost');
    const runtime = byRequest(enhanced(points, 'runtime_duration'), id)[0]!;
    const post = byRequest(enhanced(points, 'post_runtime_duration'), id)[0]!;
    assert.ok(runtime > 0 && runtime <= r.durationMs + 0.01, `runtime_duration ${runtime} within Duration ${r.durationMs}`);
    close(runtime + post, r.durationMs, 0.01, 'runtime + post-runtime = Duration');
    assert.deepEqual(byRequest(enhanced(points, 'errors'), id), []);
    if (i === 0) close(byRequest(enhanced(points, 'init_duration'), id)[0] ?? enhanced(points, 'init_duration')[0]!.value, r.initMs! / 1000, 0.00001, 'init_duration (s)');
    const tags = enhanced(points, 'duration').find((p) => p.requestId === id)!.tags;
    for (const t of [`functionname:${fn}`, 'memorysize:256', 'runtime:nodejs24.x', `cold_start:${i === 0}`, 'region:us-east-1', 'executedversion:$LATEST']) {
      assert.ok(tags.includes(t), `tag ${t} in ${tags.join(',')}`);
    }
  }
  assert.equal(enhanced(points, 'init_duration').length, 1);
  // Usage metrics: measured on at most one invocation per second (the first one here).
  for (const usage of ['cpu_total_time', 'fd_use', 'threads_use', 'tmp_max']) assert.ok(byRequest(enhanced(points, usage), ids[0]!).length === 1, `usage metric ${usage}`);

  // hot-shots: counters summed, distributions kept whole, gauges last.
  const placed = points.filter((p) => p.name === 'orders.placed');
  assert.equal(placed.reduce((a, p) => a + p.value, 0), 6);
  assert.ok(placed.every((p) => p.tags.includes('shop:a')));
  assert.deepEqual(points.filter((p) => p.name === 'order.value').flatMap((p) => p.values ?? []), [12.5, 12.5, 12.5]);

  // OpenTelemetry spans, joined under each invocation's aws.lambda span.
  const spans = await traceSpans(server, fn);
  for (const id of ids) {
    const root = spans.find((s) => s.name === 'aws.lambda' && s.meta.request_id === id);
    assert.ok(root, `aws.lambda span for ${id}`);
    assert.equal(root.resource, fn);
    assert.equal(root.parentId, undefined);
    const checkout = spans.find((s) => s.name === 'checkout' && s.traceId === root.traceId);
    assert.ok(checkout, `checkout span joined to ${id}`);
    assert.equal(checkout.parentId, root.spanId);
    const query = spans.find((s) => s.name === 'db.query' && s.traceId === root.traceId);
    assert.equal(query?.parentId, checkout.spanId);
  }
  assert.equal(spans.find((s) => s.meta.request_id === ids[0])?.meta.cold_start, 'true');
  assert.equal(spans.find((s) => s.meta.request_id === ids[1] && s.name === 'aws.lambda')?.meta.cold_start, 'false');

  // Logs: request ids, JSON parsed.
  const logs = await agentLogs(server, fn);
  for (const [i, id] of ids.entries()) {
    const json = logs.find((l) => l.requestId === id && l.attributes?.message === 'order placed');
    assert.ok(json, `JSON log of ${id}`);
    assert.equal(json.attributes?.orderId, i + 1);
    assert.ok(logs.some((l) => l.requestId === id && l.message.includes(`plain line for ${i + 1}`)), `text log of ${id}`);
    assert.ok(logs.some((l) => l.source === 'platform' && l.message.startsWith(`REPORT RequestId: ${id}`)), `REPORT of ${id}`);
  }
});

test('Python: enhanced metrics, DogStatsD over a socket and JSON logs with request ids', async () => {
  const fn = 'agent-python';
  await server.createFunction({
    FunctionName: fn,
    Layers: [layer],
    MemorySize: 256,
    Runtime: 'python3.11',
    Handler: 'python_observed.handler',
    files: { 'python_observed.py': readFileSync(path.join(repoRoot, 'test', 'fixtures', 'agent', 'python_observed.py'), 'utf8') },
  });
  const reports: Report[] = [];
  for (let i = 0; i < 2; i++) {
    const out = await invokeTail(server, fn, { job: i + 1 });
    assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload ?? []).toString());
    reports.push(reportOf(out));
  }
  await spinDown(fn);
  const points = await eventually(
    () => metricPoints(server, fn),
    (ps) => reports.every((r) => enhanced(ps, 'billed_duration').some((p) => p.requestId === r.requestId)),
    30_000,
    'python enhanced metrics',
  ).catch(async (err) => {
    console.log((await server.logs(fn)).join('\n'));
    throw err;
  });
  for (const r of reports) {
    assert.deepEqual(byRequest(enhanced(points, 'billed_duration'), r.requestId), [r.billedMs / 1000]);
    assert.deepEqual(byRequest(enhanced(points, 'max_memory_used'), r.requestId), [r.maxMemoryMb]);
  }
  assert.ok(enhanced(points, 'duration').every((p) => p.tags.includes('runtime:python3.11')));
  assert.equal(points.filter((p) => p.name === 'py.jobs.done').reduce((a, p) => a + p.value, 0), 2);
  const logs = await agentLogs(server, fn);
  for (const [i, r] of reports.entries()) {
    assert.ok(logs.some((l) => l.requestId === r.requestId && l.attributes?.job === i + 1), `python JSON log of ${r.requestId}`);
  }
});

test('timeouts, crashes and out-of-memory are counted, and what the invocation sent before is not lost', async () => {
  const fn = 'agent-failures';
  // 256 MB: Max Memory Used counts the whole environment, the agent's process with it (as on Lambda).
  await server.createFunction({ FunctionName: fn, Layers: [layer], Timeout: 1, MemorySize: 256, Handler: 'index.handler', files: { 'index.js': nodeHandler } });
  const timedOut = reportOf(await invokeTail(server, fn, { orderId: 100, sleepMs: 3000 }));
  const crashed = reportOf(await invokeTail(server, fn, { crash: true }));
  const oom = reportOf(await invokeTail(server, fn, { oom: true }));
  const fine = reportOf(await invokeTail(server, fn, { orderId: 101 }));
  await spinDown(fn);
  const points = await eventually(
    () => metricPoints(server, fn),
    (ps) => enhanced(ps, 'timeouts').length >= 1 && enhanced(ps, 'out_of_memory').length >= 1 && enhanced(ps, 'invocations').length >= 4,
    40_000,
    'failure metrics',
  );
  assert.deepEqual(byRequest(enhanced(points, 'timeouts'), timedOut.requestId), [1]);
  assert.deepEqual(byRequest(enhanced(points, 'errors'), timedOut.requestId), [1]);
  assert.deepEqual(byRequest(enhanced(points, 'errors'), crashed.requestId), [1]);
  assert.deepEqual(byRequest(enhanced(points, 'out_of_memory'), oom.requestId), [1]);
  assert.deepEqual(byRequest(enhanced(points, 'errors'), fine.requestId), []);
  // The timed-out invocation's own log line went out before its environment was reset.
  const logs = await agentLogs(server, fn);
  assert.ok(logs.some((l) => l.requestId === fine.requestId && l.attributes?.orderId === 101));
  const spans = await traceSpans(server, fn);
  const timedOutSpan = spans.find((s) => s.name === 'aws.lambda' && s.meta.request_id === timedOut.requestId);
  assert.ok(timedOutSpan?.error, 'the timed-out invocation has an error span');
});

test('idle reaping sends SHUTDOWN and the agent flushes on the way out', async () => {
  const reaping = await TestServer.start({ env: { NIMBUS_IDLE_TIMEOUT_MS: '1500' } });
  try {
    const fn = 'agent-reaped';
    await reaping.createFunction({
      FunctionName: fn,
      Layers: [await agentLayerArn(reaping)],
      MemorySize: 256,
      Handler: 'index.handler',
      // Periodic flushing with a long interval: nothing is sent until SHUTDOWN.
      Environment: { Variables: { DD_SERVERLESS_FLUSH_STRATEGY: 'periodically,600000' } },
      files: { 'index.js': nodeHandler },
    });
    const r = reportOf(await invokeTail(reaping, fn, { orderId: 5 }));
    const points = await eventually(() => metricPoints(reaping, fn), (ps) => enhanced(ps, 'shutdowns').length === 1, 30_000, 'shutdown flush after reaping');
    assert.deepEqual(byRequest(enhanced(points, 'duration'), r.requestId).length, 1);
    assert.equal(points.filter((p) => p.name === 'orders.placed').reduce((a, p) => a + p.value, 0), 2);
  } finally {
    await reaping.stop();
  }
});
