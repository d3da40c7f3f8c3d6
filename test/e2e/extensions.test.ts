/**
 * The Extensions API end to end: real extension programs (bash and curl) in a layer's
 * /opt/extensions, started at Init before the runtime, registering, getting INVOKE and
 * SHUTDOWN events with Lambda's fields; the post-runtime phase in REPORT; SHUTDOWN on
 * idle reaping and on server stop; internal extensions through AWS_LAMBDA_EXEC_WRAPPER;
 * and extensions that break the rules (crash, report errors, exit mid-invoke, never call
 * next, register twice) failing the way Lambda fails them while the server keeps serving.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { TestServer, payloadJson, logResult } from '../helpers/nimbus.ts';
import { executable, extensionLayer, fixture, jsonAfter, waitForLog } from '../fixtures/extensions/helpers.ts';

let server: TestServer;
before(async () => {
  server = await TestServer.start();
});
after(async () => {
  await server.stop();
});

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const echoHandler = 'export const handler = async (event, context) => ({ requestId: context.awsRequestId, event });';

/** Pids of the processes whose command line mentions `needle` (bubblewrap's carry the data dir). */
function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(needle)) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const invoke = (s: TestServer, FunctionName: string, payload: unknown = {}, tail = false) =>
  s.client.send(new InvokeCommand({ FunctionName, Payload: Buffer.from(JSON.stringify(payload)), LogType: tail ? 'Tail' : 'None' }));

test('a bash+curl extension registers at Init, gets INVOKE events with Lambda fields, and logs to the function log', async () => {
  const layer = await extensionLayer(server, 'bash-logger', { 'bash-logger': 'bash-logger.sh' });
  await server.createFunction({ FunctionName: 'ext-bash', Layers: [layer], Timeout: 7, files: { 'index.mjs': echoHandler } });
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const startedAt = Date.now();
    const out = await invoke(server, 'ext-bash', { n: i }, true);
    assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload!).toString());
    const body = payloadJson(out.Payload) as { requestId: string };
    ids.push(body.requestId);
    const tail = logResult(out.LogResult);
    assert.match(tail, new RegExp(`REPORT RequestId: ${body.requestId}\\tDuration: `));
    if (i === 0) assert.match(tail, /Init Duration: /);
    // The extension got the invocation's event; its deadline is the function's.
    const lines = await waitForLog(server, 'ext-bash', new RegExp(`\\[bash-logger\\] event .*${body.requestId}`));
    const line = lines.find((l) => l.includes(body.requestId) && l.startsWith('[bash-logger] event'))!;
    const [, , eventId] = line.split(' ');
    assert.match(eventId!, uuid);
    const event = jsonAfter(line, eventId!);
    assert.deepEqual(Object.keys(event).sort(), ['deadlineMs', 'eventType', 'invokedFunctionArn', 'requestId', 'tracing']);
    assert.equal(event.eventType, 'INVOKE');
    assert.equal(event.requestId, body.requestId);
    assert.equal(event.invokedFunctionArn, 'arn:aws:lambda:us-east-1:000000000000:function:ext-bash');
    assert.ok(typeof event.deadlineMs === 'number' && event.deadlineMs >= startedAt + 6000 && event.deadlineMs <= Date.now() + 7000, `deadlineMs ${event.deadlineMs}`);
    assert.equal((event.tracing as { type: string }).type, 'X-Amzn-Trace-Id');
    assert.match((event.tracing as { value: string }).value, /^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0/);
  }
  const lines = await server.logs('ext-bash');
  const registered = lines.find((l) => l.startsWith('[bash-logger] registered '))!;
  const [, , id] = registered.split(' ');
  assert.match(id!, uuid);
  assert.deepEqual(jsonAfter(registered, id!), { functionName: 'ext-bash', functionVersion: '$LATEST', handler: 'index.handler', accountId: '000000000000' });
  assert.ok(lines.includes('EXTENSION\tName: bash-logger\tState: Ready\tEvents: [INVOKE,SHUTDOWN]'), lines.join('\n'));
  // The extension started before the runtime: it registered before the first START.
  assert.ok(lines.indexOf(registered) < lines.findIndex((l) => l.startsWith('START ')));
});

