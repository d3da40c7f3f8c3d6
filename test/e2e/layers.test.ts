/**
 * Layers end to end with the AWS SDK: the six layer operations with Lambda's shapes and
 * statuses, functions using layer content where Lambda puts it (Node.js modules, Python
 * packages, /opt/bin, /opt/lib, a custom runtime's bootstrap), override order between
 * layers, deleted versions that keep working for the functions using them, and every kind
 * of bad input refused with Lambda's error while the server keeps serving.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  DeleteLayerVersionCommand,
  GetFunctionCommand,
  GetLayerVersionByArnCommand,
  GetLayerVersionCommand,
  InvokeCommand,
  ListLayersCommand,
  ListLayerVersionsCommand,
  PublishLayerVersionCommand,
  UpdateFunctionConfigurationCommand,
  type PublishLayerVersionCommandInput,
  type Runtime,
} from '@aws-sdk/client-lambda';
import { TestServer, payloadJson, repoRoot, zipOf } from '../helpers/nimbus.ts';
import { agentLayerArn } from '../helpers/agent.ts';
import { craftZip } from '../helpers/zip.ts';

let server: TestServer;
before(async () => {
  server = await TestServer.start();
  // The built-in nimbus-agent layer is published in the background at start; listings
  // compared across calls must not see it appear in between.
  await agentLayerArn(server);
});
after(async () => {
  await server.stop();
});

const ACCOUNT = '000000000000';
const REGION = 'us-east-1';
const arnOf = (name: string, version?: number) => `arn:aws:lambda:${REGION}:${ACCOUNT}:layer:${name}${version === undefined ? '' : `:${version}`}`;

type Files = Record<string, string | { data: string; mode: number }>;

async function publish(LayerName: string, files: Files, extra: Partial<PublishLayerVersionCommandInput> = {}) {
  const zip = await zipOf(files);
  const out = await server.client.send(new PublishLayerVersionCommand({ LayerName, Content: { ZipFile: zip }, ...extra }));
  return { out, zip };
}

const invoke = async (FunctionName: string, payload: unknown = {}) => {
  const out = await server.client.send(new InvokeCommand({ FunctionName, Payload: Buffer.from(JSON.stringify(payload)) }));
  assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload ?? new Uint8Array()).toString());
  return payloadJson(out.Payload);
};

/** Asserts an SDK call fails with exactly this AWS error name and message. */
async function rejectsWith(call: Promise<unknown>, name: string, message: string | RegExp, status?: number): Promise<void> {
  await assert.rejects(call, (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(err.name, name, err.message);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    if (status !== undefined) assert.equal(err.$metadata?.httpStatusCode, status);
    return true;
  });
}

/** Shapes without the SDK's $metadata. */
function wire<T extends { $metadata?: unknown }>(out: T): Omit<T, '$metadata'> {
  const { $metadata: _, ...rest } = out;
  return rest;
}

