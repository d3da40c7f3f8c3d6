/**
 * `nimbus dev`: a copy of examples/sam-app served from its source folders. Editing the
 * TypeScript handler (rebuilt with esbuild) or the JavaScript one changes the next
 * answer with no redeploy; a syntax error is printed and answered as Lambda answers a
 * handler that does not parse (Runtime.UserCodeSyntaxError), never with the old code.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LambdaClient, InvokeCommand } from '@aws-sdk/client-lambda';
import { repoRoot, sharedRuntimesDir } from '../helpers/nimbus.ts';
import { send } from '../triggers/http-client.ts';

let project: string;
let child: ChildProcess;
let output = '';
let baseUrl = '';
let port = 0;

/** Resolves once the dev server's output matches `pattern` after `from` (an output offset). */
function waitFor(pattern: RegExp, from: number, timeoutMs = 30_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = (): void => {
      const m = pattern.exec(output.slice(from));
      if (m) return resolve(m);
      if (child.exitCode !== null) return reject(new Error(`nimbus dev exited (${child.exitCode}):\n${output}`));
      if (Date.now() - started > timeoutMs) return reject(new Error(`no ${pattern} in:\n${output.slice(from)}`));
      setTimeout(check, 25);
    };
    check();
  });
}

before(async () => {
  project = await mkdtemp(path.join(os.tmpdir(), 'nimbus-dev-project-'));
  await cp(path.join(repoRoot, 'examples', 'sam-app'), project, { recursive: true });
  child = spawn(process.execPath, [path.join(repoRoot, 'src', 'cli', 'main.ts'), 'dev', project, '--port', '0', '--stack-name', 'devapp'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', NIMBUS_RUNTIMES_DIR: sharedRuntimesDir, NIMBUS_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  await waitFor(/watching 2 source folder\(s\)/, 0, 60_000);
  baseUrl = /Nimbus listening on (http:\/\/\S+)/.exec(output)![1]!;
  port = Number(new URL(baseUrl).port);
});

after(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await rm(project, { recursive: true, force: true });
});

const apiHost = () => `${/HTTP API ServerlessHttpApi \(([a-z0-9]{10})\)/.exec(output)![1]}.execute-api.us-east-1.localhost:${port}`;
const urlHost = () => /function URL: http:\/\/([^/]+)\//.exec(output)![1]!;

async function edit(file: string, from: string, to: string): Promise<void> {
  const full = path.join(project, file);
  const text = await readFile(full, 'utf8');
  assert.ok(text.includes(from), `${file} has ${from}`);
  await writeFile(full, text.replace(from, to));
}

test('a TypeScript handler edited: rebuilt with esbuild, the next request runs the new code', async () => {
  const before = await send({ port, host: apiHost(), path: '/items/1' });
  assert.deepEqual(JSON.parse(before.body.toString()), { id: '1', name: 'kettle' });
  const mark = output.length;
  await edit('src/items/app.ts', "name: 'kettle'", "name: 'samovar'");
  await waitFor(/\[nimbus dev\] devapp-ItemsFunction: reloaded \(generation 1\)/, mark);
  const after = await send({ port, host: apiHost(), path: '/items/1' });
  assert.deepEqual(JSON.parse(after.body.toString()), { id: '1', name: 'samovar' });
});

test('a JavaScript handler edited: served from its folder, no build, no zip', async () => {
  const before = await send({ port, host: urlHost(), path: '/?name=dev' });
  assert.equal(before.body.toString(), 'Hello from us-east-1, dev!');
  const mark = output.length;
  await edit('src/hello/index.mjs', '`${process.env.GREETING}, ${name}!`', '`${process.env.GREETING}, dear ${name}!`');
  await waitFor(/devapp-HelloFunction: reloaded/, mark);
  const after = await send({ port, host: urlHost(), path: '/?name=dev' });
  assert.equal(after.body.toString(), 'Hello from us-east-1, dear dev!');
  const viaRest = await send({ port, host: apiHost().replace(/^[a-z0-9]{10}/, /REST API ServerlessRestApi \(([a-z0-9]{10})\)/.exec(output)![1]!), path: '/Prod/hello/rest' });
  assert.equal(viaRest.body.toString(), 'Hello from us-east-1, dear rest!', 'every front door runs the new code');
});

test('a syntax error is shown and answered as Runtime.UserCodeSyntaxError; fixing it serves again', async () => {
  const mark = output.length;
  await edit('src/items/app.ts', 'const items: Item[] = [', 'const items: Item[] = [[[');
  const shown = await waitFor(/devapp-ItemsFunction: build failed; invokes answer Runtime\.UserCodeSyntaxError until it builds:\n(.+\n\n\s+app\.ts:\d+:\d+:.*)/, mark);
  assert.match(shown[1]!, /\[ERROR\] Expected "\]" but found ";"/);
  const res = await send({ port, host: apiHost(), path: '/items/1' });
  assert.equal(res.status, 500);
  assert.deepEqual(JSON.parse(res.body.toString()), { message: 'Internal Server Error' });

  const client = new LambdaClient({ endpoint: baseUrl, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
  try {
    const out = await client.send(new InvokeCommand({ FunctionName: 'devapp-ItemsFunction', Payload: Buffer.from('{}') }));
    assert.equal(out.FunctionError, 'Unhandled');
    const error = JSON.parse(Buffer.from(out.Payload!).toString()) as { errorType: string; errorMessage: string };
    assert.equal(error.errorType, 'Runtime.UserCodeSyntaxError');
    assert.match(error.errorMessage, /^SyntaxError: .*app\.ts/s);
  } finally {
    client.destroy();
  }

  const fixed = output.length;
  await edit('src/items/app.ts', 'const items: Item[] = [[[', 'const items: Item[] = [');
  await waitFor(/devapp-ItemsFunction: reloaded/, fixed);
  const back = await send({ port, host: apiHost(), path: '/items/2' });
  assert.equal(back.status, 200);
  assert.deepEqual(JSON.parse(back.body.toString()), { id: '2', name: 'teapot' });
});

test('stops cleanly on SIGTERM and removes its throw-away data', async () => {
  const dataDir = /data (\S+)/.exec(output)?.[1];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.match(output, /Nimbus stopped/);
  if (dataDir) assert.equal(existsSync(dataDir), false);
});
