/**
 * Lambda Managed Instances end to end: a function with a capacity provider gets
 * environments that serve up to PerExecutionEnvironmentMaxConcurrency invokes at once
 * (concurrent `/next` calls, AWS_LAMBDA_MAX_CONCURRENCY, one process), each invoke with
 * its own START/END/REPORT and log tail; extensions may register for SHUTDOWN only; the
 * Telemetry API takes schema 2025-01-29 and sends that schema's events.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { InvokeCommand, type CreateFunctionCommandInput } from '@aws-sdk/client-lambda';
import { TestServer, payloadJson, logResult } from '../helpers/nimbus.ts';
import { extensionLayer, readRecordHandler, waitForLog } from '../fixtures/extensions/helpers.ts';

let server: TestServer;
before(async () => {
  server = await TestServer.start();
});
after(async () => {
  await server.stop();
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

// `instance` tells environments apart (every sandbox's runtime may be pid 2 in its namespace).
const overlapping = `
const instance = Math.random().toString(36).slice(2);
export const handler = async (event, context) => {
  console.log('begin ' + event.name);
  await new Promise((resolve) => setTimeout(resolve, event.delay ?? 0));
  console.log('done ' + event.name);
  return { name: event.name, instance, requestId: context.awsRequestId,
    maxConcurrency: process.env.AWS_LAMBDA_MAX_CONCURRENCY, initType: process.env.AWS_LAMBDA_INITIALIZATION_TYPE };
};`;

const invoke = (FunctionName: string, payload: unknown, tail = false) =>
  server.client.send(new InvokeCommand({ FunctionName, Payload: Buffer.from(JSON.stringify(payload)), LogType: tail ? 'Tail' : 'None' }));

test('one environment serves up to MaxConcurrency invokes at once; past that, another environment starts', async () => {
  await server.createFunction({ FunctionName: 'lmi-overlap', ...managed(4), files: { 'index.mjs': overlapping } });
  const t0 = performance.now();
  const outs = await Promise.all([0, 1, 2, 3].map((i) => invoke('lmi-overlap', { name: `a${i}`, delay: 600 }, true)));
  const elapsed = performance.now() - t0;
  const bodies = outs.map((o) => payloadJson(o.Payload) as { instance: string; requestId: string; maxConcurrency: string; initType: string });
  assert.equal(new Set(bodies.map((b) => b.instance)).size, 1, 'one environment served all four');
  assert.ok(elapsed < 4 * 600, `they overlapped: ${elapsed.toFixed(0)} ms`);
  for (const b of bodies) {
    assert.equal(b.maxConcurrency, '4');
    assert.equal(b.initType, 'lambda-managed-instances');
  }
  // Each caller's tail has its own request's lines only.
  outs.forEach((o, i) => {
    const tail = logResult(o.LogResult);
    const id = bodies[i]!.requestId;
    assert.match(tail, new RegExp(`START RequestId: ${id} Version: \\$LATEST`));
    assert.match(tail, new RegExp(`REPORT RequestId: ${id}\\t`));
    assert.match(tail, new RegExp(`\\t${id}\\tINFO\\tbegin a${i}`));
    for (const other of bodies) if (other.requestId !== id) assert.ok(!tail.includes(other.requestId), 'no other request in this tail');
  });

  // Six at once with four slots per environment: a second environment.
  const six = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => invoke('lmi-overlap', { name: `b${i}`, delay: 400 })));
  const instances = new Set(six.map((o) => (payloadJson(o.Payload) as { instance: string }).instance));
  assert.equal(instances.size, 2, `environments used: ${instances.size}`);
});

test('a timed-out invoke on a shared environment fails alone; the others go on', async () => {
  await server.createFunction({ FunctionName: 'lmi-timeout', Timeout: 1, ...managed(2), files: { 'index.mjs': overlapping } });
  await invoke('lmi-timeout', { name: 'warm' });
  const [slow, fast] = await Promise.all([invoke('lmi-timeout', { name: 'slow', delay: 1500 }, true), invoke('lmi-timeout', { name: 'fast', delay: 100 })]);
  assert.equal(slow.FunctionError, 'Unhandled');
  assert.equal((payloadJson(slow.Payload) as { errorType: string }).errorType, 'Sandbox.Timedout');
  assert.match(logResult(slow.LogResult), /Task timed out after 1\.00 seconds/);
  assert.equal(fast.FunctionError, undefined);
  const instance = (payloadJson(fast.Payload) as { instance: string }).instance;
  // The late answer of the timed-out invoke frees its slot; the environment keeps serving.
  await new Promise((r) => setTimeout(r, 700));
  const after = await invoke('lmi-timeout', { name: 'after' });
  assert.equal((payloadJson(after.Payload) as { instance: string }).instance, instance);
});

test('extensions on managed instances: INVOKE is refused, SHUTDOWN is allowed; telemetry uses schema 2025-01-29', async () => {
  const layer = await extensionLayer(server, 'lmi-telemetry', { 'node-telemetry': 'node-telemetry.mjs' });
  // Registering for INVOKE is refused, so this extension gives up at Init.
  await server.createFunction({ FunctionName: 'lmi-ext-invoke', Layers: [layer], ...managed(2), files: { 'index.mjs': readRecordHandler('node-telemetry.ndjson') } });
  const refused = await invoke('lmi-ext-invoke', {});
  assert.equal((payloadJson(refused.Payload) as { errorType: string }).errorType, 'Extension.Crash');
  const refusedLines = await waitForLog(server, 'lmi-ext-invoke', /registered 403/);
  assert.ok(refusedLines.includes('[node-telemetry] registered 403 {"errorMessage":"INVOKE: ErrorInvalidEventType","errorType":"Extension.InvalidEventType"}'), refusedLines.join('\n'));

  // The on-demand schema is refused on managed instances.
  await server.createFunction({
    FunctionName: 'lmi-ext-old-schema',
    Layers: [layer],
    ...managed(2),
    Environment: { Variables: { TELEMETRY_EVENTS: 'SHUTDOWN', TELEMETRY_SCHEMA: '2022-12-13' } },
    files: { 'index.mjs': readRecordHandler('node-telemetry.ndjson') },
  });
  assert.equal((await invoke('lmi-ext-old-schema', {})).FunctionError, undefined);
  const oldLines = await waitForLog(server, 'lmi-ext-old-schema', /subscribed 400/);
  assert.ok(oldLines.includes('[node-telemetry] subscribed 400 {"errorMessage":"schemaVersion should be one of 2025-01-29","errorType":"ValidationError"}'), oldLines.join('\n'));

  await server.createFunction({
    FunctionName: 'lmi-ext',
    Layers: [layer],
    ...managed(2),
    Environment: { Variables: { TELEMETRY_EVENTS: 'SHUTDOWN', TELEMETRY_SCHEMA: '2025-01-29', TELEMETRY_TYPES: 'platform' } },
    files: { 'index.mjs': readRecordHandler('node-telemetry.ndjson') },
  });
  const first = await invoke('lmi-ext', {}, true);
  assert.equal(first.FunctionError, undefined);
  const id1 = /START RequestId: (\S+)/.exec(logResult(first.LogResult))![1]!;
  let records: Array<{ type: string; record: Record<string, unknown> }> = [];
  for (let i = 0; i < 50 && !records.some((r) => r.type === 'platform.report' && r.record.requestId === id1); i++) {
    await new Promise((r) => setTimeout(r, 100));
    records = (payloadJson((await invoke('lmi-ext', {})).Payload) as { records: typeof records }).records;
  }
  const of = (type: string, requestId?: string) => records.find((r) => r.type === type && (requestId === undefined || r.record.requestId === requestId))?.record;
  const initStart = of('platform.initStart')!;
  assert.equal(initStart.initializationType, 'lambda-managed-instances');
  assert.equal(initStart.instanceMaxMemory, 2048);
  assert.match(String(initStart.instanceId), /^[0-9a-f]{32}$/);
  assert.deepEqual(of('platform.extension'), { name: 'node-telemetry', state: 'Ready', events: ['SHUTDOWN'] });
  assert.equal(of('platform.start', id1)!.functionArn, 'arn:aws:lambda:us-east-1:000000000000:function:lmi-ext');
  assert.equal(of('platform.runtimeDone', id1), undefined, 'no platform.runtimeDone on managed instances');
  const report = of('platform.report', id1)! as { metrics: Record<string, number>; spans: Array<{ name: string }> };
  assert.deepEqual(Object.keys(report.metrics), ['durationMs']);
  assert.deepEqual(report.spans.map((s) => s.name), ['responseLatency', 'responseDuration']);
});