test('publish, get, get by ARN, list versions, list layers, delete: Lambda shapes, statuses and numbering', async () => {
  const { out: v1, zip: zip1 } = await publish(
    'shared-lib',
    { 'nodejs/node_modules/answer/index.js': 'module.exports = 42;' },
    { Description: 'the answer', CompatibleRuntimes: ['nodejs24.x', 'python3.12'], CompatibleArchitectures: ['x86_64'], LicenseInfo: 'MIT' },
  );
  assert.equal(v1.$metadata.httpStatusCode, 201);
  assert.equal(v1.LayerArn, arnOf('shared-lib'));
  assert.equal(v1.LayerVersionArn, arnOf('shared-lib', 1));
  assert.equal(v1.Version, 1);
  assert.equal(v1.Description, 'the answer');
  assert.match(v1.CreatedDate!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/);
  assert.deepEqual(v1.CompatibleRuntimes, ['nodejs24.x', 'python3.12']);
  assert.deepEqual(v1.CompatibleArchitectures, ['x86_64']);
  assert.equal(v1.LicenseInfo, 'MIT');
  assert.equal(v1.Content!.CodeSha256, createHash('sha256').update(zip1).digest('base64'));
  assert.equal(v1.Content!.CodeSize, zip1.length);
  // Content.Location serves the zip, like GetFunction's Code.Location.
  const download = await fetch(v1.Content!.Location!);
  assert.equal(download.status, 200);
  assert.deepEqual(Buffer.from(await download.arrayBuffer()), zip1);

  const { out: v2 } = await publish('shared-lib', { 'nodejs/node_modules/answer/index.js': 'module.exports = 43;' });
  assert.equal(v2.Version, 2);
  assert.equal(v2.Description, '');
  assert.equal(v2.CompatibleRuntimes, undefined);
  assert.equal(v2.LicenseInfo, undefined);

  // GetLayerVersion answers what PublishLayerVersion answered, by name or by layer ARN.
  const got = await server.client.send(new GetLayerVersionCommand({ LayerName: 'shared-lib', VersionNumber: 1 }));
  assert.equal(got.$metadata.httpStatusCode, 200);
  assert.deepEqual(wire(got), wire(v1));
  const byLayerArn = await server.client.send(new GetLayerVersionCommand({ LayerName: arnOf('shared-lib'), VersionNumber: 2 }));
  assert.deepEqual(wire(byLayerArn), wire(v2));
  const byArn = await server.client.send(new GetLayerVersionByArnCommand({ Arn: arnOf('shared-lib', 1) }));
  assert.deepEqual(wire(byArn), wire(v1));

  // ListLayerVersions: newest first, list items without Content or LayerArn, filters, pages.
  const versions = await server.client.send(new ListLayerVersionsCommand({ LayerName: 'shared-lib' }));
  assert.deepEqual(versions.LayerVersions, [
    { LayerVersionArn: arnOf('shared-lib', 2), Version: 2, Description: '', CreatedDate: v2.CreatedDate },
    {
      LayerVersionArn: arnOf('shared-lib', 1),
      Version: 1,
      Description: 'the answer',
      CreatedDate: v1.CreatedDate,
      CompatibleRuntimes: ['nodejs24.x', 'python3.12'],
      LicenseInfo: 'MIT',
      CompatibleArchitectures: ['x86_64'],
    },
  ]);
  assert.equal(versions.NextMarker, undefined);
  const forPython = await server.client.send(new ListLayerVersionsCommand({ LayerName: 'shared-lib', CompatibleRuntime: 'python3.12' }));
  assert.deepEqual(forPython.LayerVersions!.map((v) => v.Version), [1]);
  const forArm = await server.client.send(new ListLayerVersionsCommand({ LayerName: 'shared-lib', CompatibleArchitecture: 'arm64' }));
  assert.deepEqual(forArm.LayerVersions, []);
  const page1 = await server.client.send(new ListLayerVersionsCommand({ LayerName: 'shared-lib', MaxItems: 1 }));
  assert.deepEqual(page1.LayerVersions!.map((v) => v.Version), [2]);
  assert.ok(page1.NextMarker);
  const page2 = await server.client.send(new ListLayerVersionsCommand({ LayerName: 'shared-lib', MaxItems: 1, Marker: page1.NextMarker }));
  assert.deepEqual(page2.LayerVersions!.map((v) => v.Version), [1]);
  assert.equal(page2.NextMarker, undefined);
  // A layer that does not exist has no versions (not an error, as on Lambda).
  const none = await server.client.send(new ListLayerVersionsCommand({ LayerName: 'never-published' }));
  assert.deepEqual(none.LayerVersions, []);

  // ListLayers: each layer once with its newest matching version, by name, in pages.
  await publish('another-lib', { 'lib/x.txt': 'x' }, { CompatibleRuntimes: ['python3.12'] });
  const listed = await server.client.send(new ListLayersCommand({}));
  const mine = listed.Layers!.filter((l) => l.LayerName === 'shared-lib' || l.LayerName === 'another-lib');
  assert.deepEqual(mine.map((l) => l.LayerName), ['another-lib', 'shared-lib']);
  const shared = mine[1]!;
  assert.equal(shared.LayerArn, arnOf('shared-lib'));
  assert.deepEqual(shared.LatestMatchingVersion, { LayerVersionArn: arnOf('shared-lib', 2), Version: 2, Description: '', CreatedDate: v2.CreatedDate });
  const nodeLayers = await server.client.send(new ListLayersCommand({ CompatibleRuntime: 'nodejs24.x' }));
  const sharedForNode = nodeLayers.Layers!.find((l) => l.LayerName === 'shared-lib');
  assert.equal(sharedForNode?.LatestMatchingVersion?.Version, 1, 'the newest version that matches, not the newest');
  assert.equal(nodeLayers.Layers!.find((l) => l.LayerName === 'another-lib'), undefined);
  const firstPage = await server.client.send(new ListLayersCommand({ MaxItems: 1 }));
  assert.equal(firstPage.Layers!.length, 1);
  assert.ok(firstPage.NextMarker);
  const rest = await server.client.send(new ListLayersCommand({ Marker: firstPage.NextMarker }));
  assert.deepEqual(
    [...firstPage.Layers!, ...rest.Layers!].map((l) => l.LayerName),
    listed.Layers!.map((l) => l.LayerName),
  );

  // DeleteLayerVersion: 204, gone from Get and List, idempotent; numbers are never reused.
  const deleted = await server.client.send(new DeleteLayerVersionCommand({ LayerName: 'shared-lib', VersionNumber: 2 }));
  assert.equal(deleted.$metadata.httpStatusCode, 204);
  await rejectsWith(
    server.client.send(new GetLayerVersionCommand({ LayerName: 'shared-lib', VersionNumber: 2 })),
    'ResourceNotFoundException',
    'The resource you requested does not exist.',
    404,
  );
  await rejectsWith(
    server.client.send(new GetLayerVersionByArnCommand({ Arn: arnOf('shared-lib', 2) })),
    'ResourceNotFoundException',
    'The resource you requested does not exist.',
  );
  const again = await server.client.send(new DeleteLayerVersionCommand({ LayerName: 'shared-lib', VersionNumber: 2 }));
  assert.equal(again.$metadata.httpStatusCode, 204);
  const afterDelete = await server.client.send(new ListLayerVersionsCommand({ LayerName: 'shared-lib' }));
  assert.deepEqual(afterDelete.LayerVersions!.map((v) => v.Version), [1]);
  const { out: v3 } = await publish('shared-lib', { 'a.txt': 'three' });
  assert.equal(v3.Version, 3, 'version 2 is not reused');
  await server.client.send(new DeleteLayerVersionCommand({ LayerName: 'shared-lib', VersionNumber: 1 }));
  await server.client.send(new DeleteLayerVersionCommand({ LayerName: arnOf('shared-lib'), VersionNumber: 3 }));
  const gone = await server.client.send(new ListLayersCommand({}));
  assert.equal(gone.Layers!.find((l) => l.LayerName === 'shared-lib'), undefined, 'a layer with no versions is not listed');
  const { out: v4 } = await publish('shared-lib', { 'a.txt': 'four' });
  assert.equal(v4.Version, 4, 'numbering continues after every version was deleted');
});

