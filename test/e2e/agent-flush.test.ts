/**
 * The agent's flush strategies, measured end to end: each function sends its telemetry to a
 * recording backend (NIMBUS_TELEMETRY_ENDPOINT), and every invocation leaves one countable
 * custom metric (hot-shots, tagged with its sequence number). What is asserted is when each
 * invocation's metric arrived relative to the invocations around it (ordering facts only);
 * the times themselves are printed as diagnostics.
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InvokeCommand, UpdateFunctionConfigurationCommand, type CreateFunctionCommandInput } from '@aws-sdk/client-lambda';
import { TestServer, payloadJson } from '../helpers/nimbus.ts';
import { agentLayerArn, bundledHandler, enhanced, eventually, invokeTail, metricPoints, reportOf } from '../helpers/agent.ts';
import { RecordingServer } from '../helpers/recording-server.ts';
import type { TelemetryBatch } from '../../src/agent/model.ts';

let server: TestServer;
let backend: RecordingServer;
let layer: string;
let handler: string;

before(async () => {
  [server, backend] = await Promise.all([TestServer.start({ env: { NIMBUS_IDLE_TIMEOUT_MS: '600000' } }), RecordingServer.start()]);
  [layer, handler] = await Promise.all([agentLayerArn(server), bundledHandler('node-counted.mjs')]);
});
after(async () => {
  await Promise.all([server.stop(), backend.stop()]);
});

interface Arrival {
  batch: TelemetryBatch;
  receivedAt: number;
}

/** One invocation as the caller saw it: when it was sent and when the answer came back. */
interface Call {
  seq: number;
  requestId: string;
  sentAt: number;
  returnedAt: number;
}

/** Each function posts to its own path, so one recording server serves every test. */
const endpointPath = (fn: string): string => `/telemetry/${fn}`;

function batchesOf(fn: string): Arrival[] {
  return backend.accepted(endpointPath(fn)).map((r) => ({ batch: r.json as TelemetryBatch, receivedAt: r.receivedAt }));
}

/** Every arrival of each invocation's custom metric, raw: a metric sent twice shows up twice. */
function seqArrivals(arrivals: Arrival[]): Map<number, number[]> {
  const bySeq = new Map<number, number[]>();
  for (const { batch, receivedAt } of arrivals) {
    for (const point of batch.metrics) {
      if (point.name !== 'e2e.calls') continue;
      const seq = Number(point.tags.find((t) => t.startsWith('seq:'))?.slice(4));
      for (let i = 0; i < point.value; i++) bySeq.set(seq, [...(bySeq.get(seq) ?? []), receivedAt]);
    }
  }
  return bySeq;
}

async function createCounted(fn: string, variables: Record<string, string>, extra: Partial<CreateFunctionCommandInput> = {}): Promise<void> {
  await server.createFunction({
    FunctionName: fn,
    Layers: [layer],
    // Max Memory Used counts the agent's process too (as on Lambda).
    MemorySize: 256,
    Handler: 'index.handler',
    files: { 'index.js': handler },
    Environment: { Variables: { NIMBUS_TELEMETRY_ENDPOINT: backend.url + endpointPath(fn), ...variables } },
    ...extra,
  });
}

async function call(fn: string, seq: number): Promise<Call> {
  const sentAt = Date.now();
  const out = await invokeTail(server, fn, { seq });
  const returnedAt = Date.now();
  assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload ?? []).toString());
  return { seq, requestId: reportOf(out).requestId, sentAt, returnedAt };
}

async function callInTurn(fn: string, count: number, pauseMs = 0): Promise<Call[]> {
  const calls: Call[] = [];
  for (let seq = 1; seq <= count; seq++) {
    calls.push(await call(fn, seq));
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
  return calls;
}

/** Retires the function's environments (SHUTDOWN); returns when that was asked. */
async function spinDown(fn: string): Promise<number> {
  const at = Date.now();
  await server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Description: `spun down ${at}` }));
  return at;
}

