/**
 * The control API's function operations, driven by the real AWS SDK v3 against a real
 * server: exact shapes, paging, updates, deletion, persistence across a restart, and
 * every bad input answered with an AWS-shaped error while stored data stays intact.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  ListFunctionsCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  DeleteFunctionCommand,
  GetAccountSettingsCommand,
  InvokeCommand,
  CreateFunctionCommand,
} from '@aws-sdk/client-lambda';
import { TestServer, zipOf, payloadJson } from '../helpers/nimbus.ts';
import { craftZip } from '../helpers/zip.ts';

const handler = 'export const handler = async (e) => ({ version: 1, e });';
let server: TestServer;

before(async () => {
  server = await TestServer.start();
});
after(async () => {
  await server.stop();
});

async function expectError(promise: Promise<unknown>, name: string, status: number, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(err.name, name);
    assert.equal(err.$metadata?.httpStatusCode, status);
    if (message) assert.match(err.message, message);
    return true;
  });
}

test('CreateFunction returns the FunctionConfiguration Lambda returns', async () => {
  const zip = await zipOf({ 'index.mjs': handler });
  const out = await server.createFunction({
    FunctionName: 'shape',
    files: { 'index.mjs': handler },
    Description: 'a function',
    MemorySize: 256,
    Timeout: 10,
    Environment: { Variables: { COLOR: 'blue' } },
  });
  assert.equal(out.$metadata.httpStatusCode, 201);
  assert.equal(out.FunctionName, 'shape');
  assert.equal(out.FunctionArn, 'arn:aws:lambda:us-east-1:000000000000:function:shape');
  assert.equal(out.Runtime, 'nodejs24.x');
  assert.equal(out.Handler, 'index.handler');
  assert.equal(out.Role, 'arn:aws:iam::000000000000:role/test');
  assert.equal(out.CodeSha256, createHash('sha256').update(zip).digest('base64'));
  assert.equal(out.CodeSize, zip.length);
  assert.equal(out.Description, 'a function');
  assert.equal(out.MemorySize, 256);
  assert.equal(out.Timeout, 10);
  assert.equal(out.Version, '$LATEST');
  assert.deepEqual(out.Environment, { Variables: { COLOR: 'blue' } });
  assert.equal(out.State, 'Active');
  assert.equal(out.LastUpdateStatus, 'Successful');
  assert.equal(out.PackageType, 'Zip');
  assert.deepEqual(out.Architectures, ['x86_64']);
  assert.deepEqual(out.EphemeralStorage, { Size: 512 });
  assert.deepEqual(out.TracingConfig, { Mode: 'PassThrough' });
  assert.deepEqual(out.LoggingConfig, { LogFormat: 'Text', LogGroup: '/aws/lambda/shape' });
  assert.match(out.LastModified!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/);
  assert.match(out.RevisionId!, /^[0-9a-f-]{36}$/);
});

test('defaults: 3 s timeout, 128 MB memory', async () => {
  const out = await server.createFunction({ FunctionName: 'defaults', files: { 'index.mjs': handler } });
  assert.equal(out.Timeout, 3);
  assert.equal(out.MemorySize, 128);
});

test('GetFunction gives Configuration, a downloadable Code.Location and Tags', async () => {
  await server.createFunction({ FunctionName: 'getme', files: { 'index.mjs': handler }, Tags: { team: 'core' } });
  const out = await server.client.send(new GetFunctionCommand({ FunctionName: 'getme' }));
  assert.equal(out.Configuration?.FunctionName, 'getme');
  assert.equal(out.Code?.RepositoryType, 'S3');
  assert.deepEqual(out.Tags, { team: 'core' });
  const zip = Buffer.from(await (await fetch(out.Code!.Location!)).arrayBuffer());
  assert.equal(createHash('sha256').update(zip).digest('base64'), out.Configuration?.CodeSha256);
  // Name, ARN, partial ARN and `name:$LATEST` all address the same function.
  for (const name of ['arn:aws:lambda:us-east-1:000000000000:function:getme', '000000000000:function:getme', 'getme:$LATEST']) {
    const c = await server.client.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
    assert.equal(c.FunctionName, 'getme');
  }
});

test('ListFunctions pages with Marker and MaxItems', async () => {
  for (const n of ['page-a', 'page-b', 'page-c']) await server.createFunction({ FunctionName: n, files: { 'index.mjs': handler } });
  const names: string[] = [];
  let marker: string | undefined;
  let pages = 0;
  do {
    const out = await server.client.send(new ListFunctionsCommand({ MaxItems: 2, Marker: marker }));
    assert.ok(out.Functions!.length <= 2);
    names.push(...out.Functions!.map((f) => f.FunctionName!));
    marker = out.NextMarker;
    pages++;
  } while (marker);
  assert.ok(pages >= 2);
  for (const n of ['page-a', 'page-b', 'page-c']) assert.ok(names.includes(n));
  assert.deepEqual([...names].sort(), names, 'listed in name order');
  assert.equal(new Set(names).size, names.length, 'no function listed twice');
});

test('UpdateFunctionCode and UpdateFunctionConfiguration take effect on the next invoke', async () => {
  const created = await server.createFunction({ FunctionName: 'upd', files: { 'index.mjs': handler } });
  const first = await server.client.send(new InvokeCommand({ FunctionName: 'upd', Payload: Buffer.from('{}') }));
  assert.deepEqual(payloadJson(first.Payload), { version: 1, e: {} });

  const code = await server.client.send(
    new UpdateFunctionCodeCommand({ FunctionName: 'upd', ZipFile: await zipOf({ 'index.mjs': 'export const handler = async () => ({ version: 2, color: process.env.COLOR });' }) }),
  );
  assert.notEqual(code.CodeSha256, created.CodeSha256);
  assert.notEqual(code.RevisionId, created.RevisionId);
  const conf = await server.client.send(
    new UpdateFunctionConfigurationCommand({ FunctionName: 'upd', Environment: { Variables: { COLOR: 'red' } }, MemorySize: 512, Timeout: 30, Description: 'v2', EphemeralStorage: { Size: 1024 } }),
  );
  assert.equal(conf.MemorySize, 512);
  assert.equal(conf.Timeout, 30);
  assert.equal(conf.Description, 'v2');
  assert.deepEqual(conf.EphemeralStorage, { Size: 1024 });
  assert.equal(conf.CodeSha256, code.CodeSha256);
  const second = await server.client.send(new InvokeCommand({ FunctionName: 'upd', Payload: Buffer.from('{}') }));
  assert.deepEqual(payloadJson(second.Payload), { version: 2, color: 'red' });
});

test('a stale RevisionId is refused with PreconditionFailedException and changes nothing', async () => {
  const created = await server.createFunction({ FunctionName: 'rev', files: { 'index.mjs': handler } });
  await server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'rev', Description: 'changed' }));
  await expectError(
    server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'rev', Description: 'lost', RevisionId: created.RevisionId })),
    'PreconditionFailedException',
    412,
  );
  const now = await server.client.send(new GetFunctionConfigurationCommand({ FunctionName: 'rev' }));
  assert.equal(now.Description, 'changed');
});

test('DeleteFunction removes it; later calls say ResourceNotFoundException', async () => {
  await server.createFunction({ FunctionName: 'gone', files: { 'index.mjs': handler } });
  await server.client.send(new InvokeCommand({ FunctionName: 'gone' }));
  await server.client.send(new DeleteFunctionCommand({ FunctionName: 'gone' }));
  await expectError(
    server.client.send(new GetFunctionCommand({ FunctionName: 'gone' })),
    'ResourceNotFoundException',
    404,
    /Function not found: arn:aws:lambda:us-east-1:000000000000:function:gone/,
  );
  await expectError(server.client.send(new InvokeCommand({ FunctionName: 'gone' })), 'ResourceNotFoundException', 404);
  await expectError(server.client.send(new DeleteFunctionCommand({ FunctionName: 'gone' })), 'ResourceNotFoundException', 404);
});

test('GetAccountSettings reports limits and usage', async () => {
  const out = await server.client.send(new GetAccountSettingsCommand({}));
  assert.equal(out.AccountLimit?.ConcurrentExecutions, 1000);
  assert.equal(out.AccountLimit?.CodeSizeZipped, 52_428_800);
  assert.equal(out.AccountLimit?.CodeSizeUnzipped, 262_144_000);
  assert.ok((out.AccountUsage?.FunctionCount ?? 0) >= 1);
  assert.ok((out.AccountUsage?.TotalCodeSize ?? 0) > 0);
});

test('bad input: AWS-shaped errors, the server keeps serving, nothing stored is lost', async () => {
  await server.createFunction({ FunctionName: 'keeper', files: { 'index.mjs': handler } });
  const before = await server.client.send(new GetFunctionConfigurationCommand({ FunctionName: 'keeper' }));
  const goodZip = await zipOf({ 'index.mjs': handler });
  const base = { Runtime: 'nodejs24.x' as const, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/test' };
  const create = (input: Record<string, unknown>) =>
    server.client.send(new CreateFunctionCommand({ ...base, Code: { ZipFile: goodZip }, ...input } as never));

  await expectError(create({ FunctionName: 'keeper' }), 'ResourceConflictException', 409, /Function already exist: keeper/);
  await expectError(create({ FunctionName: 'mem', MemorySize: 64 }), 'ValidationException', 400, /Value '64' at 'memorySize'.*greater than or equal to 128/);
  await expectError(create({ FunctionName: 'mem', MemorySize: 10_241 }), 'ValidationException', 400, /less than or equal to 10240/);
  await expectError(create({ FunctionName: 'tmo', Timeout: 0 }), 'ValidationException', 400, /'timeout'/);
  await expectError(create({ FunctionName: 'tmo', Timeout: 901 }), 'ValidationException', 400, /less than or equal to 900/);
  await expectError(create({ FunctionName: 'eph', EphemeralStorage: { Size: 100 } }), 'ValidationException', 400, /ephemeralStorage/);
  await expectError(create({ FunctionName: 'bad name!' }), 'ValidationException', 400, /functionName/);
  await expectError(create({ FunctionName: 'role', Role: 'not-a-role' }), 'ValidationException', 400, /role/);
  await expectError(create({ FunctionName: 'rt', Runtime: 'cobol1.0' }), 'InvalidParameterValueException', 400, /cobol1\.0/);
  await expectError(create({ FunctionName: 'old', Runtime: 'nodejs12.x' }), 'InvalidParameterValueException', 400, /nodejs12\.x.*no longer supported/);
  await expectError(create({ FunctionName: 'java', Runtime: 'java21' }), 'InvalidParameterValueException', 400, /java21/);
  await expectError(
    create({ FunctionName: 'env', Environment: { Variables: { AWS_REGION: 'x' } } }),
    'InvalidParameterValueException',
    400,
    /reserved keys.*AWS_REGION/,
  );
  await expectError(
    create({ FunctionName: 'env', Environment: { Variables: { BIG: 'x'.repeat(5000) } } }),
    'InvalidParameterValueException',
    400,
    /4KB/,
  );
  await expectError(create({ FunctionName: 'corrupt', Code: { ZipFile: Buffer.from('this is not a zip') } }), 'InvalidParameterValueException', 400, /Could not unzip/);
  await expectError(
    create({ FunctionName: 'slip', Code: { ZipFile: craftZip([{ name: '../../evil.js', data: Buffer.from('x') }]) } }),
    'InvalidParameterValueException',
    400,
  );
  await expectError(create({ FunctionName: 's3', Code: { S3Bucket: 'b', S3Key: 'k' } }), 'InvalidParameterValueException', 400, /ZipFile/);
  await expectError(
    server.client.send(new GetFunctionCommand({ FunctionName: 'nope' })),
    'ResourceNotFoundException',
    404,
  );

  // Raw HTTP for what the SDK will not send.
  const malformed = await server.fetch('/2015-03-31/functions', { method: 'POST', body: '{"FunctionName": ', headers: { 'content-type': 'application/json' } });
  assert.equal(malformed.status, 400);
  assert.equal(malformed.headers.get('x-amzn-errortype'), 'InvalidRequestContentException');
  assert.ok(malformed.headers.get('x-amzn-requestid'));
  const body = (await malformed.json()) as { Type: string; message: string };
  assert.equal(body.Type, 'User');
  assert.match(body.message, /Could not parse request body into json/);

  const unknownRoute = await server.fetch('/2015-03-31/nothing-here');
  assert.equal(unknownRoute.status, 404);
  assert.equal(unknownRoute.headers.get('x-amzn-errortype'), 'UnknownOperationException');

  const badMarker = await server.fetch('/2015-03-31/functions?Marker=garbage');
  assert.equal(badMarker.status, 400);

  // Still serving, and the stored function is untouched.
  const after = await server.client.send(new GetFunctionConfigurationCommand({ FunctionName: 'keeper' }));
  assert.deepEqual(after, { ...before, $metadata: after.$metadata });
  for (const name of ['mem', 'tmo', 'eph', 'rt', 'old', 'env', 'corrupt', 'slip', 's3']) {
    await expectError(server.client.send(new GetFunctionCommand({ FunctionName: name })), 'ResourceNotFoundException', 404);
  }
});

test('a restart keeps every function and its code', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-restart-'));
  const persistent = await TestServer.start({ dataDir });
  await persistent.createFunction({ FunctionName: 'durable', files: { 'index.mjs': 'export const handler = async () => "still here";' } });
  assert.equal(await persistent.stop(), 0);
  const again = await TestServer.start({ dataDir });
  try {
    const conf = await again.client.send(new GetFunctionConfigurationCommand({ FunctionName: 'durable' }));
    assert.equal(conf.FunctionName, 'durable');
    const out = await again.client.send(new InvokeCommand({ FunctionName: 'durable' }));
    assert.equal(payloadJson(out.Payload), 'still here');
  } finally {
    await again.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});