test('Node.js: require from nodejs/node_modules, /opt/bin on PATH, /opt/lib on LD_LIBRARY_PATH, Layers in the configuration', async () => {
  const { out: layer } = await publish('node-deps', {
    'nodejs/node_modules/greeter/package.json': JSON.stringify({ name: 'greeter', main: 'index.js' }),
    'nodejs/node_modules/greeter/index.js': "exports.greet = (who) => `hello ${who} from a layer`;",
    'bin/opt-tool': { data: '#!/bin/sh\necho "tool says $1"\n', mode: 0o100755 },
    'lib/libdemo.txt': 'a library',
  });
  const created = await server.createFunction({
    FunctionName: 'node-layers',
    Handler: 'index.handler',
    Layers: [layer.LayerVersionArn!],
    files: {
      'index.js': [
        "const { execFileSync } = require('node:child_process');",
        "const fs = require('node:fs');",
        "const greeter = require('greeter');",
        'exports.handler = async () => {',
        "  const ld = process.env.LD_LIBRARY_PATH.split(':');",
        '  return {',
        "    greeting: greeter.greet('cjs'),",
        "    tool: execFileSync('opt-tool', ['hi']).toString().trim(),",
        "    ldHasOptLib: fs.existsSync(ld[ld.length - 1] + '/libdemo.txt'),",
        "    pathEndsWithOptBin: process.env.PATH.endsWith('/bin'),",
        '  };',
        '};',
      ].join('\n'),
    },
  });
  assert.deepEqual(created.Layers, [{ Arn: layer.LayerVersionArn, CodeSize: layer.Content!.CodeSize }]);
  const config = await server.client.send(new GetFunctionCommand({ FunctionName: 'node-layers' }));
  assert.deepEqual(config.Configuration!.Layers, [{ Arn: layer.LayerVersionArn, CodeSize: layer.Content!.CodeSize }]);
  assert.deepEqual(await invoke('node-layers'), {
    greeting: 'hello cjs from a layer',
    tool: 'tool says hi',
    ldHasOptLib: true,
    pathEndsWithOptBin: true,
  });
});

test('Node.js: an ES module handler imports a package from a layer, as on Lambda', async () => {
  const { out: layer } = await publish('esm-deps', {
    'nodejs/node_modules/shouter/package.json': JSON.stringify({ name: 'shouter', type: 'module', exports: './index.js' }),
    'nodejs/node_modules/shouter/index.js': 'export const shout = (s) => s.toUpperCase() + "!";',
  });
  await server.createFunction({
    FunctionName: 'esm-layers',
    Handler: 'index.handler',
    Layers: [layer.LayerVersionArn!],
    files: { 'index.mjs': "import { shout } from 'shouter';\nexport const handler = async () => shout('from a layer');" },
  });
  assert.equal(await invoke('esm-layers'), 'FROM A LAYER!');
});