/** Waits until every invocation's metric has arrived and the SHUTDOWN flush (its `shutdowns` metric) too. */
async function everything(fn: string, count: number): Promise<Arrival[]> {
  return eventually(
    async () => batchesOf(fn),
    (arrivals) => seqArrivals(arrivals).size === count && arrivals.some((a) => a.batch.metrics.some((p) => p.name === 'aws.lambda.enhanced.shutdowns')),
    30_000,
    `${fn}: all ${count} custom metrics and the SHUTDOWN flush`,
  );
}

/** The request id of every sample of `metric`, raw: a merged point names its samples' invocations in `requestIds`. */
function sampleRequestIds(arrivals: Arrival[], metric: string): Array<string | undefined> {
  return arrivals
    .flatMap((a) => a.batch.metrics)
    .filter((p) => p.name === metric)
    .flatMap((p) => p.requestIds ?? (p.values ?? [p.value]).map(() => p.requestId));
}

/** Nothing lost, nothing twice: each invocation's metric and its `invocations` sample exactly once. */
function assertEachOnce(arrivals: Arrival[], calls: Array<Pick<Call, 'seq' | 'requestId'>>): void {
  const bySeq = seqArrivals(arrivals);
  for (const c of calls) assert.equal(bySeq.get(c.seq)?.length, 1, `seq ${c.seq} arrived ${bySeq.get(c.seq)?.length ?? 0} times`);
  assert.deepEqual(sampleRequestIds(arrivals, 'aws.lambda.enhanced.invocations').sort(), calls.map((c) => c.requestId).sort());
}

/** The measured times, as diagnostics: when each invocation was sent, returned, and its metric arrived. */
function report(t: TestContext, strategy: string, calls: Call[], arrivals: Arrival[], shutdownAt?: number): void {
  const bySeq = seqArrivals(arrivals);
  const t0 = calls[0]!.sentAt;
  for (const c of calls) {
    const at = bySeq.get(c.seq)?.[0];
    const arrived = at === undefined ? 'never' : `+${at - c.sentAt} ms after its invoke was sent${shutdownAt !== undefined && at >= shutdownAt ? ' (SHUTDOWN flush)' : ''}`;
    t.diagnostic(`${strategy} #${c.seq}: sent at +${c.sentAt - t0} ms, returned +${c.returnedAt - c.sentAt} ms later; its metric arrived ${arrived}`);
  }
  t.diagnostic(`${strategy}: batches at ${arrivals.map((a) => `+${a.receivedAt - t0}`).join(', ')} ms${shutdownAt !== undefined ? `; spin-down at +${shutdownAt - t0} ms` : ''}`);
}

test('end: one batch after every invocation, carrying its metric before the next invocation starts', async (t) => {
  const fn = 'flush-end';
  await createCounted(fn, { DD_SERVERLESS_FLUSH_STRATEGY: 'end' });
  const calls = await callInTurn(fn, 5);
  const beforeShutdown = batchesOf(fn);
  const shutdownAt = await spinDown(fn);
  const arrivals = await everything(fn, calls.length);
  report(t, 'end', calls, arrivals, shutdownAt);

  assert.equal(beforeShutdown.length, calls.length, 'one batch per invocation');
  const bySeq = seqArrivals(arrivals);
  calls.forEach((c, i) => {
    const at = bySeq.get(c.seq)![0]!;
    assert.ok(at >= c.sentAt, `#${c.seq} arrived after its invoke was sent`);
    assert.ok(at < shutdownAt, `#${c.seq} arrived with its own end flush`);
    // The i-th batch is the one that carries the i-th invocation's metric (and only it). The
    // flush runs after the caller got its answer, so its arrival is not compared with the
    // next invoke's sending: under load it may land a moment after.
    assert.deepEqual([...seqArrivals([beforeShutdown[i]!]).keys()], [c.seq]);
  });
  assertEachOnce(arrivals, calls);
});

