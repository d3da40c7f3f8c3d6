/**
 * Invoking Node.js functions end to end: results, warm reuse, logs and their exact
 * platform lines, and Lambda's failure semantics (errors, timeouts, exits, memory,
 * missing handlers and modules, oversized payloads) with the environment reset after.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { TestServer, payloadJson, logResult } from '../helpers/nimbus.ts';

let server: TestServer;
before(async () => {
  server = await TestServer.start();
});
after(async () => {
  await server.stop();
});

const invoke = (FunctionName: string, payload: unknown = {}, tail = false) =>
  server.client.send(new InvokeCommand({ FunctionName, Payload: Buffer.from(JSON.stringify(payload)), LogType: tail ? 'Tail' : 'None' }));

const counterHandler = `
let invocations = 0;
const startedAt = Date.now();
export const handler = async (event, context) => {
  invocations++;
  console.log('event', JSON.stringify(event));
  return {
    invocations, startedAt, pid: process.pid,
    requestId: context.awsRequestId, functionName: context.functionName, functionVersion: context.functionVersion,
    arn: context.invokedFunctionArn, memory: context.memoryLimitInMB, logGroup: context.logGroupName,
    logStream: context.logStreamName, remaining: context.getRemainingTimeInMillis(),
  };
};`;

test('sync invoke: result, context, warm reuse, START/END/REPORT with Init Duration only when cold', async () => {
  await server.createFunction({ FunctionName: 'counter', files: { 'index.mjs': counterHandler }, MemorySize: 256, Timeout: 5 });
  const first = await invoke('counter', { n: 1 }, true);
  assert.equal(first.StatusCode, 200);
  assert.equal(first.ExecutedVersion, '$LATEST');
  assert.equal(first.FunctionError, undefined);
  const a = payloadJson(first.Payload) as Record<string, unknown>;
  assert.equal(a.invocations, 1);
  assert.equal(a.functionName, 'counter');
  assert.equal(a.functionVersion, '$LATEST');
  assert.equal(a.arn, 'arn:aws:lambda:us-east-1:000000000000:function:counter');
  assert.equal(a.memory, '256');
  assert.equal(a.logGroup, '/aws/lambda/counter');
  assert.match(a.logStream as string, /^\d{4}\/\d\d\/\d\d\/\[\$LATEST\][0-9a-f]{32}$/);
  assert.ok((a.remaining as number) > 4000 && (a.remaining as number) <= 5000);

  const log = logResult(first.LogResult);
  const id = a.requestId as string;
  const lines = log.split('\n').filter((l) => l !== '');
  assert.equal(lines[0], `START RequestId: ${id} Version: $LATEST`);
  assert.match(lines[1]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\t${id}\\tINFO\\tevent {"n":1}$`));
  assert.equal(lines[2], `END RequestId: ${id}`);
  assert.match(
    lines[3]!,
    new RegExp(`^REPORT RequestId: ${id}\\tDuration: \\d+\\.\\d\\d ms\\tBilled Duration: \\d+ ms\\tMemory Size: 256 MB\\tMax Memory Used: \\d+ MB\\tInit Duration: \\d+\\.\\d\\d ms\\t$`),
  );
  const used = Number(/Max Memory Used: (\d+) MB/.exec(lines[3]!)![1]);
  assert.ok(used >= 20 && used <= 256, `measured memory ${used} MB`);

  const second = await invoke('counter', { n: 2 }, true);
  const b = payloadJson(second.Payload) as Record<string, unknown>;
  assert.equal(b.invocations, 2, 'the same environment served the second invoke');
  assert.equal(b.startedAt, a.startedAt);
  assert.notEqual(b.requestId, a.requestId);
  assert.doesNotMatch(logResult(second.LogResult), /Init Duration/);

  // The server kept the same lines.
  const kept = await server.logs('counter');
  assert.ok(kept.includes(`START RequestId: ${id} Version: $LATEST`));
  assert.ok(kept.includes(`END RequestId: ${id}`));
});

test('concurrent invokes start more environments; each serves one invoke at a time', async () => {
  await server.createFunction({
    FunctionName: 'slow',
    files: { 'index.mjs': 'const id = Math.random(); export const handler = async () => { await new Promise(r => setTimeout(r, 300)); return id; };' },
  });
  const ids = await Promise.all([1, 2, 3].map(() => invoke('slow').then((o) => payloadJson(o.Payload))));
  assert.equal(new Set(ids).size, 3);
});

test('a thrown error is a function error: 200, X-Amz-Function-Error, Lambda error body', async () => {
  await server.createFunction({
    FunctionName: 'thrower',
    files: { 'index.mjs': 'export const handler = async () => { const e = new TypeError("bad thing"); throw e; };' },
  });
  const out = await invoke('thrower');
  assert.equal(out.StatusCode, 200);
  assert.equal(out.FunctionError, 'Unhandled');
  const body = payloadJson(out.Payload) as { errorType: string; errorMessage: string; trace: string[] };
  assert.equal(body.errorType, 'TypeError');
  assert.equal(body.errorMessage, 'bad thing');
  assert.ok(Array.isArray(body.trace) && body.trace[0]!.startsWith('TypeError: bad thing'));
  // The environment survives a function error.
  const again = await invoke('thrower');
  assert.equal(again.FunctionError, 'Unhandled');
});

test('timeout: Task timed out, REPORT Status: timeout, and the next invoke is cold', async () => {
  await server.createFunction({
    FunctionName: 'sleeper',
    Timeout: 1,
    files: { 'index.mjs': 'let n = 0; export const handler = async (e) => { n++; if (e.hang) await new Promise(() => setInterval(() => {}, 1000)); return n; };' },
  });
  // The first invoke of the only environment hangs: if that environment served again,
  // its module state would say 2.
  const started = Date.now();
  const out = await invoke('sleeper', { hang: true }, true);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 1000 && elapsed < 5000, `timed out after ${elapsed} ms`);
  assert.equal(out.FunctionError, 'Unhandled');
  const body = payloadJson(out.Payload) as { errorType: string; errorMessage: string };
  assert.equal(body.errorType, 'Sandbox.Timedout');
  assert.match(body.errorMessage, /^RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds$/);
  const log = logResult(out.LogResult);
  assert.match(log, /\d{4}-\d\d-\d\dT[\d:.]+Z [0-9a-f-]{36} Task timed out after 1\.00 seconds/);
  assert.match(log, /REPORT RequestId: .*\tStatus: timeout\t/);
  const next = await invoke('sleeper', {}, true);
  assert.equal(payloadJson(next.Payload), 1, 'a fresh environment: module state reset');
  assert.match(logResult(next.LogResult), /Init Duration/);
});

test('a runtime that exits mid-invoke: Runtime.ExitError, then a cold start', async () => {
  await server.createFunction({ FunctionName: 'exiter', files: { 'index.mjs': 'export const handler = async (e) => { if (e.exit) process.exit(3); return "alive"; };' } });
  const out = await invoke('exiter', { exit: true }, true);
  assert.equal(out.FunctionError, 'Unhandled');
  const body = payloadJson(out.Payload) as { errorType: string; errorMessage: string };
  assert.equal(body.errorType, 'Runtime.ExitError');
  assert.match(body.errorMessage, /^RequestId: [0-9a-f-]{36} Error: Runtime exited with error: exit status 3$/);
  assert.match(logResult(out.LogResult), /Status: error\tError Type: Runtime\.ExitError/);
  const next = await invoke('exiter', {}, true);
  assert.equal(payloadJson(next.Payload), 'alive');
  assert.match(logResult(next.LogResult), /Init Duration/);
});

test('memory past MemorySize: Runtime.OutOfMemory', async () => {
  await server.createFunction({
    FunctionName: 'hog',
    MemorySize: 128,
    Timeout: 30,
    files: {
      'index.mjs': 'const keep = []; export const handler = async () => { for (;;) { keep.push(Buffer.alloc(8 * 1024 * 1024, 1)); await new Promise(r => setImmediate(r)); } };',
    },
  });
  const out = await invoke('hog', {}, true);
  assert.equal(out.FunctionError, 'Unhandled');
  const body = payloadJson(out.Payload) as { errorType: string; errorMessage: string };
  assert.equal(body.errorType, 'Runtime.OutOfMemory');
  assert.match(body.errorMessage, /Runtime exited with error: signal: killed/);
  assert.match(logResult(out.LogResult), /Max Memory Used: 128 MB/);
});

test('missing handler export, missing module, syntax error, malformed handler: init errors', async () => {
  const cases: Array<[string, Record<string, string>, string, string, RegExp]> = [
    ['nohandler', { 'index.mjs': 'export const other = 1;' }, 'index.handler', 'Runtime.HandlerNotFound', /index\.handler is undefined or not exported/],
    ['nomodule', { 'other.mjs': 'export const handler = 1;' }, 'index.handler', 'Runtime.ImportModuleError', /Cannot find module/],
    ['syntax', { 'index.mjs': 'export const handler = async () => {' }, 'index.handler', 'Runtime.UserCodeSyntaxError', /SyntaxError/],
    ['malformed', { 'index.mjs': 'export const handler = 1;' }, 'index', 'Runtime.MalformedHandlerName', /Bad handler/],
  ];
  for (const [name, files, handler, errorType, message] of cases) {
    await server.createFunction({ FunctionName: name, Handler: handler, files });
    const out = await invoke(name, {}, true);
    assert.equal(out.FunctionError, 'Unhandled', name);
    const body = payloadJson(out.Payload) as { errorType: string; errorMessage: string };
    assert.equal(body.errorType, errorType, name);
    assert.match(body.errorMessage, message, name);
    const log = logResult(out.LogResult);
    assert.match(log, new RegExp(`Status: error\\tError Type: ${errorType.replace('.', '\\.')}`), name);
  }
});

test('payloads: over 6 MB refused with 413, malformed JSON refused, an oversized response is a function error', async () => {
  await server.createFunction({
    FunctionName: 'sizes',
    files: { 'index.mjs': 'export const handler = async (e) => e.big ? "x".repeat(7 * 1024 * 1024) : e;' },
  });
  const big = await server.fetch('/2015-03-31/functions/sizes/invocations', { method: 'POST', body: JSON.stringify({ pad: 'x'.repeat(6 * 1024 * 1024) }) });
  assert.equal(big.status, 413);
  assert.equal(big.headers.get('x-amzn-errortype'), 'RequestTooLargeException');
  assert.match(((await big.json()) as { message: string }).message, /Request must be smaller than 6291456 bytes for the Invoke operation/);

  const bad = await server.fetch('/2015-03-31/functions/sizes/invocations', { method: 'POST', body: '{not json' });
  assert.equal(bad.status, 400);
  assert.equal(bad.headers.get('x-amzn-errortype'), 'InvalidRequestContentException');

  const out = await invoke('sizes', { big: true });
  assert.equal(out.FunctionError, 'Unhandled');
  assert.deepEqual(payloadJson(out.Payload), {
    errorMessage: 'Response payload size exceeded maximum allowed payload size (6291556 bytes).',
    errorType: 'Function.ResponseSizeTooLarge',
  });
  assert.deepEqual(payloadJson((await invoke('sizes', { ok: 1 })).Payload), { ok: 1 }, 'still serving');
});

test('DryRun answers 204 without running the function', async () => {
  await server.createFunction({ FunctionName: 'dry', files: { 'index.mjs': 'export const handler = async () => { console.log("ran"); return 1; };' } });
  const out = await server.client.send(new InvokeCommand({ FunctionName: 'dry', InvocationType: 'DryRun' }));
  assert.equal(out.StatusCode, 204);
  assert.deepEqual(await server.logs('dry'), []);
});

test('CommonJS and callback handlers with callbackWaitsForEmptyEventLoop', async () => {
  await server.createFunction({
    FunctionName: 'cjs',
    Handler: 'lib/app.run',
    files: {
      'lib/app.js': `
        exports.run = (event, context, callback) => {
          let late = false;
          setTimeout(() => { late = true; }, 50);
          if (event.noWait) context.callbackWaitsForEmptyEventLoop = false;
          callback(null, { cjs: true });
        };`,
    },
  });
  assert.deepEqual(payloadJson((await invoke('cjs')).Payload), { cjs: true });
  assert.deepEqual(payloadJson((await invoke('cjs', { noWait: true })).Payload), { cjs: true });
});

test('gc() is available to handlers, as Lambda starts Node with --expose-gc', async () => {
  await server.createFunction({ FunctionName: 'gcuser', files: { 'index.mjs': 'export const handler = async () => { gc(); return typeof globalThis.gc; };' } });
  assert.equal(payloadJson((await invoke('gcuser')).Payload), 'function');
});