test('Python: packages from python/ and python/lib/python3.X/site-packages', async () => {
  const { out: layer } = await publish('py-deps', {
    'python/toplevel_pkg/__init__.py': 'WHERE = "python/"\n',
    'python/lib/python3.12/site-packages/site_pkg/__init__.py': 'WHERE = "site-packages"\n',
  });
  await server.createFunction({
    FunctionName: 'py-layers',
    Runtime: 'python3.12',
    Handler: 'app.handler',
    Layers: [layer.LayerVersionArn!],
    files: {
      'app.py': [
        'import toplevel_pkg, site_pkg',
        'def handler(event, context):',
        '    return {"a": toplevel_pkg.WHERE, "b": site_pkg.WHERE}',
      ].join('\n'),
    },
  });
  assert.deepEqual(await invoke('py-layers'), { a: 'python/', b: 'site-packages' });
});

test('override order: later layers win file by file; reordering the Layers changes the winner', async () => {
  const { out: a } = await publish('order-a', {
    'conf/value.txt': 'from A',
    'conf/only-a.txt': 'a',
    'conf/link.txt': { data: 'value.txt', mode: 0o120777 },
    'bin/run-a': { data: '#!/bin/sh\necho a\n', mode: 0o100755 },
    'replaced/dir-in-a/file.txt': 'a dir in A',
  });
  const { out: b } = await publish('order-b', {
    'conf/value.txt': 'from B',
    'conf/only-b.txt': 'b',
    'replaced/dir-in-a': 'a file in B',
  });
  const handler = [
    "const fs = require('node:fs');",
    "const opt = process.env.PATH.split(':').pop().replace(/\\/bin$/, '');",
    '// Each probe answers the error code instead of throwing: the last invoke runs with no layers.',
    'const probe = (f) => { try { return f(); } catch (e) { return e.code; } };',
    'exports.handler = async () => ({',
    "  value: probe(() => fs.readFileSync(opt + '/conf/value.txt', 'utf8')),",
    "  onlyA: probe(() => fs.readFileSync(opt + '/conf/only-a.txt', 'utf8')),",
    "  onlyB: probe(() => fs.readFileSync(opt + '/conf/only-b.txt', 'utf8')),",
    "  viaLink: probe(() => fs.readFileSync(opt + '/conf/link.txt', 'utf8')),",
    "  link: probe(() => fs.readlinkSync(opt + '/conf/link.txt')),",
    "  runAMode: probe(() => (fs.statSync(opt + '/bin/run-a').mode & 0o777).toString(8)),",
    "  replaced: probe(() => (fs.statSync(opt + '/replaced/dir-in-a').isDirectory() ? 'dir' : fs.readFileSync(opt + '/replaced/dir-in-a', 'utf8'))),",
    '});',
  ].join('\n');
  await server.createFunction({ FunctionName: 'ordered', Layers: [a.LayerVersionArn!, b.LayerVersionArn!], files: { 'index.js': handler } });
  assert.deepEqual(await invoke('ordered'), {
    value: 'from B',
    onlyA: 'a',
    onlyB: 'b',
    viaLink: 'from B',
    link: 'value.txt',
    runAMode: '755',
    replaced: 'a file in B',
  });

  const updated = await server.client.send(
    new UpdateFunctionConfigurationCommand({ FunctionName: 'ordered', Layers: [b.LayerVersionArn!, a.LayerVersionArn!] }),
  );
  assert.deepEqual(updated.Layers!.map((l) => l.Arn), [b.LayerVersionArn, a.LayerVersionArn], 'order kept');
  assert.deepEqual(await invoke('ordered'), {
    value: 'from A',
    onlyA: 'a',
    onlyB: 'b',
    viaLink: 'from A',
    link: 'value.txt',
    runAMode: '755',
    replaced: 'dir',
  });

  // Removing every layer leaves an empty /opt.
  const cleared = await server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'ordered', Layers: [] }));
  assert.equal(cleared.Layers, undefined);
  assert.deepEqual(await invoke('ordered'), {
    value: 'ENOENT',
    onlyA: 'ENOENT',
    onlyB: 'ENOENT',
    viaLink: 'ENOENT',
    link: 'ENOENT',
    runAMode: 'ENOENT',
    replaced: 'ENOENT',
  });
});

test('custom runtime: provided.al2023 with no bootstrap in its code runs the bootstrap of a layer', async () => {
  const tutorial = path.join(repoRoot, 'test', 'fixtures', 'functions', 'custom-tutorial');
  const { out: runtimeLayer } = await publish(
    'bash-runtime',
    { bootstrap: { data: await readFile(path.join(tutorial, 'bootstrap'), 'utf8'), mode: 0o100755 } },
    { CompatibleRuntimes: ['provided.al2023'] },
  );
  await server.createFunction({
    FunctionName: 'custom-from-layer',
    Runtime: 'provided.al2023',
    Handler: 'function.handler',
    Layers: [runtimeLayer.LayerVersionArn!],
    files: { 'function.sh': await readFile(path.join(tutorial, 'function.sh'), 'utf8') },
  });
  const out = await server.client.send(new InvokeCommand({ FunctionName: 'custom-from-layer', Payload: Buffer.from('{"via":"layer"}') }));
  assert.equal(out.FunctionError, undefined);
  assert.equal(Buffer.from(out.Payload!).toString(), `Echoing request: '{"via":"layer"}'`);
});