test('end,60000: the first invocation flushes at its end, then nothing until SHUTDOWN', async (t) => {
  const fn = 'flush-end-60000';
  await createCounted(fn, { DD_SERVERLESS_FLUSH_STRATEGY: 'end,60000' });
  const calls = await callInTurn(fn, 4);
  const beforeShutdown = batchesOf(fn);
  const shutdownAt = await spinDown(fn);
  const arrivals = await everything(fn, calls.length);
  report(t, 'end,60000', calls, arrivals, shutdownAt);

  assert.equal(beforeShutdown.length, 1, 'a single batch before SHUTDOWN');
  const bySeq = seqArrivals(arrivals);
  // The end flush runs after the response went back to the caller, so it may land just after
  // #2 was sent; it lands long before SHUTDOWN.
  assert.ok(bySeq.get(1)![0]! < shutdownAt, '#1 arrived with its own end flush');
  for (const c of calls.slice(1)) assert.ok(bySeq.get(c.seq)![0]! >= shutdownAt, `#${c.seq} arrived with the SHUTDOWN flush`);
  assertEachOnce(arrivals, calls);
});

test('periodically,60000: a flush at the start of the first invocation, then nothing until SHUTDOWN', async (t) => {
  const fn = 'flush-periodically';
  await createCounted(fn, { DD_SERVERLESS_FLUSH_STRATEGY: 'periodically,60000' });
  const calls = await callInTurn(fn, 4);
  const beforeShutdown = batchesOf(fn);
  const shutdownAt = await spinDown(fn);
  const arrivals = await everything(fn, calls.length);
  report(t, 'periodically,60000', calls, arrivals, shutdownAt);

  // The first invocation's start flush carries what Init produced and the invocation count.
  // It races with that invocation's handler (both begin at INVOKE), so it may carry its
  // metric too; never a later invocation's.
  assert.ok(beforeShutdown.length <= 1, `${beforeShutdown.length} batches before SHUTDOWN`);
  const early: number[] = [...seqArrivals(beforeShutdown).keys()];
  assert.deepEqual(early.filter((seq) => seq !== 1), [], `only the first invocation's metric may precede SHUTDOWN: ${early.join(', ')}`);
  for (const c of calls) {
    if (early.includes(c.seq)) continue;
    assert.ok(seqArrivals(arrivals).get(c.seq)![0]! >= shutdownAt, `#${c.seq} arrived with the SHUTDOWN flush`);
  }
  assertEachOnce(arrivals, calls);
});

test('continuously,1000: batches go out in the background between invocations, not at each end', async (t) => {
  const fn = 'flush-continuously';
  await createCounted(fn, { DD_SERVERLESS_FLUSH_STRATEGY: 'continuously,1000' });
  // 250 ms apart: a background flush is due at every fourth invocation or so, never at an end.
  const calls = await callInTurn(fn, 7, 250);
  const beforeShutdown = batchesOf(fn);
  const shutdownAt = await spinDown(fn);
  const arrivals = await everything(fn, calls.length);
  report(t, 'continuously,1000', calls, arrivals, shutdownAt);

  // Not one batch per end: background flushes, due every second, each carry several invocations.
  assert.ok(beforeShutdown.length < calls.length, `${beforeShutdown.length} batches for ${calls.length} invocations`);
  const carried = beforeShutdown.map((a) => seqArrivals([a]).size);
  assert.ok(carried.some((n) => n >= 2), `one background flush carried several invocations: ${carried.join(', ')}`);
  // No flush at an end: the second invocation's metric waited for a later invocation's
  // background flush. (The first one's may ride the flush its own start began, which races
  // with its handler.)
  const second = seqArrivals(arrivals).get(2)![0]!;
  assert.ok(second >= calls[2]!.sentAt, '#2 went out with a later invocation');
  assertEachOnce(arrivals, calls);
});

