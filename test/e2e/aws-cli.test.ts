/**
 * The AWS CLI (Debian's `awscli`, installed by .ci/run) pointed at Nimbus with
 * --endpoint-url: create, list, invoke with a log tail, update, delete, and an error.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TestServer, zipOf } from '../helpers/nimbus.ts';

const awsPath = ['/usr/bin/aws', '/usr/local/bin/aws'].find((p) => existsSync(p));
let server: TestServer;
let dir: string;

before(async () => {
  server = await TestServer.start();
  dir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-cli-'));
});
after(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

function aws(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      awsPath!,
      ['--endpoint-url', server.url, '--output', 'json', 'lambda', ...args],
      {
        env: {
          PATH: '/usr/bin:/bin',
          HOME: dir,
          AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
          AWS_SECRET_ACCESS_KEY: 'secret',
          AWS_DEFAULT_REGION: 'us-east-1',
          AWS_PAGER: '',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        timeout: 60_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('the AWS CLI drives the function lifecycle', { skip: awsPath ? false : 'awscli is not installed' }, async () => {
  const zipPath = path.join(dir, 'fn.zip');
  await writeFile(zipPath, await zipOf({ 'index.mjs': 'export const handler = async (e) => { console.log("cli says", e.word); return { got: e.word }; };' }));

  const created = await aws([
    'create-function', '--function-name', 'cli-fn', '--runtime', 'nodejs24.x', '--handler', 'index.handler',
    '--role', 'arn:aws:iam::000000000000:role/cli', '--zip-file', `fileb://${zipPath}`,
  ]);
  assert.equal(created.code, 0, created.stderr);
  assert.equal((JSON.parse(created.stdout) as { FunctionName: string }).FunctionName, 'cli-fn');

  const listed = await aws(['list-functions']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok((JSON.parse(listed.stdout) as { Functions: Array<{ FunctionName: string }> }).Functions.some((f) => f.FunctionName === 'cli-fn'));

  const outFile = path.join(dir, 'out.json');
  const invoked = await aws(['invoke', '--function-name', 'cli-fn', '--cli-binary-format', 'raw-in-base64-out', '--payload', '{"word":"hello"}', '--log-type', 'Tail', outFile]);
  assert.equal(invoked.code, 0, invoked.stderr);
  const meta = JSON.parse(invoked.stdout) as { StatusCode: number; ExecutedVersion: string; LogResult: string };
  assert.equal(meta.StatusCode, 200);
  assert.equal(meta.ExecutedVersion, '$LATEST');
  assert.match(Buffer.from(meta.LogResult, 'base64').toString(), /INFO\tcli says hello/);
  assert.deepEqual(JSON.parse(await readFile(outFile, 'utf8')), { got: 'hello' });

  const updated = await aws(['update-function-configuration', '--function-name', 'cli-fn', '--memory-size', '256', '--timeout', '9']);
  assert.equal(updated.code, 0, updated.stderr);
  const conf = JSON.parse(updated.stdout) as { MemorySize: number; Timeout: number };
  assert.equal(conf.MemorySize, 256);
  assert.equal(conf.Timeout, 9);

  const missing = await aws(['get-function', '--function-name', 'no-such-fn']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /ResourceNotFoundException/);
  assert.match(missing.stderr, /Function not found/);

  const deleted = await aws(['delete-function', '--function-name', 'cli-fn']);
  assert.equal(deleted.code, 0, deleted.stderr);
});
