/**
 * The agent's backends end to end, each against a recording server: nothing is lost when the
 * backend dies (or refuses with 503) in the middle of a run and comes back, counting every
 * metric sample, span and log line raw (a duplicate would show); what the bound
 * (NIMBUS_AGENT_MAX_BUFFERED) drops is reported, exactly; and the OTLP and Datadog backends
 * deliver their own wire formats, with a 403 from "Datadog" dropped rather than retried.
 * The function is node-observed.mjs: hot-shots counters, OpenTelemetry spans, a JSON log line
 * with its orderId and a plain line, per invocation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { UpdateFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { TestServer } from '../helpers/nimbus.ts';
import { agentLayerArn, bundledHandler, eventually, invokeTail, reportOf } from '../helpers/agent.ts';
import { RecordingServer, type RecordedRequest } from '../helpers/recording-server.ts';
import { decodeAgentPayload, type DecodedSpan } from '../../src/agent/backends/datadog-trace-payload.ts';
import type { MetricPoint, TelemetryBatch } from '../../src/agent/model.ts';

let server: TestServer;
let layer: string;
let handler: string;
const backends: RecordingServer[] = [];

before(async () => {
  server = await TestServer.start({ env: { NIMBUS_IDLE_TIMEOUT_MS: '600000' } });
  [layer, handler] = await Promise.all([agentLayerArn(server), bundledHandler('node-observed.mjs')]);
});
after(async () => {
  await Promise.all([server.stop(), ...backends.map((b) => b.stop())]);
});

async function recordingBackend(): Promise<RecordingServer> {
  const backend = await RecordingServer.start();
  backends.push(backend);
  return backend;
}

async function createObserved(fn: string, variables: Record<string, string>): Promise<void> {
  // The OpenTelemetry SDK and the agent together outgrow 128 MB within a few invocations.
  await server.createFunction({ FunctionName: fn, Layers: [layer], MemorySize: 512, Handler: 'index.handler', files: { 'index.js': handler }, Environment: { Variables: variables } });
}

/** Invokes with orderId `orderId`; the function must succeed whatever the backend does. Returns the request id. */
async function order(fn: string, orderId: number): Promise<string> {
  const out = await invokeTail(server, fn, { orderId });
  assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload ?? []).toString());
  return reportOf(out).requestId;
}

async function spinDown(fn: string): Promise<void> {
  await server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Description: `spun down ${Date.now()}` }));
}

const batchesOf = (backend: RecordingServer): TelemetryBatch[] => backend.accepted('/telemetry').map((r) => r.json as TelemetryBatch);

const shutdownSeen = (batches: TelemetryBatch[]): boolean => batches.some((b) => b.metrics.some((p) => p.name === 'aws.lambda.enhanced.shutdowns'));

/** Every sample's request id, raw: a point merged at flush names its samples' invocations in `requestIds`. */
function sampleRequestIds(points: MetricPoint[], metric: string): Array<string | undefined> {
  return points.filter((p) => p.name === metric).flatMap((p) => p.requestIds ?? (p.values ?? [p.value]).map(() => p.requestId));
}