test('the adaptive default: a flush at each end until 20 invocations are seen, then none per invocation when they come quickly', async (t) => {
  const fn = 'flush-adaptive';
  await createCounted(fn, {});
  const calls = await callInTurn(fn, 25);
  const beforeShutdown = batchesOf(fn);
  const shutdownAt = await spinDown(fn);
  const arrivals = await everything(fn, calls.length);
  report(t, 'default', calls, arrivals, shutdownAt);

  const bySeq = seqArrivals(arrivals);
  // The 20th invocation fills the window of 20 starts: from it on the default is continuous
  // (20 s), so with these quick invocations nothing more goes out before SHUTDOWN.
  calls.slice(0, 19).forEach((c, i) => assert.deepEqual([...seqArrivals([beforeShutdown[i]!]).keys()], [c.seq], `#${c.seq} flushed at its own end`));
  for (const c of calls.slice(19)) assert.ok(bySeq.get(c.seq)![0]! >= shutdownAt, `#${c.seq} held until SHUTDOWN`);
  assert.equal(beforeShutdown.length, 19, 'one batch for each of the first 19 invocations');
  assertEachOnce(arrivals, calls);
});

const managed = (maxConcurrency: number): Partial<CreateFunctionCommandInput> => ({
  MemorySize: 2048,
  CapacityProviderConfig: {
    LambdaManagedInstancesCapacityProviderConfig: {
      CapacityProviderArn: 'arn:aws:lambda:us-east-1:000000000000:capacity-provider:local',
      PerExecutionEnvironmentMaxConcurrency: maxConcurrency,
    },
  },
});

interface HandlerTimes {
  seq: number;
  startedAt: number;
  endedAt: number;
}

async function concurrentCalls(fn: string, seqs: number[], sleepMs: number): Promise<HandlerTimes[]> {
  const outs = await Promise.all(
    seqs.map((seq) => server.client.send(new InvokeCommand({ FunctionName: fn, Payload: Buffer.from(JSON.stringify({ seq, sleepMs })) }))),
  );
  for (const out of outs) assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload ?? []).toString());
  return outs.map((out) => payloadJson(out.Payload) as HandlerTimes);
}

test('managed instances: concurrent invokes are never held up; data goes out in the background and at SHUTDOWN', async (t) => {
  const fn = 'flush-managed';
  await createCounted(fn, { DD_SERVERLESS_FLUSH_STRATEGY: 'continuously,500' }, managed(4));
  const times = await concurrentCalls(fn, [1, 2, 3, 4], 700);
  // All four ran at once: none waited for another, nor for a flush.
  assert.ok(Math.max(...times.map((x) => x.startedAt)) < Math.min(...times.map((x) => x.endedAt)), `overlapping handlers: ${JSON.stringify(times)}`);
  const background = await eventually(async () => batchesOf(fn), (a) => seqArrivals(a).size === 4, 15_000, 'background flush of the four invocations');
  const shutdownAt = await spinDown(fn);
  const arrivals = await eventually(async () => batchesOf(fn), (a) => a.some((x) => x.batch.metrics.some((p) => p.name === 'aws.lambda.enhanced.shutdowns')), 30_000, 'SHUTDOWN flush');
  const t0 = Math.min(...times.map((x) => x.startedAt));
  t.diagnostic(`managed continuously,500: handlers ran +0..+${Math.max(...times.map((x) => x.endedAt)) - t0} ms; batches at ${arrivals.map((a) => `+${a.receivedAt - t0}`).join(', ')} ms; spin-down at +${shutdownAt - t0} ms`);
  assert.ok(background.every((a) => a.receivedAt < shutdownAt));
  const bySeq = seqArrivals(arrivals);
  for (const seq of [1, 2, 3, 4]) assert.equal(bySeq.get(seq)?.length, 1, `seq ${seq} once`);
  assert.equal(sampleRequestIds(arrivals, 'aws.lambda.enhanced.invocations').length, 4);
  // No INVOKE reaches extensions there: platform.start and platform.report delimit each span.
  const lambdaSpans = arrivals.flatMap((a) => a.batch.spans).filter((s) => s.name === 'aws.lambda');
  assert.deepEqual(new Set(lambdaSpans.map((s) => s.requestId)), new Set(sampleRequestIds(arrivals, 'aws.lambda.enhanced.invocations')));

  // The managed default flushes every 30 s: these invokes' data waits for SHUTDOWN, and gets there.
  const quiet = 'flush-managed-default';
  await createCounted(quiet, {}, managed(4));
  await concurrentCalls(quiet, [1, 2, 3], 300);
  assert.equal(seqArrivals(batchesOf(quiet)).size, 0, 'nothing custom before the first 30 s tick');
  const quietShutdownAt = await spinDown(quiet);
  const quietArrivals = await eventually(async () => batchesOf(quiet), (a) => seqArrivals(a).size === 3, 30_000, 'SHUTDOWN flush of the managed default');
  for (const [seq, at] of seqArrivals(quietArrivals)) {
    assert.equal(at.length, 1, `seq ${seq} once`);
    assert.ok(at[0]! >= quietShutdownAt, `seq ${seq} arrived with the SHUTDOWN flush`);
  }
  const warnings = (await server.logs(fn)).concat(await server.logs(quiet)).filter((l) => l.includes('[nimbus-agent] WARN') || l.includes('[nimbus-agent] ERROR'));
  assert.deepEqual(warnings, []);
});

