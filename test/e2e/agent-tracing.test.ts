/**
 * Traces through the agent: spans from the real dd-trace joined under the invocation's
 * aws.lambda span, and the Runtime API proxy (AWS_LAMBDA_EXEC_WRAPPER=/opt/nimbus-wrapper)
 * seeing each event and response: the trigger, the caller's trace context (W3C, Datadog,
 * X-Ray headers) and the HTTP status on the aws.lambda span.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { CreateFunctionUrlConfigCommand, UpdateFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { TestServer, repoRoot } from '../helpers/nimbus.ts';
import { agentLayerArn, eventually, invokeTail, reportOf, traceSpans, type StoredSpan } from '../helpers/agent.ts';
import { send } from '../triggers/http-client.ts';

const fixture = (name: string): string => readFileSync(path.join(repoRoot, 'test', 'fixtures', 'agent', name), 'utf8');

let server: TestServer;
let layer: string;

before(async () => {
  // The process sandbox: dd-trace and its native parts load from the host's node_modules
  // (NODE_PATH), as a user's own bundle would ship them.
  server = await TestServer.start({ env: { NIMBUS_SANDBOX: 'process' } });
  layer = await agentLayerArn(server);
});
after(async () => {
  await server.stop();
});

async function spinDown(fn: string): Promise<void> {
  await server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Description: `spun down ${Date.now()}` }));
}

test('dd-trace spans arrive on the trace intake and join each invocation under its aws.lambda span', async () => {
  const fn = 'traced-dd';
  await server.createFunction({
    FunctionName: fn,
    Layers: [layer],
    // dd-trace, its native parts and the agent: more than Lambda's 128 MB default.
    MemorySize: 512,
    Handler: 'index.handler',
    Environment: {
      Variables: {
        NODE_PATH: path.join(repoRoot, 'node_modules'),
        DD_TRACE_STARTUP_LOGS: 'false',
        DD_INSTRUMENTATION_TELEMETRY_ENABLED: 'false',
        DD_REMOTE_CONFIGURATION_ENABLED: 'false',
      },
    },
    files: { 'index.js': fixture('dd-traced.js') },
  });
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const out = await invokeTail(server, fn, { orderId: i });
    assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload ?? []).toString());
    ids.push(reportOf(out).requestId);
  }
  await spinDown(fn);
  const spans = await eventually(
    () => traceSpans(server, fn),
    (all) => ids.every((id) => all.some((s) => s.name === 'db.query' && s.requestId === id)),
    30_000,
    'dd-trace spans joined to both invocations',
  );
  for (const id of ids) {
    const root = spans.find((s) => s.name === 'aws.lambda' && s.meta.request_id === id)!;
    const process = spans.find((s) => s.name === 'order.process' && s.requestId === id)!;
    const query = spans.find((s) => s.name === 'db.query' && s.requestId === id)!;
    assert.equal(process.traceId, root.traceId);
    assert.equal(process.parentId, root.spanId, 'the tracer root goes under aws.lambda');
    assert.equal(process.service, 'orders');
    assert.equal(process.resource, 'process order');
    assert.equal(query.traceId, root.traceId);
    assert.equal(query.parentId, process.spanId, 'the tracer keeps its own parent/child link');
    // It awaited a 5 ms timer (timers may fire a little early by the tracer's clock).
    assert.ok(query.durationMicros >= 4000, `db.query lasted ${query.durationMicros} µs`);
  }
});

test('the Runtime API proxy: trigger, caller trace context and HTTP status on the aws.lambda span', async () => {
  const fn = 'traced-proxy';
  await server.createFunction({
    FunctionName: fn,
    Layers: [layer],
    MemorySize: 256,
    Handler: 'index.handler',
    Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/nimbus-wrapper' } },
    files: { 'index.js': fixture('echo-http.js') },
  });
  const url = await server.client.send(new CreateFunctionUrlConfigCommand({ FunctionName: fn, AuthType: 'NONE' }));
  const { host, port } = new URL(url.FunctionUrl!);
  const call = async (query: string, headers: Array<[string, string]>) => {
    const res = await send({ port: Number(port), host: `${host}`, path: `/orders?${query}`, headers });
    return res;
  };
  const w3cTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const w3cParent = '00f067aa0ba902b7';
  const ok = await call('status=200&n=1', [['traceparent', `00-${w3cTrace}-${w3cParent}-01`]]);
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), 'hello', 'the proxy passes the response through');
  const failed = await call('status=503&n=2', [['x-datadog-trace-id', '1234567890123456789'], ['x-datadog-parent-id', '987654321'], ['x-datadog-sampling-priority', '2']]);
  assert.equal(failed.status, 503);
  const xray = await call('status=201&n=3', [['x-amzn-trace-id', 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1']]);
  assert.equal(xray.status, 201);
  await spinDown(fn);

  const roots = await eventually(
    async () => (await traceSpans(server, fn)).filter((s) => s.name === 'aws.lambda'),
    (all: StoredSpan[]) => all.length >= 3,
    30_000,
    'three aws.lambda spans',
  );
  // Each call asked for its own status, which tells the spans apart.
  const byStatus = (status: string) => roots.find((s) => s.meta['http.status_code'] === status)!;
  const w3c = byStatus('200');
  assert.equal(w3c.meta['function_trigger.event_source'], 'lambda-function-url');
  assert.equal(w3c.traceId, w3cTrace);
  assert.equal(w3c.parentId, w3cParent);
  assert.equal(w3c.meta['http.status_code'], '200');
  assert.equal(w3c.meta['http.method'], 'GET');
  assert.equal(w3c.error, false);

  const dd = byStatus('503');
  assert.equal(dd.traceId, '0000000000000000' + BigInt('1234567890123456789').toString(16).padStart(16, '0'));
  assert.equal(dd.parentId, BigInt('987654321').toString(16).padStart(16, '0'));
  assert.equal(dd.metrics._sampling_priority_v1, 2);
  assert.equal(dd.meta['http.status_code'], '503');
  assert.equal(dd.error, true, 'a 5xx answer marks the span as an error');

  const x = byStatus('201');
  assert.equal(x.traceId, '0000000000000000' + 'e1be46a994272793');
  assert.equal(x.parentId, '53995c3f42cd8ad8');
});