function countBy<T>(items: T[]): Map<T, number> {
  const counts = new Map<T, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

/** Each of `expected` exactly once in `actual` (raw: duplicates fail), nothing else. */
function assertExactlyOnce<T>(actual: T[], expected: T[], what: string): void {
  const counts = countBy(actual);
  const wrong = expected.filter((e) => counts.get(e) !== 1).map((e) => `${String(e)} ×${counts.get(e) ?? 0}`);
  assert.deepEqual(wrong, [], `${what}: each exactly once`);
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} received for ${expected.length}`);
}

/**
 * Runs `count` invocations with the backend out of service for the middle third (as `outage`
 * makes it), then back; spins down and returns the request ids and every accepted batch.
 */
async function runThroughOutage(fn: string, backend: RecordingServer, count: number, outage: { begin(): Promise<void>; end(): Promise<void> }) {
  const ids: string[] = [];
  for (let orderId = 1; orderId <= count; orderId++) {
    if (orderId === Math.floor(count / 3) + 1) await outage.begin();
    if (orderId === Math.floor((2 * count) / 3) + 1) await outage.end();
    ids.push(await order(fn, orderId));
  }
  await spinDown(fn);
  const batches = await eventually(async () => batchesOf(backend), shutdownSeen, 30_000, `${fn}: the SHUTDOWN flush`);
  return { ids, batches };
}

/** Every metric sample, span and log line of `count` node-observed invocations, counted raw. */
function assertNothingLost(batches: TelemetryBatch[], ids: string[]): void {
  const count = ids.length;
  const metrics = batches.flatMap((b) => b.metrics);
  assertExactlyOnce(sampleRequestIds(metrics, 'aws.lambda.enhanced.invocations'), ids, 'aws.lambda.enhanced.invocations');
  assertExactlyOnce(sampleRequestIds(metrics, 'aws.lambda.enhanced.duration'), ids, 'aws.lambda.enhanced.duration');
  // hot-shots: orders.placed +2 per invocation (counts summed per flush), one order.value sample each.
  assert.equal(metrics.filter((p) => p.name === 'orders.placed').reduce((sum, p) => sum + p.value, 0), 2 * count);
  assert.equal(metrics.filter((p) => p.name === 'order.value').flatMap((p) => p.values ?? []).length, count);

  const spans = batches.flatMap((b) => b.spans);
  const roots = spans.filter((s) => s.name === 'aws.lambda');
  assertExactlyOnce(roots.map((s) => s.meta.request_id), ids, 'aws.lambda spans');
  const rootOfTrace = new Map(roots.map((s) => [s.traceId, s]));
  const checkouts = spans.filter((s) => s.name === 'checkout');
  assertExactlyOnce(checkouts.map((s) => rootOfTrace.get(s.traceId)?.meta.request_id), ids, 'checkout spans, each under its invocation');
  assertExactlyOnce(spans.filter((s) => s.name === 'db.query').map((s) => rootOfTrace.get(s.traceId)?.meta.request_id), ids, 'db.query spans');

  const logs = batches.flatMap((b) => b.logs);
  const orders = Array.from({ length: count }, (_, i) => i + 1);
  assertExactlyOnce(logs.filter((l) => l.attributes?.message === 'order placed').map((l) => l.attributes?.orderId), orders, 'JSON log lines');
  const plain = logs.flatMap((l) => /plain line for (\d+)$/.exec(l.message)?.[1] ?? []).map(Number);
  assertExactlyOnce(plain, orders, 'plain log lines');
  // Each JSON line carries the request id of the invocation that printed it.
  for (const [i, id] of ids.entries()) assert.ok(logs.some((l) => l.requestId === id && l.attributes?.orderId === i + 1), `log of order ${i + 1} has its request id`);

  for (const batch of batches) assert.deepEqual(batch.dropped, { metrics: 0, spans: 0, logs: 0, security: 0 });
}

test('nothing lost: the backend is killed for a third of the run and comes back on the same port', async () => {
  const backend = await recordingBackend();
  const fn = 'backend-killed';
  await createObserved(fn, { DD_SERVERLESS_FLUSH_STRATEGY: 'end', NIMBUS_TELEMETRY_ENDPOINT: `${backend.url}/telemetry` });
  const { ids, batches } = await runThroughOutage(fn, backend, 30, { begin: () => backend.stop(), end: () => backend.restart() });
  assertNothingLost(batches, ids);
  // The outage was real: the agent said so, and one batch after it carried the held items.
  const warnings = (await server.logs(fn)).filter((l) => l.includes('[nimbus-agent] WARN backend nimbus failed; keeping'));
  assert.ok(warnings.length >= 10, `${warnings.length} failed flushes reported`);
  assert.ok(warnings.some((w) => w.includes('ECONNREFUSED')), warnings[0]);
});

test('nothing lost: the backend answers 503 for a third of the run', async () => {
  const backend = await recordingBackend();
  const fn = 'backend-503';
  await createObserved(fn, { DD_SERVERLESS_FLUSH_STRATEGY: 'end', NIMBUS_TELEMETRY_ENDPOINT: `${backend.url}/telemetry` });
  const { ids, batches } = await runThroughOutage(fn, backend, 30, {
    begin: async () => backend.answerWith({ status: 503, body: 'Service Unavailable' }),
    end: async () => backend.answerNormally(),
  });
  assertNothingLost(batches, ids);
  const refused = backend.requests.filter((r) => r.status === 503);
  assert.ok(refused.length >= 10, `${refused.length} refused flushes`);
});

test('the bound: with NIMBUS_AGENT_MAX_BUFFERED=5 and the backend down, what is dropped is reported exactly', async () => {
  const backend = await recordingBackend();
  const fn = 'backend-bounded';
  // Only the custom metrics (3 points per flush) and the spans (aws.lambda + 2 OTel, 3 per invocation),
  // so what each invocation produces is known, and fits the bound of 5 when nothing is held.
  await createObserved(fn, {
    DD_SERVERLESS_FLUSH_STRATEGY: 'end',
    NIMBUS_TELEMETRY_ENDPOINT: `${backend.url}/telemetry`,
    NIMBUS_AGENT_MAX_BUFFERED: '5',
    DD_ENHANCED_METRICS: 'false',
    DD_LOGS_ENABLED: 'false',
  });
  const ids: string[] = [];
  const up = 2;
  const down = 4;
  for (let i = 1; i <= up; i++) ids.push(await order(fn, i));
  await backend.stop();
  for (let i = up + 1; i <= up + down; i++) ids.push(await order(fn, i));
  await backend.restart();
  for (let i = up + down + 1; i <= up + down + 2; i++) ids.push(await order(fn, i));
  // With `end`, every invocation's data was flushed before its invoke returned: the two batches
  // before the outage and the two after it are all there is (the refused ones were not accepted).
  const batches = await eventually(async () => batchesOf(backend), (bs) => bs.length === up + 2, 10_000, 'four accepted batches');
  assert.equal(backend.requests.length, up + 2, 'nothing was posted while the backend was down');

  // Before the outage: 3 metric points and 3 spans per invocation, nothing dropped.
  const before = batches.slice(0, up);
  for (const b of before) {
    assert.equal(b.metrics.length, 3, JSON.stringify(b.metrics.map((p) => p.name)));
    assert.equal(b.spans.length, 3);
    assert.deepEqual(b.dropped, { metrics: 0, spans: 0, logs: 0, security: 0 });
  }
  const produced = { metrics: 3 * ids.length, spans: 3 * ids.length };
  const received = { metrics: batches.flatMap((b) => b.metrics).length, spans: batches.flatMap((b) => b.spans).length };
  const last = batches.at(-1)!;
  // Held items beyond 5 per kind were dropped, oldest first, and every later batch says how many.
  assert.ok(last.dropped.metrics > 0 && last.dropped.spans > 0, JSON.stringify(last.dropped));
  assert.equal(received.metrics + last.dropped.metrics, produced.metrics, `metrics: ${received.metrics} received + ${last.dropped.metrics} dropped`);
  assert.equal(received.spans + last.dropped.spans, produced.spans, `spans: ${received.spans} received + ${last.dropped.spans} dropped`);
  const afterOutage = batches.slice(up);
  for (const b of afterOutage) assert.deepEqual(b.dropped, last.dropped, 'drop counts are cumulative and set once the held items overflowed');
  // The newest held items survived: the last outage invocation's root span came through, the first's did not.
  const rootsFor = new Set(batches.flatMap((b) => b.spans).filter((s) => s.name === 'aws.lambda').map((s) => s.meta.request_id));
  assert.ok(rootsFor.has(ids[up + down - 1]!), 'the newest held span was kept');
  assert.ok(!rootsFor.has(ids[up]!), 'the oldest held span was dropped');
  // Nothing went out twice.
  assert.equal(batches.flatMap((b) => b.spans).filter((s) => s.name === 'aws.lambda').length, rootsFor.size);
});

type OtlpAttribute = { key: string; value: { stringValue?: string; intValue?: string; doubleValue?: number; boolValue?: boolean } };
interface OtlpResource {
  resource: { attributes: OtlpAttribute[] };
}
const attr = (attributes: OtlpAttribute[], key: string): string | undefined => {
  const v = attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : String(v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue);
};

test('OTLP backend: traces, metrics and logs arrive as OTLP/HTTP JSON with the function as the resource', async () => {
  const backend = await recordingBackend();
  const fn = 'backend-otlp';
  await createObserved(fn, { DD_SERVERLESS_FLUSH_STRATEGY: 'end', NIMBUS_OTLP_ENDPOINT: backend.url });
  const ids = [await order(fn, 1), await order(fn, 2)];
  await spinDown(fn);
  const metricNames = (r: RecordedRequest): string[] =>
    (r.json as { resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: Array<{ name: string }> }> }> }).resourceMetrics.flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.name)));
  await eventually(async () => backend.accepted('/v1/metrics'), (rs) => rs.some((r) => metricNames(r).includes('aws.lambda.enhanced.shutdowns')), 30_000, 'OTLP metrics up to the SHUTDOWN flush');

  for (const r of backend.requests) {
    assert.equal(r.method, 'POST');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.ok(['/v1/traces', '/v1/metrics', '/v1/logs'].includes(r.path), r.path);
  }
  const resources = backend.requests.flatMap((r) => {
    const body = r.json as Record<string, OtlpResource[]>;
    return [...(body.resourceSpans ?? []), ...(body.resourceMetrics ?? []), ...(body.resourceLogs ?? [])];
  });
  for (const { resource } of resources) {
    assert.equal(attr(resource.attributes, 'faas.name'), fn);
    assert.equal(attr(resource.attributes, 'cloud.region'), 'us-east-1');
    assert.equal(attr(resource.attributes, 'cloud.provider'), 'aws');
    assert.equal(attr(resource.attributes, 'cloud.platform'), 'aws_lambda');
    assert.equal(attr(resource.attributes, 'cloud.resource_id'), `arn:aws:lambda:us-east-1:000000000000:function:${fn}`);
  }

  // Traces: each invocation's aws.lambda span, the OTel checkout span under it, db.query under that.
  interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; attributes: OtlpAttribute[]; startTimeUnixNano: string; endTimeUnixNano: string }
  const spans = backend.accepted('/v1/traces').flatMap((r) =>
    (r.json as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> }).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)),
  );
  for (const id of ids) {
    const root = spans.filter((s) => s.name === 'aws.lambda' && attr(s.attributes, 'request_id') === id);
    assert.equal(root.length, 1, `one aws.lambda span for ${id}`);
    assert.match(root[0]!.traceId, /^[0-9a-f]{32}$/);
    assert.match(root[0]!.startTimeUnixNano, /^\d+$/);
    assert.ok(BigInt(root[0]!.endTimeUnixNano) >= BigInt(root[0]!.startTimeUnixNano));
    const checkout = spans.find((s) => s.name === 'checkout' && s.traceId === root[0]!.traceId);
    assert.equal(checkout?.parentSpanId, root[0]!.spanId, 'checkout under aws.lambda');
    assert.equal(spans.find((s) => s.name === 'db.query' && s.traceId === root[0]!.traceId)?.parentSpanId, checkout.spanId);
  }

  // Metrics: enhanced distributions as histograms, the hot-shots counter as a delta sum.
  interface OtlpMetric { name: string; sum?: { dataPoints: Array<{ asDouble: number }> }; histogram?: { dataPoints: Array<{ count: string }> } }
  const metrics = backend.accepted('/v1/metrics').flatMap((r) =>
    (r.json as { resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: OtlpMetric[] }> }> }).resourceMetrics.flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics)),
  );
  const invocations = metrics.filter((m) => m.name === 'aws.lambda.enhanced.invocations').flatMap((m) => m.histogram?.dataPoints ?? []);
  assert.equal(invocations.reduce((n, p) => n + Number(p.count), 0), 2);
  assert.equal(metrics.filter((m) => m.name === 'orders.placed').flatMap((m) => m.sum?.dataPoints ?? []).reduce((n, p) => n + p.asDouble, 0), 4);

  // Logs: the JSON line with its request id and its fields as attributes.
  interface OtlpLog { body: { stringValue: string }; attributes: OtlpAttribute[]; severityText?: string }
  const logs = backend.accepted('/v1/logs').flatMap((r) =>
    (r.json as { resourceLogs: Array<{ scopeLogs: Array<{ logRecords: OtlpLog[] }> }> }).resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords)),
  );
  for (const [i, id] of ids.entries()) {
    const line = logs.filter((l) => attr(l.attributes, 'message') === 'order placed' && attr(l.attributes, 'aws.lambda.request_id') === id);
    assert.equal(line.length, 1, `the JSON log of ${id}`);
    assert.equal(attr(line[0]!.attributes, 'orderId'), String(i + 1));
    assert.equal(attr(line[0]!.attributes, 'nimbus.log.source'), 'function');
    assert.equal(line[0]!.severityText, 'info');
    assert.equal(line[0]!.body.stringValue, 'order placed', 'the body is the message; the runtime prefix and the fields are attributes');
  }
});

test('Datadog backend: series, distributions, logs and protobuf traces with the API key; a 403 is dropped, not retried', async () => {
  const backend = await recordingBackend();
  const fn = 'backend-datadog';
  await createObserved(fn, { DD_SERVERLESS_FLUSH_STRATEGY: 'end', DD_API_KEY: 'test-key', DD_URL: backend.url, DD_ENV: 'e2e' });
  const ids = [await order(fn, 1), await order(fn, 2)];
  await spinDown(fn);
  interface Distribution { metric: string; points: Array<[number, number[]]>; tags: string[] }
  const distributions = (): Distribution[] => backend.accepted('/api/v1/distribution_points').flatMap((r) => (r.json as { series: Distribution[] }).series);
  await eventually(async () => distributions(), (ds) => ds.some((d) => d.metric === 'aws.lambda.enhanced.shutdowns'), 30_000, 'Datadog distributions up to the SHUTDOWN flush');

  const paths = new Set(backend.requests.map((r) => r.path));
  assert.deepEqual([...paths].sort(), ['/api/v0.2/traces', '/api/v1/distribution_points', '/api/v2/logs', '/api/v2/series']);
  for (const r of backend.requests) assert.equal(r.headers['dd-api-key'], 'test-key', `${r.path} carries the API key`);

  // Enhanced metrics: Datadog's names, one sample per invocation, tagged as Datadog tags them.
  const durations = distributions().filter((d) => d.metric === 'aws.lambda.enhanced.duration');
  assert.equal(durations.flatMap((d) => d.points.flatMap(([, samples]) => samples)).length, 2);
  for (const d of durations) {
    for (const tag of [`functionname:${fn}`, 'region:us-east-1', 'memorysize:512', 'env:e2e']) assert.ok(d.tags.includes(tag), `${tag} in ${d.tags.join(',')}`);
  }
  const coldTags = durations.flatMap((d) => d.tags.filter((t) => t.startsWith('cold_start:'))).sort();
  assert.deepEqual(coldTags, ['cold_start:false', 'cold_start:true']);
  assert.ok(distributions().some((d) => d.metric === 'order.value'));

  interface Series { metric: string; type: number; points: Array<{ timestamp: number; value: number }>; tags: string[] }
  const series = backend.accepted('/api/v2/series').flatMap((r) => (r.json as { series: Series[] }).series);
  const placed = series.filter((s) => s.metric === 'orders.placed');
  assert.ok(placed.every((s) => s.type === 1 && s.tags.includes('shop:a')), JSON.stringify(placed));
  assert.equal(placed.flatMap((s) => s.points).reduce((n, p) => n + p.value, 0), 4);

  // Logs: each invocation's lines with its request id, as the Datadog Lambda integration shapes them.
  interface DatadogLog { message: string; ddsource: string; service: string; ddtags: string; lambda: { arn: string; request_id?: string }; orderId?: number }
  const logs = backend.accepted('/api/v2/logs').flatMap((r) => r.json as DatadogLog[]);
  for (const [i, id] of ids.entries()) {
    // The JSON line's fields are searchable attributes; `message` is what the function wrote.
    const line = logs.filter((l) => l.lambda.request_id === id && l.orderId !== undefined);
    assert.equal(line.length, 1, `the JSON log of ${id}`);
    assert.equal(line[0]!.orderId, i + 1);
    assert.ok(line[0]!.message.includes('order placed'), line[0]!.message);
    assert.equal(line[0]!.ddsource, 'lambda');
    assert.ok(line[0]!.ddtags.includes(`functionname:${fn}`), line[0]!.ddtags);
  }

  // Traces: the trace agent's protobuf payload, decoded as the intake decodes it.
  const traceRequests = backend.accepted('/api/v0.2/traces');
  for (const r of traceRequests) assert.equal(r.headers['content-type'], 'application/x-protobuf');
  const payloads = traceRequests.map((r) => decodeAgentPayload(r.body));
  assert.ok(payloads.every((p) => p.env === 'e2e'));
  const spans: DecodedSpan[] = payloads.flatMap((p) => p.tracerPayloads.flatMap((tp) => tp.chunks.flatMap((c) => c.spans)));
  for (const id of ids) {
    const roots = spans.filter((s) => s.name === 'aws.lambda' && s.meta.request_id === id);
    assert.equal(roots.length, 1, `one aws.lambda span for ${id}`);
    const checkout = spans.find((s) => s.name === 'checkout' && s.traceID === roots[0]!.traceID);
    assert.equal(checkout?.parentID, roots[0]!.spanID, 'checkout under aws.lambda');
    assert.equal(spans.find((s) => s.name === 'db.query' && s.traceID === roots[0]!.traceID)?.parentID, checkout.spanID);
    assert.ok(roots[0]!.duration > 0n);
  }

  // A 403 (bad API key): every part is refused for good. The agent drops it, never sends it
  // again, and keeps working: once the key is "fixed", only new data goes out.
  const refusing = await recordingBackend();
  const denied = 'backend-datadog-403';
  await createObserved(denied, { DD_SERVERLESS_FLUSH_STRATEGY: 'end', DD_API_KEY: 'revoked-key', DD_URL: refusing.url });
  refusing.answerWith({ status: 403, body: '{"errors":["Forbidden"]}' });
  for (let i = 1; i <= 3; i++) await order(denied, i);
  refusing.answerNormally();
  await order(denied, 4);
  await spinDown(denied);
  await eventually(
    async () => refusing.accepted('/api/v1/distribution_points').flatMap((r) => (r.json as { series: Distribution[] }).series),
    (ds) => ds.some((d) => d.metric === 'aws.lambda.enhanced.shutdowns'),
    30_000,
    'the SHUTDOWN flush after the 403s',
  );
  const orderIdsIn = (requests: RecordedRequest[]): number[] =>
    requests.filter((r) => r.path === '/api/v2/logs').flatMap((r) => (r.json as DatadogLog[]).flatMap((l) => (l.orderId !== undefined ? [l.orderId] : [])));
  const refusedRequests = refusing.requests.filter((r) => r.status === 403);
  assert.deepEqual(orderIdsIn(refusedRequests).sort(), [1, 2, 3], 'each refused log sent once');
  assert.deepEqual(orderIdsIn(refusing.accepted()), [4], 'after the 403s, only new data');
  const refusedNotices = (await server.logs(denied)).filter((l) => l.includes('[nimbus-agent] WARN backend datadog refused the batch for good'));
  assert.equal(refusedNotices.length, 3, refusedNotices.join('\n'));
});
