/**
 * The `nimbus` command against a real server: invoke (text and --json), logs --follow
 * streaming new lines as invokes happen, doctor, and clear errors for bad input.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { TestServer, repoRoot } from '../helpers/nimbus.ts';

const run = promisify(execFile);
const cli = path.join(repoRoot, 'src', 'cli', 'main.ts');
let server: TestServer;

before(async () => {
  server = await TestServer.start();
  await server.createFunction({ FunctionName: 'say', files: { 'index.mjs': 'export const handler = async (e) => { console.log("saying", e.word); if (e.fail) throw new Error("nope"); return { said: e.word }; };' } });
});
after(async () => {
  await server.stop();
});

test('nimbus invoke prints the payload; --json gives status, version, payload and log', async () => {
  const text = await run(process.execPath, [cli, 'invoke', 'say', '--payload', '{"word":"hi"}', '--endpoint', server.url]);
  assert.equal(text.stdout, '{"said":"hi"}\n');
  const json = await run(process.execPath, [cli, 'invoke', 'say', '--payload', '{"word":"yo"}', '--endpoint', server.url, '--json']);
  const out = JSON.parse(json.stdout) as { StatusCode: number; ExecutedVersion: string; Payload: unknown; Log: string };
  assert.equal(out.StatusCode, 200);
  assert.equal(out.ExecutedVersion, '$LATEST');
  assert.deepEqual(out.Payload, { said: 'yo' });
  assert.match(out.Log, /INFO\tsaying yo/);
  // A function error: the error payload, and a failing exit code.
  await assert.rejects(run(process.execPath, [cli, 'invoke', 'say', '--payload', '{"fail":true}', '--endpoint', server.url]), (err: Error & { code?: number; stdout?: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stdout!, /"errorMessage":"nope"/);
    return true;
  });
});

test('nimbus logs --follow prints lines of invokes made after it started', async () => {
  const follower = spawn(process.execPath, [cli, 'logs', 'say', '--follow', '--endpoint', server.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  follower.stdout.on('data', (c: Buffer) => (seen += c.toString()));
  try {
    await new Promise((r) => setTimeout(r, 1500));
    await server.client.send(new InvokeCommand({ FunctionName: 'say', Payload: Buffer.from('{"word":"followed"}') }));
    const deadline = Date.now() + 10_000;
    while (!/INFO\tsaying followed/.test(seen) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(seen, /INFO\tsaying followed/);
    assert.match(seen, /REPORT RequestId: /);
  } finally {
    follower.kill();
  }
});

test('client commands fail clearly: unknown function, unreachable server, bad flags', async () => {
  await assert.rejects(run(process.execPath, [cli, 'logs', 'ghost', '--endpoint', server.url]), (err: Error & { stderr?: string }) => {
    assert.match(err.stderr!, /ResourceNotFoundException: Function not found/);
    return true;
  });
  await assert.rejects(run(process.execPath, [cli, 'invoke', 'say', '--endpoint', 'http://127.0.0.1:1']), (err: Error & { stderr?: string }) => {
    assert.match(err.stderr!, /nimbus: /);
    return true;
  });
  await assert.rejects(run(process.execPath, [cli, 'invoke', 'say', '--endpoint', 'not a url']), (err: Error & { stderr?: string }) => {
    assert.match(err.stderr!, /endpoint must be a URL/);
    return true;
  });
  await assert.rejects(run(process.execPath, [cli, 'deploy', '/nonexistent', '--name', 'x', '--runtime', 'nodejs24.x', '--handler', 'a.b', '--endpoint', server.url]), /ENOENT|no such file/);
});

test('nimbus doctor lists runtimes and the sandbox', async () => {
  const out = await run(process.execPath, [cli, 'doctor', '--json'], { cwd: server.dataDir });
  const report = JSON.parse(out.stdout) as { sandbox: string; runtimes: Array<{ runtimeId: string; status: string }> };
  assert.ok(['bubblewrap', 'process'].includes(report.sandbox));
  const node24 = report.runtimes.find((r) => r.runtimeId === 'nodejs24.x');
  assert.equal(node24?.status, 'ready');
  assert.ok(report.runtimes.some((r) => r.runtimeId === 'python3.12'));
});
