/**
 * Environments driven directly, with real processes in a real sandbox (bubblewrap when
 * the machine has it, and the plain process sandbox) and a temporary /opt holding real
 * extension programs: extensions start before the runtime in both sandboxes; Init that
 * an extension holds up times out; the Shutdown phase gives SHUTDOWN its deadline and
 * kills what ignores it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Environment, type InitOutcome } from '../../src/environments/environment.ts';
import { MemoryMonitor } from '../../src/environments/memory-monitor.ts';
import { createSandbox, detectBubblewrap, type SandboxSupervisor } from '../../src/environments/sandbox.ts';
import type { EnvironmentSpec, FunctionLogLine, InvokeRequest } from '../../src/environments/types.ts';
import { LocalLauncherResolver } from '../../src/runtimes/launcher-resolver.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { fixture } from '../fixtures/extensions/helpers.ts';

/** A custom runtime in bash and curl: echoes each event back. */
const bootstrap = `#!/bin/bash
API="http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
H="\${TMPDIR:-/tmp}/bootstrap.headers"
while true; do
  EVENT=$(curl -sS -D "$H" "$API/invocation/next")
  ID=$(grep -i '^lambda-runtime-aws-request-id:' "$H" | tr -d '\\r' | awk '{print $2}')
  curl -sS -o /dev/null -X POST "$API/invocation/$ID/response" -d "$EVENT"
done
`;

const sandboxes: Array<[string, () => SandboxSupervisor]> = [['process', () => createSandbox('process')]];
if (detectBubblewrap()) sandboxes.unshift(['bubblewrap', () => createSandbox('bubblewrap')]);

interface Harness {
  env: Environment;
  lines: FunctionLogLine[];
  cleanup(): Promise<void>;
}

