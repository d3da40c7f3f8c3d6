/**
 * The telemetry store end to end, against a real server: an agent-shaped batch POSTed to
 * /nimbus/v1/telemetry, read back through `nimbus metrics|traces|logs` and the query API,
 * security events and the Prometheus scrape; bad input refused in AWS's error shape with
 * the server still serving and earlier data intact; a deleted function's telemetry gone;
 * retention (by age and by row cap) applied at start, and /metrics surviving a restart.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DeleteFunctionCommand, InvokeCommand } from '@aws-sdk/client-lambda';
import type { TelemetryBatch } from '../../src/agent/model.ts';
import type { MetricSummary, StoredMetricPoint, TraceSummary } from '../../src/telemetry/types.ts';
import { TestServer, repoRoot } from '../helpers/nimbus.ts';
import { assertSameExposition, invocationBatch, sqlInjectionSignal, traceIdOf } from '../helpers/telemetry.ts';

const run = promisify(execFile);
const cli = path.join(repoRoot, 'src', 'cli', 'main.ts');
const handler = { 'index.mjs': 'export const handler = async (e) => { console.log("handled", JSON.stringify(e)); return { ok: true }; };' };
let server: TestServer;
/** A minute ago: recent enough for the default 24 h retention. */
const T = Date.now() - 60_000;

/** Five invocations a second apart, 100..500 ms; the first is cold, the third errs, one attack. */
const shopBatch = (): TelemetryBatch =>
  invocationBatch(
    'shop',
    Array.from({ length: 5 }, (_, i) => ({ requestId: `shop-${i}`, startMs: T + i * 1000, durationMs: (i + 1) * 100, coldStart: i === 0, error: i === 2 })),
    { security: [sqlInjectionSignal('shop-4', T + 4000, true)], dropped: { metrics: 0, spans: 2, logs: 0, security: 0 } },
  );

const post = (s: TestServer, body: unknown, init: RequestInit = {}): Promise<Response> =>
  s.fetch('/nimbus/v1/telemetry', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });

async function getJson<T>(s: TestServer, pathAndQuery: string): Promise<T> {
  const res = await s.fetch(pathAndQuery);
  assert.equal(res.status, 200, `GET ${pathAndQuery}: ${res.status}`);
  return (await res.json()) as T;
}

/** An AWS-shaped error: status, x-amzn-ErrorType, and a message matching `message`. */
async function assertAwsError(res: Response, status: number, type: string, message: RegExp): Promise<void> {
  const body = (await res.json()) as { message: string; Type: string };
  assert.equal(res.status, status, body.message);
  assert.equal(res.headers.get('x-amzn-errortype'), type);
  assert.equal(body.Type, 'User');
  assert.match(body.message, message);
}

const cliJson = async <T>(...args: string[]): Promise<T> => JSON.parse((await run(process.execPath, [cli, ...args, '--json', '--endpoint', server.url])).stdout) as T;
const cliText = async (...args: string[]): Promise<string> => (await run(process.execPath, [cli, ...args, '--endpoint', server.url])).stdout;

before(async () => {
  server = await TestServer.start();
  await server.createFunction({ FunctionName: 'shop', files: handler });
  const res = await post(server, shopBatch());
  assert.equal(res.status, 202);
  assert.deepEqual(await res.json(), { accepted: { metrics: 5 * 8 + 1 + 1, spans: 15, logs: 10, security: 1 } });
});
after(async () => {
  await server.stop();
});