test('plain process mode (no bubblewrap): the merged tree is used where /opt would be', async () => {
  const own = await TestServer.start({ env: { NIMBUS_SANDBOX: 'process' } });
  try {
    const send = async (LayerName: string, files: Files) =>
      own.client.send(new PublishLayerVersionCommand({ LayerName, Content: { ZipFile: await zipOf(files) } }));
    const lib = await send('proc-lib', { 'nodejs/node_modules/proc/index.js': "module.exports = 'from layer';", 'bin/proc-tool': { data: '#!/bin/sh\necho tool\n', mode: 0o100755 } });
    const over = await send('proc-over', { 'nodejs/node_modules/proc/index.js': "module.exports = 'from the later layer';" });
    await own.createFunction({
      FunctionName: 'proc-node',
      Layers: [lib.LayerVersionArn!, over.LayerVersionArn!],
      files: {
        'index.js': [
          "const { execFileSync } = require('node:child_process');",
          "exports.handler = async () => ({ value: require('proc'), tool: execFileSync('proc-tool').toString().trim(), opt: process.env.PATH.split(':').pop() });",
        ].join('\n'),
      },
    });
    const out = await own.client.send(new InvokeCommand({ FunctionName: 'proc-node' }));
    assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload ?? new Uint8Array()).toString());
    const result = payloadJson(out.Payload) as { value: string; tool: string; opt: string };
    assert.equal(result.value, 'from the later layer');
    assert.equal(result.tool, 'tool');
    assert.ok(result.opt.startsWith(path.join(own.dataDir, 'artifacts', 'opt')), result.opt);

    const tutorial = path.join(repoRoot, 'test', 'fixtures', 'functions', 'custom-tutorial');
    // Outside the sandbox /bin/sh is the host's (dash on Debian); the tutorial needs bash.
    const bootstrap = (await readFile(path.join(tutorial, 'bootstrap'), 'utf8')).replace(/^#!\/bin\/sh\n/, '#!/bin/bash\n');
    const runtime = await send('proc-runtime', { bootstrap: { data: bootstrap, mode: 0o100755 } });
    await own.createFunction({
      FunctionName: 'proc-custom',
      Runtime: 'provided.al2023',
      Handler: 'function.handler',
      Layers: [runtime.LayerVersionArn!],
      files: { 'function.sh': await readFile(path.join(tutorial, 'function.sh'), 'utf8') },
    });
    const custom = await own.client.send(new InvokeCommand({ FunctionName: 'proc-custom', Payload: Buffer.from('{"mode":"process"}') }));
    assert.equal(custom.FunctionError, undefined, Buffer.from(custom.Payload ?? new Uint8Array()).toString());
    assert.equal(Buffer.from(custom.Payload!).toString(), `Echoing request: '{"mode":"process"}'`);
  } finally {
    await own.stop();
  }
});

