/**
 * Every runtime kind end to end: Python with Nimbus's own client, a custom runtime made
 * of AWS's tutorial bootstrap (bash + curl, unchanged), an older Node.js major
 * provisioned from the npm registry, and the runtime catalog's dates against a clock
 * the test sets.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { TestServer, payloadJson, logResult, repoRoot } from '../helpers/nimbus.ts';

const run = promisify(execFile);
let server: TestServer;
before(async () => {
  server = await TestServer.start();
});
after(async () => {
  await server.stop();
});

const invoke = (FunctionName: string, payload: unknown = {}) =>
  server.client.send(new InvokeCommand({ FunctionName, Payload: Buffer.from(JSON.stringify(payload)), LogType: 'Tail' }));

test('python: module.function, context, logs, errors as Lambda shapes them', async () => {
  await server.createFunction({
    FunctionName: 'py',
    Runtime: 'python3.12',
    Handler: 'app.handler',
    files: {
      'app.py': [
        'import logging, os',
        'logger = logging.getLogger()',
        'logger.setLevel(logging.INFO)',
        'def handler(event, context):',
        '    print("printed", event)',
        '    logger.info("logged %s", context.aws_request_id)',
        '    if event.get("fail"):',
        '        raise ValueError("boom")',
        '    return {"name": context.function_name, "memory": context.memory_limit_in_mb, "remaining": context.get_remaining_time_in_millis() > 0,',
        '            "region": os.environ["AWS_REGION"], "arn": context.invoked_function_arn}',
      ].join('\n'),
    },
  });
  const ok = await invoke('py', { a: 1 });
  assert.equal(ok.FunctionError, undefined);
  assert.deepEqual(payloadJson(ok.Payload), {
    name: 'py',
    memory: '128',
    remaining: true,
    region: 'us-east-1',
    arn: 'arn:aws:lambda:us-east-1:000000000000:function:py',
  });
  const log = logResult(ok.LogResult);
  assert.match(log, /^START RequestId: [0-9a-f-]{36} Version: \$LATEST\n/);
  assert.match(log, /\nprinted \{'a': 1\}\n/);
  assert.match(log, /\n\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t[0-9a-f-]{36}\tlogged [0-9a-f-]{36}\n/);
  assert.match(log, /\nREPORT RequestId: [0-9a-f-]{36}\tDuration: [\d.]+ ms\t/);

  const bad = await invoke('py', { fail: true });
  assert.equal(bad.FunctionError, 'Unhandled');
  const err = payloadJson(bad.Payload) as Record<string, unknown>;
  assert.equal(err.errorType, 'ValueError');
  assert.equal(err.errorMessage, 'boom');
  assert.match(err.requestId as string, /^[0-9a-f-]{36}$/);
  assert.ok(Array.isArray(err.stackTrace));
});

test('python: import errors are Runtime.ImportModuleError', async () => {
  await server.createFunction({ FunctionName: 'py-missing', Runtime: 'python3.12', Handler: 'nothere.handler', files: { 'app.py': 'x = 1' } });
  const out = await invoke('py-missing');
  assert.equal(out.FunctionError, 'Unhandled');
  const err = payloadJson(out.Payload) as Record<string, unknown>;
  assert.equal(err.errorType, 'Runtime.ImportModuleError');
  assert.equal(err.errorMessage, "Unable to import module 'nothere': No module named 'nothere'");
});

test("custom runtime: AWS's tutorial bootstrap, deployed with `nimbus deploy`, runs unchanged", async () => {
  const cli = path.join(repoRoot, 'src', 'cli', 'main.ts');
  const dir = path.join(repoRoot, 'test', 'fixtures', 'functions', 'custom-tutorial');
  const deployed = await run(process.execPath, [cli, 'deploy', dir, '--name', 'tutorial', '--runtime', 'provided.al2023', '--handler', 'function.handler', '--endpoint', server.url, '--json']);
  const config = JSON.parse(deployed.stdout) as { FunctionName: string; Runtime: string };
  assert.equal(config.FunctionName, 'tutorial');
  assert.equal(config.Runtime, 'provided.al2023');

  const out = await invoke('tutorial', { text: 'hi' });
  assert.equal(out.FunctionError, undefined);
  assert.equal(Buffer.from(out.Payload!).toString(), `Echoing request: '{"text":"hi"}'`);
  const log = logResult(out.LogResult);
  assert.match(log, /\n\{"text":"hi"\}\n/, 'stderr of the handler is in the log');

  // Redeploying the same folder updates the function in place.
  const again = await run(process.execPath, [cli, 'deploy', dir, '--name', 'tutorial', '--runtime', 'provided.al2023', '--handler', 'function.handler', '--endpoint', server.url]);
  assert.match(again.stdout, /^Updated arn:aws:lambda:us-east-1:000000000000:function:tutorial/);

  // `nimbus invoke` and `nimbus logs` read the same function.
  const invoked = await run(process.execPath, [cli, 'invoke', 'tutorial', '--payload', '{"x":2}', '--endpoint', server.url]);
  assert.equal(invoked.stdout, `Echoing request: '{"x":2}'\n`);
  const logs = await run(process.execPath, [cli, 'logs', 'tutorial', '--endpoint', server.url]);
  assert.match(logs.stdout, /START RequestId: [0-9a-f-]{36} Version: \$LATEST/);
  assert.match(logs.stdout, /REPORT RequestId: /);
  const logsJson = await run(process.execPath, [cli, 'logs', 'tutorial', '--endpoint', server.url, '--json']);
  const first = JSON.parse(logsJson.stdout.split('\n')[0]!) as { functionName: string; logStream: string };
  assert.equal(first.functionName, 'tutorial');
});

test('custom runtime without a bootstrap: Runtime.InvalidEntrypoint', async () => {
  await server.createFunction({ FunctionName: 'noboot', Runtime: 'provided.al2023', Handler: 'x', files: { 'readme.txt': 'no bootstrap here' } });
  const out = await invoke('noboot');
  assert.equal(out.FunctionError, 'Unhandled');
  const err = payloadJson(out.Payload) as Record<string, unknown>;
  assert.equal(err.errorType, 'Runtime.InvalidEntrypoint');
  assert.match(err.errorMessage as string, /Couldn't find valid bootstrap\(s\): \[\/var\/task\/bootstrap \/opt\/bootstrap\]/);
});

test('nodejs22.x runs on a real Node.js 22, provisioned from the npm registry', async () => {
  await server.createFunction({ FunctionName: 'node22', Runtime: 'nodejs22.x', files: { 'index.mjs': 'export const handler = async () => process.version;' } });
  const out = await invoke('node22');
  assert.match(payloadJson(out.Payload) as string, /^v22\./);
});

// AWS extended python3.10's schedule in 2026: deprecated 2026-10-31, creates blocked from
// 2027-02-01 (src/runtimes/catalog.ts cites the sources).
test('runtime dates follow the clock: python3.10 closes for create on 2027-02-01', async () => {
  for (const [now, allowed] of [
    ['2027-01-31T12:00:00Z', true],
    ['2027-02-01T12:00:00Z', false],
  ] as const) {
    const dated = await TestServer.start({ env: { NIMBUS_NOW: now } });
    try {
      const attempt = dated.createFunction({ FunctionName: 'py310', Runtime: 'python3.10', Handler: 'app.handler', files: { 'app.py': 'def handler(e, c): return 1' } });
      if (allowed) assert.equal((await attempt).Runtime, 'python3.10');
      else
        await assert.rejects(attempt, (err: Error) => {
          assert.equal(err.name, 'InvalidParameterValueException');
          assert.match(err.message, /python3\.10/);
          assert.match(err.message, /python3\.1[1-4]/, 'names a newer runtime');
          return true;
        });
    } finally {
      await dated.stop();
    }
  }
});