test('the post-runtime phase: the caller is answered when the runtime is, REPORT covers the extension', async () => {
  const layer = await extensionLayer(server, 'slow-logger', { 'slow-logger': 'bash-logger.sh' });
  await server.createFunction({ FunctionName: 'ext-post', Layers: [layer], Environment: { Variables: { EXTENSION_POST_INVOKE_MS: '600' } }, files: { 'index.mjs': echoHandler } });
  await invoke(server, 'ext-post'); // cold
  await new Promise((r) => setTimeout(r, 800));
  const t0 = performance.now();
  const out = await invoke(server, 'ext-post');
  const elapsed = performance.now() - t0;
  const { requestId } = payloadJson(out.Payload) as { requestId: string };
  const lines = await waitForLog(server, 'ext-post', new RegExp(`^REPORT RequestId: ${requestId}`));
  const report = lines.find((l) => l.startsWith(`REPORT RequestId: ${requestId}`))!;
  const duration = Number(/Duration: ([\d.]+) ms/.exec(report)![1]);
  assert.ok(duration >= 600, `REPORT Duration ${duration} covers the extension's 600 ms`);
  assert.ok(elapsed < duration, `the caller got its answer after ${elapsed.toFixed(0)} ms, before the phase ended (${duration} ms)`);
  assert.ok(lines.indexOf(`END RequestId: ${requestId}`) < lines.indexOf(report));
});

test('SHUTDOWN with reason spindown when an idle environment is reaped', async () => {
  const s = await TestServer.start({ env: { NIMBUS_IDLE_TIMEOUT_MS: '400' } });
  try {
    const layer = await extensionLayer(s, 'reaped', { reaped: 'bash-logger.sh' });
    await s.createFunction({ FunctionName: 'ext-reaped', Layers: [layer], files: { 'index.mjs': echoHandler } });
    await invoke(s, 'ext-reaped');
    const lines = await waitForLog(s, 'ext-reaped', /\[reaped\] shutting down/, 10_000);
    const shutdown = jsonAfter(lines.find((l) => l.includes('"SHUTDOWN"'))!, 'event');
    assert.equal(shutdown.eventType, 'SHUTDOWN');
    assert.equal(shutdown.shutdownReason, 'spindown');
    assert.equal(typeof shutdown.deadlineMs, 'number');
    assert.ok((shutdown.deadlineMs as number) > Date.now() - 10_000 && (shutdown.deadlineMs as number) < Date.now() + 2000);
  } finally {
    await s.stop();
  }
});