test('nimbus metrics: a summary table, --json, --points', async () => {
  const { metrics } = await cliJson<{ metrics: MetricSummary[] }>('metrics', 'shop');
  const duration = metrics.find((m) => m.name === 'aws.lambda.enhanced.duration')!;
  assert.deepEqual(
    { points: duration.points, min: duration.min, max: duration.max, p50: duration.p50, p99: duration.p99, last: duration.last },
    { points: 5, min: 0.1, max: 0.5, p50: 0.3, p99: 0.5, last: 0.5 },
  );
  assert.equal(metrics.find((m) => m.name === 'aws.lambda.enhanced.errors')!.sum, 1);
  assert.equal(metrics.find((m) => m.name === 'aws.lambda.enhanced.invocations')!.points, 5);

  const table = (await cliText('metrics', 'shop')).split('\n');
  assert.match(table[0]!, /^NAME\s+TYPE\s+POINTS\s+AVG\s+MIN\s+MAX\s+P99\s+LAST$/);
  assert.ok(table.some((l) => /^aws\.lambda\.enhanced\.duration\s+distribution\s+5\s+0\.3\s+0\.1\s+0\.5\s+0\.5\s+0\.5$/.test(l)), table.join('\n'));

  const { points } = await cliJson<{ points: StoredMetricPoint[] }>('metrics', 'shop', '--points', '--name', 'aws.lambda.enhanced.invocations', '--limit', '2');
  assert.deepEqual(points.map((p) => p.requestId), ['shop-3', 'shop-4']);
  assert.equal(await cliText('metrics', 'shop', '--since', '1s'), 'No metrics for shop in this window.\n');
});

test('the query API: points newest last, windows, summaries', async () => {
  const { points } = await getJson<{ points: StoredMetricPoint[] }>(server, `/nimbus/v1/functions/shop/metrics?name=aws.lambda.enhanced.duration&limit=2`);
  assert.deepEqual(points.map((p) => p.value), [0.4, 0.5]);
  assert.equal(points[1]!.version, '$LATEST');
  const windowed = await getJson<{ points: StoredMetricPoint[] }>(
    server,
    `/nimbus/v1/functions/shop/metrics?name=aws.lambda.enhanced.invocations&since=${T + 1000}&until=${new Date(T + 3000).toISOString()}`,
  );
  assert.deepEqual(windowed.points.map((p) => p.requestId), ['shop-1', 'shop-2', 'shop-3']);
  const { metrics } = await getJson<{ metrics: MetricSummary[] }>(server, '/nimbus/v1/functions/shop/metrics?summary=true&name=aws.lambda.enhanced.billed_duration');
  assert.deepEqual(metrics.map((m) => [m.name, m.points, m.max]), [['aws.lambda.enhanced.billed_duration', 5, 0.5]]);
});

test('nimbus traces: newest first, and one trace as a tree of spans', async () => {
  const { traces } = await cliJson<{ traces: TraceSummary[] }>('traces', 'shop');
  assert.deepEqual(traces.map((t) => t.requestId), ['shop-4', 'shop-3', 'shop-2', 'shop-1', 'shop-0']);
  assert.deepEqual(traces.map((t) => t.error), [false, false, true, false, false]);
  assert.equal(traces[0]!.spanCount, 3);
  assert.equal(traces[0]!.durationMicros, 500_000);

  const list = await cliText('traces', 'shop', '--limit', '2');
  assert.match(list, /^START\s+TRACE ID\s+DURATION\s+SPANS\s+ERROR\s+REQUEST ID\s+ROOT\n/);
  assert.equal(list.trim().split('\n').length, 3);
  assert.match(list, new RegExp(`${traceIdOf('shop-4')}\\s+500 ms\\s+3\\s+-\\s+shop-4\\s+aws\\.lambda shop`));

  const tree = (await cliText('traces', 'shop', '--trace-id', traceIdOf('shop-2'))).split('\n');
  assert.equal(tree[0], `trace ${traceIdOf('shop-2')}  3 span(s)  300 ms`);
  assert.equal(tree[1], 'aws.lambda  shop  +0 ms  300 ms  ERROR  [shop-2]');
  assert.equal(tree[2], '  express.request  GET /orders  +0.1 ms  299.7 ms  ERROR  [shop-2]');
  assert.equal(tree[3], '    pg.query  SELECT * FROM orders WHERE id = $1  +0.2 ms  75 ms  [shop-2]');

  const { spans } = await getJson<{ spans: Array<{ name: string }> }>(server, `/nimbus/v1/functions/shop/traces/${traceIdOf('shop-2')}`);
  assert.deepEqual(spans.map((s) => s.name), ['aws.lambda', 'express.request', 'pg.query']);
});