test('a deleted layer version keeps working for the functions using it, across restarts, and cannot be added again', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-e2e-layers-'));
  let own = await TestServer.start({ dataDir });
  try {
    const zip = await zipOf({ 'nodejs/node_modules/kept/index.js': "module.exports = 'still here';" });
    const layer = await own.client.send(new PublishLayerVersionCommand({ LayerName: 'kept', Content: { ZipFile: zip } }));
    const zip2 = await zipOf({ 'extra/x.txt': 'x' });
    const other = await own.client.send(new PublishLayerVersionCommand({ LayerName: 'kept-2', Content: { ZipFile: zip2 } }));
    await own.createFunction({
      FunctionName: 'uses-deleted',
      Layers: [layer.LayerVersionArn!, other.LayerVersionArn!],
      files: { 'index.js': "exports.handler = async () => require('kept');" },
    });
    await own.client.send(new DeleteLayerVersionCommand({ LayerName: 'kept', VersionNumber: 1 }));
    const run = async (s: TestServer) => {
      const out = await s.client.send(new InvokeCommand({ FunctionName: 'uses-deleted' }));
      assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload ?? new Uint8Array()).toString());
      return payloadJson(out.Payload);
    };
    assert.equal(await run(own), 'still here');
    // A configuration change starts new environments: /opt is resolved again from the store.
    await own.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'uses-deleted', Description: 'changed' }));
    assert.equal(await run(own), 'still here');
    const config = await own.client.send(new GetFunctionCommand({ FunctionName: 'uses-deleted' }));
    assert.deepEqual(config.Configuration!.Layers, [
      { Arn: layer.LayerVersionArn, CodeSize: zip.length },
      { Arn: other.LayerVersionArn, CodeSize: zip2.length },
    ]);
    await own.stop();
    own = await TestServer.start({ dataDir });
    assert.equal(await run(own), 'still here');
    await rejectsWith(
      own.createFunction({ FunctionName: 'too-late', Layers: [layer.LayerVersionArn!], files: { 'index.js': 'exports.handler = async () => 1;' } }),
      'InvalidParameterValueException',
      `Layer version ${layer.LayerVersionArn} does not exist.`,
      400,
    );
  } finally {
    await own.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('bad layer content: hostile and broken zips, S3, missing content; nothing stored, no version used', async () => {
  const { out: kept } = await publish('zip-checks', { 'ok.txt': 'fine' });
  assert.equal(kept.Version, 1);
  const send = (Content: Record<string, unknown>) =>
    server.client.send(new PublishLayerVersionCommand({ LayerName: 'zip-checks', Content } as PublishLayerVersionCommandInput));
  await rejectsWith(
    send({ ZipFile: craftZip([{ name: 'python/ok.py', data: 'x' }, { name: '../escape.txt', data: 'owned' }]) }),
    'InvalidParameterValueException',
    'Invalid entry "../escape.txt" in zip file: the path escapes the archive root',
    400,
  );
  await rejectsWith(
    send({ ZipFile: craftZip([{ name: '/etc/nimbus-layer-test', data: 'owned' }]) }),
    'InvalidParameterValueException',
    'Invalid entry "/etc/nimbus-layer-test" in zip file: absolute paths are not allowed',
  );
  await rejectsWith(
    send({ ZipFile: craftZip([{ name: 'python/evil', data: '../../../etc/passwd', unixMode: 0o120777 }]) }),
    'InvalidParameterValueException',
    'Invalid entry "python/evil" in zip file: the symbolic link target "../../../etc/passwd" points outside the archive',
  );
  await rejectsWith(
    send({ ZipFile: Buffer.from('this is not a zip file at all') }),
    'InvalidParameterValueException',
    'Could not unzip uploaded file. Please check your file, then try to upload again.',
  );
  await rejectsWith(
    send({ S3Bucket: 'bucket', S3Key: 'layer.zip' }),
    'InvalidParameterValueException',
    'Nimbus takes layer content as a .zip file archive in Content.ZipFile; S3 locations (S3Bucket, S3Key, S3ObjectVersion) are not available locally.',
  );
  await rejectsWith(send({}), 'InvalidParameterValueException', 'Content.ZipFile is required: the .zip file archive, base64-encoded.');
  const raw = await server.fetch('/2018-10-31/layers/zip-checks/versions', { method: 'POST', body: JSON.stringify({ Description: 'no content' }) });
  assert.equal(raw.status, 400);
  assert.equal(raw.headers.get('x-amzn-errortype'), 'ValidationException');
  assert.deepEqual(await raw.json(), {
    Type: 'User',
    message: "1 validation error detected: Value null at 'content' failed to satisfy constraint: Member must not be null",
  });
  const badJson = await server.fetch('/2018-10-31/layers/zip-checks/versions', { method: 'POST', body: '{"Content": ' });
  assert.equal(badJson.status, 400);
  assert.equal(badJson.headers.get('x-amzn-errortype'), 'InvalidRequestContentException');

  await assert.rejects(readFile('/etc/nimbus-layer-test'), { code: 'ENOENT' });
  const versions = await server.client.send(new ListLayerVersionsCommand({ LayerName: 'zip-checks' }));
  assert.deepEqual(versions.LayerVersions!.map((v) => v.Version), [1], 'refused zips stored nothing');
  const { out: next } = await publish('zip-checks', { 'ok.txt': 'still fine' });
  assert.equal(next.Version, 2, 'refused zips used no version number');
});

test('bad publish and lookup input: names, versions, runtimes, architectures, ARNs, list parameters', async () => {
  await publish('lookups', { 'x.txt': 'x' });
  const pub = (input: Partial<PublishLayerVersionCommandInput>) =>
    server.client.send(new PublishLayerVersionCommand({ LayerName: 'lookups', Content: { ZipFile: Buffer.from('unused') }, ...input } as PublishLayerVersionCommandInput));

  const namePattern = '(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+';
  await rejectsWith(
    pub({ LayerName: 'bad.name' }),
    'ValidationException',
    `1 validation error detected: Value 'bad.name' at 'layerName' failed to satisfy constraint: Member must satisfy regular expression pattern: ${namePattern}`,
    400,
  );
  await rejectsWith(
    pub({ CompatibleRuntimes: ['nodejs24.x', 'cobol85'] as Runtime[] }),
    'ValidationException',
    /^1 validation error detected: Value '\[nodejs24\.x, cobol85\]' at 'compatibleRuntimes' failed to satisfy constraint: Member must satisfy enum value set: \[.*nodejs24\.x.*python3\.12.*provided\.al2023.*\]$/,
  );
  const sixteen = ['nodejs24.x', 'nodejs22.x', 'nodejs20.x', 'nodejs18.x', 'python3.14', 'python3.13', 'python3.12', 'python3.11', 'python3.10', 'python3.9',
    'java21', 'java17', 'dotnet8', 'ruby3.4', 'provided.al2023', 'provided.al2'] as Runtime[];
  await rejectsWith(
    pub({ CompatibleRuntimes: sixteen }),
    'ValidationException',
    `1 validation error detected: Value '[${sixteen.join(', ')}]' at 'compatibleRuntimes' failed to satisfy constraint: Member must have length less than or equal to 15`,
  );
  await rejectsWith(
    pub({ CompatibleArchitectures: ['sparc' as 'arm64'], Description: 'd'.repeat(257) }),
    'ValidationException',
    "2 validation errors detected: Value '[sparc]' at 'compatibleArchitectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]; " +
      `Value '${'d'.repeat(257)}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 256`,
  );
  await rejectsWith(
    pub({ LicenseInfo: 'l'.repeat(513) }),
    'ValidationException',
    `1 validation error detected: Value '${'l'.repeat(513)}' at 'licenseInfo' failed to satisfy constraint: Member must have length less than or equal to 512`,
  );
  await rejectsWith(
    pub({ LayerName: 'arn:aws:lambda:us-east-1:111111111111:layer:lookups' }),
    'InvalidParameterValueException',
    "The account ID in the layer ARN (111111111111) does not match this server's account (000000000000).",
  );

  // Versions and names that do not exist, or cannot.
  const get = (LayerName: string, VersionNumber: number) => server.client.send(new GetLayerVersionCommand({ LayerName, VersionNumber }));
  await rejectsWith(get('lookups', 2), 'ResourceNotFoundException', 'The resource you requested does not exist.', 404);
  await rejectsWith(get('no-such-layer', 1), 'ResourceNotFoundException', 'The resource you requested does not exist.');
  await rejectsWith(get('lookups', 0), 'InvalidParameterValueException', 'Layer Version Cannot be less than 1', 400);
  await rejectsWith(
    server.client.send(new DeleteLayerVersionCommand({ LayerName: 'lookups', VersionNumber: -3 })),
    'InvalidParameterValueException',
    'Layer Version Cannot be less than 1',
  );
  const nonNumeric = await server.fetch('/2018-10-31/layers/lookups/versions/abc');
  assert.equal(nonNumeric.status, 400);
  assert.equal(nonNumeric.headers.get('x-amzn-errortype'), 'ValidationException');
  const deleteUnknown = await server.client.send(new DeleteLayerVersionCommand({ LayerName: 'lookups', VersionNumber: 99 }));
  assert.equal(deleteUnknown.$metadata.httpStatusCode, 204, 'Lambda answers 204 for a version that does not exist');

  const arnPattern = 'arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso(b?)))?-[a-z]+-\\d{1}:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+';
  for (const bad of [arnOf('lookups'), 'lookups:1', 'arn:aws:lambda:us-east-1:000000000000:function:lookups:1']) {
    await rejectsWith(
      server.client.send(new GetLayerVersionByArnCommand({ Arn: bad })),
      'ValidationException',
      `1 validation error detected: Value '${bad}' at 'arn' failed to satisfy constraint: Member must satisfy regular expression pattern: ${arnPattern}`,
    );
  }
  await rejectsWith(
    server.client.send(new GetLayerVersionByArnCommand({ Arn: arnOf('lookups', 7) })),
    'ResourceNotFoundException',
    'The resource you requested does not exist.',
  );

  // List parameters.
  await rejectsWith(
    server.client.send(new ListLayersCommand({ CompatibleRuntime: 'nodejs1.x' as Runtime, CompatibleArchitecture: 'mips' as 'arm64' })),
    'ValidationException',
    /^2 validation errors detected: Value 'nodejs1\.x' at 'compatibleRuntime' failed to satisfy constraint: Member must satisfy enum value set: \[.*\]; Value 'mips' at 'compatibleArchitecture' failed to satisfy constraint: Member must satisfy enum value set: \[x86_64, arm64\]$/,
  );
  await rejectsWith(
    server.client.send(new ListLayerVersionsCommand({ LayerName: 'lookups', CompatibleRuntime: 'python2.0' as Runtime })),
    'ValidationException',
    /^1 validation error detected: Value 'python2\.0' at 'compatibleRuntime' failed to satisfy constraint: Member must satisfy enum value set: \[/,
  );
  await rejectsWith(
    server.client.send(new ListLayersCommand({ MaxItems: 0 })),
    'ValidationException',
    "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1",
  );
  await rejectsWith(
    server.client.send(new ListLayerVersionsCommand({ LayerName: 'lookups', MaxItems: 51 })),
    'ValidationException',
    "1 validation error detected: Value '51' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 50",
  );
  await rejectsWith(
    server.client.send(new ListLayerVersionsCommand({ LayerName: 'lookups', Marker: 'not-a-marker' })),
    'InvalidParameterValueException',
    'Invalid Marker: pass the NextMarker returned by the previous call of the same List operation',
  );
  const unknownFind = await server.fetch('/2018-10-31/layers?find=Everything&Arn=x');
  assert.equal(unknownFind.status, 400);
  assert.equal(unknownFind.headers.get('x-amzn-errortype'), 'ValidationException');

  // Everything stored is still there.
  const still = await get('lookups', 1);
  assert.equal(still.Version, 1);
});

test("bad Layers on a function: more than 5, unknown versions, malformed ARNs, duplicates, another region; the function is unchanged", async () => {
  const arns: string[] = [];
  for (let i = 1; i <= 6; i++) arns.push((await publish(`many-${i}`, { [`f${i}.txt`]: String(i) })).out.LayerVersionArn!);
  const create = (FunctionName: string, Layers: string[]) =>
    server.createFunction({ FunctionName, Layers, files: { 'index.js': 'exports.handler = async () => "ok";' } });

  await rejectsWith(create('six-layers', arns), 'InvalidParameterValueException', 'Cannot reference more than 5 layers.', 400);
  const unknown = arnOf('many-1', 9);
  await rejectsWith(create('unknown-version', [arns[0]!, unknown]), 'InvalidParameterValueException', `Layer version ${unknown} does not exist.`);
  await rejectsWith(
    create('unknown-layer', [arnOf('no-such-layer', 1)]),
    'InvalidParameterValueException',
    `Layer version ${arnOf('no-such-layer', 1)} does not exist.`,
  );
  const otherAccount = 'arn:aws:lambda:us-east-1:123456789012:layer:many-1:1';
  await rejectsWith(create('other-account', [otherAccount]), 'InvalidParameterValueException', `Layer version ${otherAccount} does not exist.`);
  await rejectsWith(
    create('other-region', ['arn:aws:lambda:eu-west-1:000000000000:layer:many-1:1']),
    'InvalidParameterValueException',
    'Layers are not in the same region as the function. Layers are expected to be in region us-east-1.',
  );
  const second = (await publish('many-1', { 'f1.txt': 'again' })).out.LayerVersionArn!;
  await rejectsWith(
    create('duplicate', [arns[0]!, arns[1]!, second]),
    'InvalidParameterValueException',
    `Two different versions of the same layer are not allowed to be referenced in the same function. ${arns[0]} and ${second} are versions of the same layer.`,
  );
  const layerPattern =
    '(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)';
  const constraint =
    'Member must satisfy constraint: [Member must have length less than or equal to 2048, Member must have length greater than or equal to 1, ' +
    `Member must satisfy regular expression pattern: ${layerPattern}, Member must not be null]`;
  for (const bad of [arnOf('many-1'), 'many-1:1', `${arnOf('many-1')}:latest`]) {
    await rejectsWith(
      create('malformed', [arns[0]!, bad]),
      'ValidationException',
      `1 validation error detected: Value '[${arns[0]}, ${bad}]' at 'layers' failed to satisfy constraint: ${constraint}`,
    );
  }
  const notAList = await server.fetch('/2015-03-31/functions', {
    method: 'POST',
    body: JSON.stringify({ FunctionName: 'not-a-list', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/test', Layers: arns[0], Code: { ZipFile: 'UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==' } }),
  });
  assert.equal(notAList.status, 400);
  assert.equal(notAList.headers.get('x-amzn-errortype'), 'InvalidParameterValueException');

  // None of them was created; an update with bad Layers changes nothing.
  await rejectsWith(server.client.send(new GetFunctionCommand({ FunctionName: 'six-layers' })), 'ResourceNotFoundException', /Function not found/);
  await create('five-layers', arns.slice(0, 5));
  assert.equal(await invoke('five-layers'), 'ok');
  await rejectsWith(
    server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'five-layers', Layers: arns })),
    'InvalidParameterValueException',
    'Cannot reference more than 5 layers.',
  );
  const unchanged = await server.client.send(new GetFunctionCommand({ FunctionName: 'five-layers' }));
  assert.deepEqual(unchanged.Configuration!.Layers!.map((l) => l.Arn), arns.slice(0, 5));
  assert.equal(await invoke('five-layers'), 'ok');
});