test('SHUTDOWN flush on server stop: the agents send what periodically,600000 held before the server exits', async (t) => {
  // A data dir of our own, so that neither server removes it when it stops.
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-e2e-flush-stop-'));
  let first: TestServer | undefined;
  let second: TestServer | undefined;
  try {
    first = await TestServer.start({ dataDir, env: { NIMBUS_IDLE_TIMEOUT_MS: '600000' } });
    const firstLayer = await agentLayerArn(first);
    // One function ships to the server's own store, one to a backend that outlives the server.
    const toStore = 'flush-stop-store';
    const toBackend = 'flush-stop-backend';
    for (const fn of [toStore, toBackend]) {
      const own: Record<string, string> = fn === toBackend ? { NIMBUS_TELEMETRY_ENDPOINT: backend.url + endpointPath(fn) } : {};
      await first.createFunction({
        FunctionName: fn,
        Layers: [firstLayer],
        MemorySize: 256,
        Handler: 'index.handler',
        files: { 'index.js': handler },
        Environment: { Variables: { DD_SERVERLESS_FLUSH_STRATEGY: 'periodically,600000', ...own } },
      });
    }
    const ids = new Map<string, string[]>();
    for (const fn of [toStore, toBackend]) {
      ids.set(fn, [reportOf(await invokeTail(first, fn, { seq: 1 })).requestId, reportOf(await invokeTail(first, fn, { seq: 2 })).requestId]);
    }
    assert.equal((await metricPoints(first, toStore)).filter((p) => p.name === 'e2e.calls').length, 0, 'the custom metrics were still held by the agent');
    assert.equal(seqArrivals(batchesOf(toBackend)).size, 0, 'the custom metrics were still held by the agent');
    const stoppedAt = Date.now();
    assert.equal(await first.stop(), 0);
    t.diagnostic(`server stop took ${Date.now() - stoppedAt} ms`);
    first = undefined;

    await t.test('to a backend that outlives the server: everything, before the server has exited', () => {
      const arrivals = batchesOf(toBackend);
      assertEachOnce(arrivals, [1, 2].map((seq, i) => ({ seq, requestId: ids.get(toBackend)![i]! })));
      assert.equal(sampleRequestIds(arrivals, 'aws.lambda.enhanced.shutdowns').length, 1);
    });

    second = await TestServer.start({ dataDir });
    const restarted = second;
    await t.test(
      "to the server's own store: found there after a restart",
      async () => {
        const points = await metricPoints(restarted, toStore);
        const calls = points.filter((p) => p.name === 'e2e.calls');
        assert.deepEqual(calls.map((p) => p.tags.find((x) => x.startsWith('seq:'))).sort(), ['seq:1', 'seq:2']);
        assert.deepEqual(enhanced(points, 'invocations').map((p) => p.requestId).sort(), [...ids.get(toStore)!].sort());
        assert.equal(enhanced(points, 'shutdowns').length, 1);
        // The last invocation's REPORT-based metrics came in the SHUTDOWN flush too.
        assert.equal(enhanced(points, 'duration').filter((p) => p.requestId === ids.get(toStore)![1]).length, 1);
      },
    );
  } finally {
    await first?.stop();
    await second?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});
