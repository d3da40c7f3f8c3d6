/**
 * What a function sees of its environment, and the environment's lifecycle: Lambda's
 * variables and nothing of the server's, the sandbox's view of the file system, idle
 * reaping, and a clean shutdown that leaves no process behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { TestServer, payloadJson } from '../helpers/nimbus.ts';

const invoke = (server: TestServer, FunctionName: string, payload: unknown = {}) =>
  server.client.send(new InvokeCommand({ FunctionName, Payload: Buffer.from(JSON.stringify(payload)) }));

/** Pids of every process whose command line mentions `needle`. */
function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'latin1');
      if (cmdline.includes(needle)) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function environOf(pid: number): string {
  return readFileSync(`/proc/${pid}/environ`, 'latin1');
}

const probeHandler = `
import fs from 'node:fs';
export const handler = async (event) => {
  const tryWrite = (p) => { try { fs.writeFileSync(p, 'x'); return 'written'; } catch (e) { return e.code; } };
  const tryRead = (p) => { try { return fs.readdirSync(p).length >= 0 ? 'visible' : 'x'; } catch (e) { return e.code; } };
  return {
    env: process.env,
    cwd: process.cwd(),
    writeTask: tryWrite(process.env.LAMBDA_TASK_ROOT + '/new-file'),
    writeTmp: tryWrite((process.env.TMPDIR || '/tmp') + '/scratch'),
    dataDir: tryRead(event.dataDir),
  };
};`;

test("the environment has Lambda's variables, the function's own, and nothing of the server's", async () => {
  const server = await TestServer.start({ env: { NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt', SECRET_OF_THE_SERVER: 'leak' } });
  try {
    await server.createFunction({ FunctionName: 'probe', MemorySize: 192, Environment: { Variables: { MY_VAR: 'mine' } }, files: { 'index.mjs': probeHandler } });
    const out = payloadJson((await invoke(server, 'probe', { dataDir: server.dataDir })).Payload) as { env: Record<string, string>; [k: string]: unknown };
    const env = out.env;
    assert.equal(env.MY_VAR, 'mine');
    assert.equal(env.SECRET_OF_THE_SERVER, undefined);
    assert.equal(env.NODE_EXTRA_CA_CERTS, undefined);
    assert.equal(env.NIMBUS_RUNTIMES_DIR, undefined);
    assert.equal(env._HANDLER, 'index.handler');
    assert.equal(env.AWS_REGION, 'us-east-1');
    assert.equal(env.AWS_DEFAULT_REGION, 'us-east-1');
    assert.equal(env.AWS_EXECUTION_ENV, 'AWS_Lambda_nodejs24.x');
    assert.equal(env.AWS_LAMBDA_FUNCTION_NAME, 'probe');
    assert.equal(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, '192');
    assert.equal(env.AWS_LAMBDA_FUNCTION_VERSION, '$LATEST');
    assert.equal(env.AWS_LAMBDA_INITIALIZATION_TYPE, 'on-demand');
    assert.equal(env.AWS_LAMBDA_LOG_GROUP_NAME, '/aws/lambda/probe');
    assert.match(env.AWS_LAMBDA_LOG_STREAM_NAME!, /^\d{4}\/\d\d\/\d\d\/\[\$LATEST\][0-9a-f]{32}$/);
    assert.match(env.AWS_LAMBDA_RUNTIME_API!, /^127\.0\.0\.1:\d+$/);
    assert.equal(env.LANG, 'en_US.UTF-8');
    assert.equal(env.TZ, ':UTC');
    assert.ok(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY && env.AWS_SESSION_TOKEN);
    assert.match(env._X_AMZN_TRACE_ID!, /^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0/);
    assert.equal(out.cwd, env.LAMBDA_TASK_ROOT);

    const health = (await (await server.fetch('/nimbus/v1/health')).json()) as { sandbox: string };
    if (health.sandbox === 'bubblewrap') {
      assert.equal(env.LAMBDA_TASK_ROOT, '/var/task');
      assert.equal(out.writeTask, 'EROFS', 'code is read-only');
      assert.equal(out.writeTmp, 'written', '/tmp is writable');
      assert.equal(out.dataDir, 'ENOENT', 'the data dir is not visible');
    }
  } finally {
    await server.stop();
  }
});

test('idle environments are reaped after the idle timeout; the next invoke is cold', async () => {
  const server = await TestServer.start({ env: { NIMBUS_IDLE_TIMEOUT_MS: '400' } });
  try {
    await server.createFunction({ FunctionName: 'idle', files: { 'index.mjs': 'const id = Math.random(); export const handler = async () => id;' } });
    const first = payloadJson((await invoke(server, 'idle')).Payload);
    assert.equal(payloadJson((await invoke(server, 'idle')).Payload), first, 'warm within the timeout');
    await new Promise((r) => setTimeout(r, 1500));
    assert.notEqual(payloadJson((await invoke(server, 'idle')).Payload), first, 'a new environment after reaping');
  } finally {
    await server.stop();
  }
});

test('SIGTERM stops the server cleanly: environments shut down, no orphan processes', async () => {
  const server = await TestServer.start();
  await server.createFunction({ FunctionName: 'bye', files: { 'index.mjs': 'export const handler = async (e) => { if (e.hang) await new Promise(() => setInterval(() => {}, 1000)); return 1; };' } });
  await server.createFunction({ FunctionName: 'bye-py', Runtime: 'python3.11', Handler: 'app.handler', files: { 'app.py': 'def handler(e, c):\n    return 1\n' } });
  await invoke(server, 'bye');
  await invoke(server, 'bye-py');
  const hanging = invoke(server, 'bye', { hang: true }).catch((e: Error) => e);
  await new Promise((r) => setTimeout(r, 300));
  const envPids = processesMentioning(server.dataDir).filter((pid) => pid !== server.process.pid && !environOf(pid).includes('NIMBUS_RUNTIMES_DIR'));
  assert.ok(envPids.length >= 2, `environment processes found: ${envPids.length}`);
  const code = await server.stop();
  assert.equal(code, 0);
  await hanging;
  const left = envPids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  const describe = left.map((pid) => {
    try {
      return `${pid}: ${readFileSync(`/proc/${pid}/status`, 'latin1').split('\n').slice(0, 3).join(' ')} ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').slice(0, 200)}`;
    } catch {
      return `${pid}: gone`;
    }
  });
  assert.deepEqual(describe, [], 'every environment process is gone');
  assert.match(server.output, /Nimbus stopped/);
});