test('SHUTDOWN reaches external extensions when the server stops; nothing is left running', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-e2e-ext-stop-'));
  try {
    const s = await TestServer.start({ dataDir });
    const layer = await extensionLayer(s, 'stopper', { stopper: 'bash-logger.sh' });
    await s.createFunction({ FunctionName: 'ext-stop', Layers: [layer], files: { 'index.mjs': echoHandler } });
    await invoke(s, 'ext-stop');
    const pids = processesMentioning(dataDir).filter((pid) => pid !== s.process.pid);
    assert.ok(pids.length >= 2, `environment processes: ${pids.length}`);
    assert.equal(await s.stop(), 0);
    const describe = (pid: number) => {
      try {
        return `${pid}: ${readFileSync(`/proc/${pid}/status`, 'latin1').split('\n').slice(0, 3).join(' ')} ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').slice(0, 300)}`;
      } catch {
        return `${pid}: gone`;
      }
    };
    assert.deepEqual(pids.filter(alive).map(describe), [], 'every environment process is gone');
    const again = await TestServer.start({ dataDir });
    try {
      const lines = await again.logs('ext-stop');
      const shutdown = lines.find((l) => l.includes('"SHUTDOWN"'));
      assert.ok(shutdown, lines.join('\n'));
      assert.equal(jsonAfter(shutdown, 'event').shutdownReason, 'spindown');
      assert.ok(lines.includes('[stopper] shutting down'));
    } finally {
      await again.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('an internal extension through AWS_LAMBDA_EXEC_WRAPPER: registers during runtime init, gets INVOKE, cannot take SHUTDOWN', async () => {
  // The wrapper starts a helper that registers (a name no file in /opt/extensions has, so
  // it is internal), then runs the runtime: `<wrapper> <interpreter> <args>`.
  const wrapper = `#!/bin/bash
API="http://\${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
H="\${TMPDIR:-/tmp}/internal.headers"
(
  echo "shutdown: $(curl -sS -X POST "$API/register" -H 'Lambda-Extension-Name: internal-helper' -d '{"events":["SHUTDOWN"]}')"
  curl -sS -D "$H" -o /dev/null -X POST "$API/register" -H 'Lambda-Extension-Name: internal-helper' -d '{"events":["INVOKE"]}'
  ID=$(grep -i '^lambda-extension-identifier:' "$H" | tr -d '\\r' | awk '{print $2}')
  echo "args: $*" > "\${TMPDIR:-/tmp}/internal.ready"
  while true; do echo "internal event $(curl -sS "$API/event/next" -H "Lambda-Extension-Identifier: $ID")"; done
) &
while [ ! -f "\${TMPDIR:-/tmp}/internal.ready" ]; do sleep 0.01; done
exec "$@"
`;
  await server.createFunction({
    FunctionName: 'ext-wrapper',
    Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: '/var/task/wrapper.sh' } },
    files: { 'index.mjs': echoHandler, 'wrapper.sh': executable(wrapper) },
  });
  const out = await invoke(server, 'ext-wrapper');
  assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload!).toString());
  const { requestId } = payloadJson(out.Payload) as { requestId: string };
  const lines = await waitForLog(server, 'ext-wrapper', new RegExp(`internal event .*${requestId}`));
  assert.ok(lines.includes('shutdown: {"errorMessage":"SHUTDOWN: ShutdownEventNotSupportedForInternalExtension","errorType":"Extension.InvalidEventType"}'), lines.join('\n'));
  assert.ok(lines.includes('EXTENSION\tName: internal-helper\tState: Ready\tEvents: [INVOKE]'), lines.join('\n'));
  const event = jsonAfter(lines.find((l) => l.includes(`internal event`) && l.includes(requestId))!, 'internal event');
  assert.equal(event.eventType, 'INVOKE');

  // A wrapper that is not there fails Init with Runtime.InvalidEntrypoint.
  await server.createFunction({ FunctionName: 'ext-no-wrapper', Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/missing' } }, files: { 'index.mjs': echoHandler } });
  const failed = await invoke(server, 'ext-no-wrapper');
  assert.equal(failed.FunctionError, 'Unhandled');
  assert.equal((payloadJson(failed.Payload) as { errorType: string }).errorType, 'Runtime.InvalidEntrypoint');
});

test('extensions that crash or report errors fail Init with Extension.* errors; the server keeps serving', async () => {
  const misbehaving = fixture('misbehaving.sh');
  const cases = [
    { name: 'crash-in-init', errorType: 'Extension.Crash', message: /Extension crash-in-init exited with error: exit status 1/ },
    { name: 'crash-before-register', errorType: 'Extension.Crash', message: /exit status 3/ },
    { name: 'init-error', errorType: 'Extension.InitError', message: /Extension\.ConfigInvalid/ },
  ];
  for (const c of cases) {
    const layer = await extensionLayer(server, `bad-${c.name}`, {}, { [`extensions/${c.name}`]: executable(misbehaving) });
    const fn = `ext-${c.name}`;
    await server.createFunction({ FunctionName: fn, Layers: [layer], files: { 'index.mjs': echoHandler } });
    for (let i = 0; i < 2; i++) {
      const res = await invoke(server, fn, {}, true);
      assert.equal(res.FunctionError, 'Unhandled', c.name);
      const body = payloadJson(res.Payload) as { errorType: string; errorMessage: string };
      assert.equal(body.errorType, c.errorType, `${c.name}: ${JSON.stringify(body)}`);
      assert.match(body.errorMessage, c.message);
      const tail = logResult(res.LogResult);
      assert.match(tail, new RegExp(`Status: error\\tError Type: ${c.errorType.replace('.', '\\.')}`), tail);
    }
    const lines = await server.logs(fn);
    assert.ok(lines.some((l) => l.startsWith('INIT_REPORT Init Duration: ') && l.includes(`Status: error\tError Type: ${c.errorType}`)), lines.join('\n'));
  }
  const ok = await invoke(server, 'ext-bash', { still: 'serving' });
  assert.equal(ok.FunctionError, undefined);
});

test('an extension that exits mid-invoke or reports exit/error: the invoke fails, the environment resets', async () => {
  const misbehaving = fixture('misbehaving.sh');
  for (const [name, errorType] of [
    ['exit-mid-invoke', 'Extension.Crash'],
    ['exit-error', 'Extension.ExitError'],
  ] as const) {
    const layer = await extensionLayer(server, `bad-${name}`, {}, { [`extensions/${name}`]: executable(misbehaving) });
    const fn = `ext-${name}`;
    await server.createFunction({ FunctionName: fn, Layers: [layer], files: { 'index.mjs': 'export const handler = async () => { await new Promise((r) => setTimeout(r, 300)); return "late"; };' } });
    const res = await invoke(server, fn, {}, true);
    assert.equal(res.FunctionError, 'Unhandled', name);
    assert.equal((payloadJson(res.Payload) as { errorType: string }).errorType, errorType, name);
    assert.match(logResult(res.LogResult), new RegExp(`Status: error\\tError Type: ${errorType.replace('.', '\\.')}`));
    // The next invoke starts a fresh environment (Init Duration again), which fails the same way.
    const again = await invoke(server, fn, {}, true);
    assert.match(logResult(again.LogResult), /Init Duration: /);
  }
});

test('an extension that never calls next holds the invoke to the function timeout, then the environment resets', async () => {
  const layer = await extensionLayer(server, 'bad-never-next', {}, { 'extensions/never-next': executable(fixture('misbehaving.sh')) });
  await server.createFunction({ FunctionName: 'ext-never-next', Timeout: 1, Layers: [layer], files: { 'index.mjs': echoHandler } });
  const t0 = performance.now();
  const res = await invoke(server, 'ext-never-next', {}, true);
  const elapsed = performance.now() - t0;
  // The runtime answered, so the caller has the answer; the phase ends at the timeout.
  assert.equal(res.FunctionError, undefined);
  const tail = logResult(res.LogResult);
  assert.ok(elapsed >= 900, `held for ${elapsed} ms`);
  assert.match(tail, /Task timed out after 1\.00 seconds/);
  assert.match(tail, /REPORT RequestId: .*\tStatus: timeout\t/);
  // The extension never asks again, so SHUTDOWN (reason timeout) waits for it in vain
  // until the 2 s deadline, when it is killed; the next invoke starts a new environment.
  const again = await invoke(server, 'ext-never-next', {}, true);
  assert.match(logResult(again.LogResult), /Init Duration: /);
});

test('registering twice is refused with Extension.InvalidExtensionState; the extension goes on', async () => {
  const layer = await extensionLayer(server, 'bad-register-twice', {}, { 'extensions/register-twice': executable(fixture('misbehaving.sh')) });
  await server.createFunction({ FunctionName: 'ext-register-twice', Layers: [layer], files: { 'index.mjs': echoHandler } });
  const res = await invoke(server, 'ext-register-twice');
  assert.equal(res.FunctionError, undefined);
  const lines = await waitForLog(server, 'ext-register-twice', /second register/);
  assert.ok(
    lines.includes(
      '[register-twice] second register: {"errorMessage":"State transition from Registered to Registered failed for extension register-twice. Error: State transition is not allowed","errorType":"Extension.InvalidExtensionState"} 403',
    ),
    lines.join('\n'),
  );
});

test('more than 10 extensions, or one that is not executable: Extension.LaunchError', async () => {
  const many: Record<string, { data: string; mode: number }> = {};
  for (let i = 0; i < 11; i++) many[`extensions/e${String(i).padStart(2, '0')}`] = executable(fixture('bash-logger.sh'));
  const tooMany = await extensionLayer(server, 'too-many', {}, many);
  await server.createFunction({ FunctionName: 'ext-too-many', Layers: [tooMany], files: { 'index.mjs': echoHandler } });
  const a = await invoke(server, 'ext-too-many');
  const tooManyError = payloadJson(a.Payload) as { errorType: string; errorMessage: string };
  assert.equal(tooManyError.errorType, 'Extension.LaunchError');
  assert.match(tooManyError.errorMessage, /^Extension limit \(10\) reached: .*\/extensions holds 11 files$/);

  const notExec = await extensionLayer(server, 'not-exec', {}, { 'extensions/plain': 'echo hi' });
  await server.createFunction({ FunctionName: 'ext-not-exec', Layers: [notExec], files: { 'index.mjs': echoHandler } });
  const b = await invoke(server, 'ext-not-exec');
  assert.equal((payloadJson(b.Payload) as { errorType: string }).errorType, 'Extension.LaunchError');
});