test('nimbus logs: the agent records by default when there are any, the platform lines otherwise or on request', async () => {
  const text = (await cliText('logs', 'shop')).trim().split('\n');
  assert.equal(text.length, 10);
  assert.equal(text[0], `${new Date(T + 1).toISOString()}\tshop-0\tINFO\tloading orders for shop-0`);
  assert.ok(text.includes(`${new Date(T + 2000 + 300 - 1).toISOString()}\tshop-2\tERROR\tError: database timeout`), text.join('\n'));

  const json = (await cliText('logs', 'shop', '--json')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(Object.keys(json[0]!).sort(), ['level', 'message', 'origin', 'requestId', 'seq', 'source', 'timestamp']);
  assert.ok(json.every((r) => r.source === 'agent' && r.origin === 'function'));

  const { records } = await getJson<{ records: Array<{ requestId: string; message: string }> }>(server, '/nimbus/v1/functions/shop/telemetry-logs?requestId=shop-2');
  assert.deepEqual(records.map((r) => r.message), ['loading orders for shop-2', 'Error: database timeout']);

  // A function without the agent: its platform lines, by default.
  await server.createFunction({ FunctionName: 'plain', files: handler });
  await server.client.send(new InvokeCommand({ FunctionName: 'plain', Payload: Buffer.from('{"n":1}') }));
  const plain = (await cliText('logs', 'plain', '--json')).trim().split('\n').map((l) => JSON.parse(l) as { source: string; message: string });
  assert.ok(plain.every((r) => r.source === 'platform'));
  assert.ok(plain.some((r) => /^START RequestId: /.test(r.message)));
  assert.equal(await cliText('logs', 'shop', '--source', 'platform'), '');
  await assert.rejects(run(process.execPath, [cli, 'logs', 'shop', '--source', 'kernel', '--endpoint', server.url]), /--source takes agent or platform, got kernel/);
});

test('security events: newest first, filtered by function; an unknown function is 404', async () => {
  const { events } = await getJson<{ events: Array<Record<string, unknown>> }>(server, '/nimbus/v1/security/events?function=shop');
  assert.deepEqual(events, [{ functionName: 'shop', ...sqlInjectionSignal('shop-4', T + 4000, true) }]);
  assert.deepEqual((await getJson<{ events: unknown[] }>(server, `/nimbus/v1/security/events?since=${T + 5000}`)).events, []);
  await assertAwsError(await server.fetch('/nimbus/v1/security/events?function=ghost'), 404, 'ResourceNotFoundException', /Function not found/);
});

test('GET /metrics: the Prometheus text of every function, counters and summaries', async () => {
  const res = await server.fetch('/metrics');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await res.text();
  const labels = (cold: boolean) => `functionname="shop",executedversion="$LATEST",region="us-east-1",runtime="nodejs24.x",memorysize="128",cold_start="${cold}"`;
  const line = (s: string) => assert.ok(text.split('\n').includes(s), `${s}\nnot in\n${text}`);
  line('# TYPE aws_lambda_enhanced_invocations_total counter');
  line(`aws_lambda_enhanced_invocations_total{${labels(false)}} 4`);
  line(`aws_lambda_enhanced_invocations_total{${labels(true)}} 1`);
  line(`aws_lambda_enhanced_errors_total{${labels(false)}} 1`);
  line(`aws_lambda_enhanced_errors_total{${labels(true)}} 0`);
  line('# TYPE aws_lambda_enhanced_duration summary');
  line(`aws_lambda_enhanced_duration_count{${labels(false)}} 4`);
  line(`aws_lambda_enhanced_duration_sum{${labels(true)}} 0.1`);
  line('nimbus_telemetry_dropped{functionname="shop",kind="spans"} 2');
});

test('bad input: AWS-shaped 4xx, nothing stored, the server still serves, earlier data intact', async () => {
  const before = await getJson<unknown>(server, '/nimbus/v1/functions/shop/metrics?summary=true');

  await assertAwsError(await post(server, '{"resource": {'), 400, 'InvalidRequestContentException', /Could not parse request body into json/);
  await assertAwsError(await post(server, '[1,2]'), 400, 'InvalidRequestContentException', /must be a JSON object/);
  await assertAwsError(await post(server, ''), 400, 'InvalidRequestContentException', /resource must be an object, got nothing/);

  // Valid up to the last item: refused whole.
  const spoiled = shopBatch() as unknown as { metrics: Array<Record<string, unknown>>; logs: Array<Record<string, unknown>> };
  spoiled.logs.at(-1)!.level = 3;
  await assertAwsError(await post(server, spoiled), 400, 'InvalidRequestContentException', /logs\[9\]\.level must be a string when present, got number 3/);
  const wrongType = shopBatch() as unknown as { metrics: Array<Record<string, unknown>> };
  wrongType.metrics[0]!.value = 'fast';
  await assertAwsError(await post(server, wrongType), 400, 'InvalidRequestContentException', /metrics\[0\]\.value must be a finite number, got string "fast"/);

  await assertAwsError(await post(server, invocationBatch('ghost', [])), 404, 'ResourceNotFoundException', /Function not found: .*ghost/);

  const huge = JSON.stringify({ ...shopBatch(), padding: 'x'.repeat(17 * 1024 * 1024) });
  await assertAwsError(await post(server, huge), 413, 'RequestTooLargeException', /Request must be smaller than 16777216 bytes/);

  const query = async (q: string, status: number, type: string, message: RegExp) => assertAwsError(await server.fetch(q), status, type, message);
  await query('/nimbus/v1/functions/shop/metrics?limit=0', 400, 'InvalidParameterValueException', /limit must be an integer from 1 to 10000/);
  await query('/nimbus/v1/functions/shop/metrics?limit=1e3', 400, 'InvalidParameterValueException', /limit/);
  await query('/nimbus/v1/functions/shop/metrics?since=yesterday', 400, 'InvalidParameterValueException', /since must be epoch milliseconds or an ISO-8601 date/);
  await query('/nimbus/v1/functions/shop/metrics?summary=maybe', 400, 'InvalidParameterValueException', /summary must be true or false/);
  await query('/nimbus/v1/functions/shop/traces?limit=-1', 400, 'InvalidParameterValueException', /limit/);
  await query('/nimbus/v1/functions/shop/traces/not-hex', 400, 'InvalidParameterValueException', /TraceId must be 32 lowercase hex digits/);
  await query(`/nimbus/v1/functions/shop/traces/${'0'.repeat(32)}`, 404, 'ResourceNotFoundException', /Trace not found/);
  await query('/nimbus/v1/functions/shop/telemetry-logs?afterSeq=x', 400, 'InvalidParameterValueException', /afterSeq/);
  await query('/nimbus/v1/functions/ghost/metrics', 404, 'ResourceNotFoundException', /Function not found/);
  await query('/nimbus/v1/functions/ghost/traces', 404, 'ResourceNotFoundException', /Function not found/);
  await query('/nimbus/v1/functions/ghost/telemetry-logs', 404, 'ResourceNotFoundException', /Function not found/);
  await assert.rejects(run(process.execPath, [cli, 'metrics', 'ghost', '--endpoint', server.url]), /ResourceNotFoundException: Function not found/);
  await assert.rejects(run(process.execPath, [cli, 'traces', 'shop', '--limit', 'many', '--endpoint', server.url]), /--limit takes a positive integer, got many/);

  assert.equal((await server.fetch('/nimbus/v1/health')).status, 200);
  assert.deepEqual(await getJson<unknown>(server, '/nimbus/v1/functions/shop/metrics?summary=true'), before);
  assert.equal((await getJson<{ records: unknown[] }>(server, '/nimbus/v1/functions/shop/telemetry-logs')).records.length, 10);
});

test('deleting a function deletes its telemetry', async () => {
  await server.createFunction({ FunctionName: 'temp', files: handler });
  assert.equal((await post(server, invocationBatch('temp', [{ requestId: 't', startMs: T, durationMs: 10 }], { security: [sqlInjectionSignal('t', T)] }))).status, 202);
  assert.match(await (await server.fetch('/metrics')).text(), /functionname="temp"/);
  await server.client.send(new DeleteFunctionCommand({ FunctionName: 'temp' }));
  await server.createFunction({ FunctionName: 'temp', files: handler });
  assert.deepEqual((await getJson<{ points: unknown[] }>(server, '/nimbus/v1/functions/temp/metrics')).points, []);
  assert.deepEqual((await getJson<{ traces: unknown[] }>(server, '/nimbus/v1/functions/temp/traces')).traces, []);
  assert.deepEqual((await getJson<{ records: unknown[] }>(server, '/nimbus/v1/functions/temp/telemetry-logs')).records, []);
  assert.deepEqual((await getJson<{ events: unknown[] }>(server, '/nimbus/v1/security/events?function=temp')).events, []);
  assert.doesNotMatch(await (await server.fetch('/metrics')).text(), /functionname="temp"/);
});

test('retention at start: old rows and rows beyond the cap go; /metrics survives the restart', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-e2e-retention-'));
  try {
    const first = await TestServer.start({ dataDir });
    let exposition: string;
    try {
      await first.createFunction({ FunctionName: 'keep', files: handler });
      const old = Date.now() - 48 * 3_600_000;
      assert.equal((await post(first, invocationBatch('keep', [{ requestId: 'old', startMs: old, durationMs: 10 }], { sentAt: old + 20 }))).status, 202);
      const recent = Array.from({ length: 3 }, (_, i) => ({ requestId: `new-${i}`, startMs: T + i * 10, durationMs: 5 }));
      assert.equal((await post(first, invocationBatch('keep', recent))).status, 202);
      assert.equal((await getJson<{ points: unknown[] }>(first, '/nimbus/v1/functions/keep/metrics?limit=100')).points.length, 32);
      exposition = await (await first.fetch('/metrics')).text();
    } finally {
      await first.stop();
    }

    const second = await TestServer.start({ dataDir, env: { NIMBUS_TELEMETRY_MAX_ROWS: '10', NIMBUS_TELEMETRY_RETENTION_HOURS: '24' } });
    try {
      const { points } = await getJson<{ points: StoredMetricPoint[] }>(second, '/nimbus/v1/functions/keep/metrics?limit=100');
      assert.equal(points.length, 10);
      assert.ok(points.every((p) => p.requestId?.startsWith('new-')));
      assert.equal(points.at(-1)!.requestId, 'new-2');
      const { traces } = await getJson<{ traces: TraceSummary[] }>(second, '/nimbus/v1/functions/keep/traces');
      assert.deepEqual(traces.map((t) => t.requestId), ['new-2', 'new-1', 'new-0']);
      const { records } = await getJson<{ records: Array<{ requestId: string }> }>(second, '/nimbus/v1/functions/keep/telemetry-logs');
      assert.ok(records.length === 6 && records.every((r) => r.requestId.startsWith('new-')));
      // Counters are seeded before the purge: a restart (and a purge) never lowers them.
      assertSameExposition(await (await second.fetch('/metrics')).text(), exposition);
    } finally {
      await second.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a bad retention setting stops the server at start with a clear message', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-e2e-retention-'));
  try {
    await assert.rejects(TestServer.start({ dataDir, env: { NIMBUS_TELEMETRY_RETENTION_HOURS: 'forever' } }), /telemetry retention hours must be an integer from 1 to 8784, got forever/);
    await assert.rejects(TestServer.start({ dataDir, env: { NIMBUS_TELEMETRY_MAX_ROWS: '0' } }), /telemetry max rows must be an integer from 1 to 1000000000, got 0/);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