async function harness(sandbox: SandboxSupervisor, extensions: Record<string, string>, initTimeoutMs = 10_000): Promise<Harness> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'nimbus-env-test-'));
  const codeDir = path.join(root, 'code');
  const layersDir = path.join(root, 'opt');
  await mkdir(codeDir);
  await mkdir(path.join(layersDir, 'extensions'), { recursive: true });
  await writeFile(path.join(codeDir, 'bootstrap'), bootstrap, { mode: 0o755 });
  for (const [name, file] of Object.entries(extensions)) await writeFile(path.join(layersDir, 'extensions', name), fixture(file), { mode: 0o755 });
  const spec: EnvironmentSpec = {
    functionName: 'direct',
    version: '$LATEST',
    functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:direct',
    accountId: '123456789012',
    runtimeId: 'provided.al2023',
    handler: 'handler',
    memoryMb: 256,
    timeoutSeconds: 5,
    ephemeralStorageMb: 512,
    variables: {},
    codeDir,
    layersDir,
    logFormat: 'Text',
    logGroup: '/aws/lambda/direct',
    region: 'us-east-1',
    architecture: 'x86_64',
    initializationType: 'on-demand',
    maxConcurrency: 1,
    revisionId: 'r1',
  };
  const lines: FunctionLogLine[] = [];
  const memoryMonitor = new MemoryMonitor();
  const env = new Environment({
    spec,
    sandbox,
    launcher: new LocalLauncherResolver({ runtimesDir: path.join(root, 'runtimes'), interpreterOverrides: {}, nimbusNodePath: process.execPath, clientsDir: path.join(root, 'clients') }),
    logSink: { write: (line) => lines.push(line) },
    logger: silentLogger,
    memoryMonitor,
    workRoot: path.join(root, 'environments'),
    initTimeoutMs,
    onReady: () => {},
    onStopped: () => {},
  });
  return {
    env,
    lines,
    cleanup: async () => {
      await env.stop('shutdown');
      memoryMonitor.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

const request = (requestId: string): InvokeRequest => ({
  requestId,
  payload: Buffer.from(JSON.stringify({ hello: requestId })),
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:direct',
  traceId: 'Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0',
  wantLogTail: true,
});

const messages = (h: Harness) => h.lines.map((l) => l.message);

for (const [kind, make] of sandboxes) {
  test(`${kind} sandbox: extensions start and register before the runtime, get INVOKE, and SHUTDOWN at stop`, async () => {
    const h = await harness(make(), { logger: 'bash-logger.sh' });
    try {
      const init = (await h.env.init()) as InitOutcome;
      assert.equal(init.ok, true, JSON.stringify(init));
      assert.equal(h.env.state, 'ready');
      const result = await h.env.invoke(request('req-1'), init.initDurationMs);
      assert.equal(result.outcome.kind, 'success');
      assert.equal(result.outcome.payload.toString(), '{"hello":"req-1"}');
      assert.match(result.logTail!, /REPORT RequestId: req-1\tDuration: /);
      assert.equal(h.env.state, 'ready', 'the slot is free again once the extension called next');
      await h.env.stop('spindown');
      const all = messages(h);
      assert.ok(all.some((m) => m.startsWith('[logger] registered ')), all.join('\n'));
      assert.ok(all.includes('EXTENSION\tName: logger\tState: Ready\tEvents: [INVOKE,SHUTDOWN]'));
      assert.ok(all.some((m) => m.includes('"eventType":"INVOKE"') && m.includes('"requestId":"req-1"')));
      assert.ok(all.some((m) => m.includes('"eventType":"SHUTDOWN"') && m.includes('"shutdownReason":"spindown"')), all.join('\n'));
      assert.equal(h.env.state, 'stopped');
    } finally {
      await h.cleanup();
    }
  });

  test(`${kind} sandbox: an extension that hangs in Init (never calls next) makes Init time out`, async () => {
    const h = await harness(make(), { 'hang-in-init': 'misbehaving.sh' }, 1500);
    try {
      const init = await h.env.init();
      assert.equal(init.ok, false);
      if (init.ok) return;
      assert.equal(init.status, 'timeout');
      assert.equal(init.errorType, 'Sandbox.Timedout');
      assert.equal(init.errorMessage, 'Init timed out after 1.50 seconds');
      assert.ok(init.initDurationMs >= 1490, `Init ended after ${init.initDurationMs} ms`);
      const line = messages(h).find((m) => m.startsWith('INIT_REPORT'))!;
      assert.match(line, /^INIT_REPORT Init Duration: \d+\.\d\d ms\tPhase: init\tStatus: timeout\tError Type: Sandbox\.Timedout$/);
      const failed = h.env.initFailureResult(request('req-x'), init);
      assert.equal(failed.outcome.kind, 'platform-error');
      assert.match(failed.logTail!, /REPORT RequestId: req-x\t.*Status: timeout\tError Type: Sandbox\.Timedout/);
    } finally {
      await h.cleanup();
    }
  });
}

test('Shutdown: an extension that ignores SHUTDOWN is killed at the 2,000 ms deadline', async () => {
  const h = await harness(createSandbox('auto'), { 'no-shutdown': 'misbehaving.sh', logger: 'bash-logger.sh' });
  try {
    assert.equal((await h.env.init()).ok, true);
    const t0 = performance.now();
    await h.env.stop('spindown');
    const took = performance.now() - t0;
    assert.ok(took >= 1800 && took < 6000, `the Shutdown phase took ${took.toFixed(0)} ms`);
    const all = messages(h);
    const shutdown = all.find((m) => m.startsWith('[logger] event') && m.includes('SHUTDOWN'))!;
    const deadlineMs = JSON.parse(shutdown.slice(shutdown.indexOf('{'))).deadlineMs as number;
    assert.ok(deadlineMs > Date.now() - took - 100 && deadlineMs <= Date.now() + 100, 'the deadline is when the phase ends');
    const ignored = all.find((m) => m.startsWith('[no-shutdown] event') && m.includes('"SHUTDOWN"'));
    assert.ok(ignored, 'the misbehaving extension got SHUTDOWN too');
    const its = JSON.parse(ignored.slice(ignored.indexOf('{'))) as { shutdownReason: string; deadlineMs: number };
    assert.equal(its.shutdownReason, 'spindown');
    assert.ok(Math.abs(its.deadlineMs - deadlineMs) <= 5, 'both were given the same deadline');
  } finally {
    await h.cleanup();
  }
});

test('Shutdown without extensions kills the runtime at once', async () => {
  const h = await harness(createSandbox('auto'), {});
  try {
    assert.equal((await h.env.init()).ok, true);
    const t0 = performance.now();
    await h.env.stop('spindown');
    assert.ok(performance.now() - t0 < 1000);
  } finally {
    await h.cleanup();
  }
});
