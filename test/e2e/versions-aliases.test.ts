/**
 * Versions and aliases with the AWS SDK: immutable published snapshots, qualified ARNs
 * and invokes, weighted routing observed over many invokes, and their bad inputs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  PublishVersionCommand,
  ListVersionsByFunctionCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  CreateAliasCommand,
  GetAliasCommand,
  UpdateAliasCommand,
  DeleteAliasCommand,
  ListAliasesCommand,
  InvokeCommand,
  GetFunctionConfigurationCommand,
  DeleteFunctionCommand,
} from '@aws-sdk/client-lambda';
import { TestServer, zipOf, payloadJson } from '../helpers/nimbus.ts';

let server: TestServer;
before(async () => {
  server = await TestServer.start();
});
after(async () => {
  await server.stop();
});

const code = (tag: string) => `export const handler = async () => ({ tag: ${JSON.stringify(tag)}, color: process.env.COLOR ?? null, version: process.env.AWS_LAMBDA_FUNCTION_VERSION });`;

async function expectError(promise: Promise<unknown>, name: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.equal(err.name, name);
    if (message) assert.match(err.message, message);
    return true;
  });
}

test('publish versions: immutable snapshots, qualified ARNs, $LATEST moves on', async () => {
  await server.createFunction({ FunctionName: 'ver', files: { 'index.mjs': code('one') }, Environment: { Variables: { COLOR: 'red' } } });
  const v1 = await server.client.send(new PublishVersionCommand({ FunctionName: 'ver', Description: 'first' }));
  assert.equal(v1.$metadata.httpStatusCode, 201);
  assert.equal(v1.Version, '1');
  assert.equal(v1.FunctionArn, 'arn:aws:lambda:us-east-1:000000000000:function:ver:1');
  assert.equal(v1.Description, 'first');
  // Publishing an unchanged $LATEST returns the same version.
  assert.equal((await server.client.send(new PublishVersionCommand({ FunctionName: 'ver' }))).Version, '1');

  await server.client.send(new UpdateFunctionCodeCommand({ FunctionName: 'ver', ZipFile: await zipOf({ 'index.mjs': code('two') }) }));
  await server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'ver', Environment: { Variables: { COLOR: 'blue' } } }));
  const v2 = await server.client.send(new PublishVersionCommand({ FunctionName: 'ver' }));
  assert.equal(v2.Version, '2');

  const invoke = async (qualifier?: string) => {
    const out = await server.client.send(new InvokeCommand({ FunctionName: 'ver', Qualifier: qualifier }));
    return { body: payloadJson(out.Payload) as { tag: string; color: string; version: string }, executed: out.ExecutedVersion };
  };
  assert.deepEqual(await invoke('1'), { body: { tag: 'one', color: 'red', version: '1' }, executed: '1' });
  assert.deepEqual(await invoke('2'), { body: { tag: 'two', color: 'blue', version: '2' }, executed: '2' });
  assert.deepEqual(await invoke(), { body: { tag: 'two', color: 'blue', version: '$LATEST' }, executed: '$LATEST' });
  const byArn = await server.client.send(new InvokeCommand({ FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:ver:1' }));
  assert.equal(byArn.ExecutedVersion, '1');

  const versions = await server.client.send(new ListVersionsByFunctionCommand({ FunctionName: 'ver' }));
  assert.deepEqual(versions.Versions!.map((v) => v.Version), ['$LATEST', '1', '2']);
  const conf1 = await server.client.send(new GetFunctionConfigurationCommand({ FunctionName: 'ver', Qualifier: '1' }));
  assert.deepEqual(conf1.Environment, { Variables: { COLOR: 'red' } });

  await expectError(server.client.send(new InvokeCommand({ FunctionName: 'ver', Qualifier: '9' })), 'ResourceNotFoundException');
  await expectError(server.client.send(new PublishVersionCommand({ FunctionName: 'ver', CodeSha256: 'not-the-sha' })), 'InvalidParameterValueException', /CodeSHA256/);
  await expectError(server.client.send(new PublishVersionCommand({ FunctionName: 'ver', RevisionId: 'stale' })), 'PreconditionFailedException');
  await expectError(server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'ver:1', MemorySize: 256 })), 'InvalidParameterValueException', /immutable/);
});

test('aliases: create, get, update, list, delete; a version an alias uses cannot be deleted', async () => {
  await server.createFunction({ FunctionName: 'ali', files: { 'index.mjs': code('a') }, Publish: true });
  await server.client.send(new UpdateFunctionCodeCommand({ FunctionName: 'ali', ZipFile: await zipOf({ 'index.mjs': code('b') }), Publish: true }));
  const created = await server.client.send(new CreateAliasCommand({ FunctionName: 'ali', Name: 'live', FunctionVersion: '1', Description: 'prod' }));
  assert.equal(created.$metadata.httpStatusCode, 201);
  assert.equal(created.AliasArn, 'arn:aws:lambda:us-east-1:000000000000:function:ali:live');
  assert.equal(created.FunctionVersion, '1');
  assert.match(created.RevisionId!, /^[0-9a-f-]{36}$/);
  const out = await server.client.send(new InvokeCommand({ FunctionName: 'ali:live' }));
  assert.equal(out.ExecutedVersion, '1');
  assert.equal((payloadJson(out.Payload) as { tag: string }).tag, 'a');

  const updated = await server.client.send(new UpdateAliasCommand({ FunctionName: 'ali', Name: 'live', FunctionVersion: '2' }));
  assert.equal(updated.FunctionVersion, '2');
  assert.equal((await server.client.send(new InvokeCommand({ FunctionName: 'ali', Qualifier: 'live' }))).ExecutedVersion, '2');
  assert.equal((await server.client.send(new GetAliasCommand({ FunctionName: 'ali', Name: 'live' }))).Description, 'prod');
  await server.client.send(new CreateAliasCommand({ FunctionName: 'ali', Name: 'old', FunctionVersion: '1' }));
  const listed = await server.client.send(new ListAliasesCommand({ FunctionName: 'ali' }));
  assert.deepEqual(listed.Aliases!.map((a) => a.Name), ['live', 'old']);
  const byVersion = await server.client.send(new ListAliasesCommand({ FunctionName: 'ali', FunctionVersion: '1' }));
  assert.deepEqual(byVersion.Aliases!.map((a) => a.Name), ['old']);

  await expectError(server.client.send(new DeleteFunctionCommand({ FunctionName: 'ali', Qualifier: '1' })), 'ResourceConflictException', /aliases reference it: \[old\]/);
  await server.client.send(new DeleteAliasCommand({ FunctionName: 'ali', Name: 'old' }));
  await server.client.send(new DeleteFunctionCommand({ FunctionName: 'ali', Qualifier: '1' }));
  await expectError(server.client.send(new InvokeCommand({ FunctionName: 'ali', Qualifier: '1' })), 'ResourceNotFoundException');
  await expectError(server.client.send(new GetAliasCommand({ FunctionName: 'ali', Name: 'old' })), 'ResourceNotFoundException');
  await expectError(
    server.client.send(new UpdateAliasCommand({ FunctionName: 'ali', Name: 'live', Description: 'x', RevisionId: created.RevisionId })),
    'PreconditionFailedException',
  );
});

test('weighted routing splits invokes between two versions within statistical bounds', async () => {
  await server.createFunction({ FunctionName: 'canary', files: { 'index.mjs': code('stable') }, Publish: true });
  await server.client.send(new UpdateFunctionCodeCommand({ FunctionName: 'canary', ZipFile: await zipOf({ 'index.mjs': code('canary') }), Publish: true }));
  await server.client.send(
    new CreateAliasCommand({ FunctionName: 'canary', Name: 'prod', FunctionVersion: '1', RoutingConfig: { AdditionalVersionWeights: { '2': 0.3 } } }),
  );
  const alias = await server.client.send(new GetAliasCommand({ FunctionName: 'canary', Name: 'prod' }));
  assert.deepEqual(alias.RoutingConfig, { AdditionalVersionWeights: { '2': 0.3 } });
  const n = 400;
  let toCanary = 0;
  for (let i = 0; i < n; i++) {
    const out = await server.client.send(new InvokeCommand({ FunctionName: 'canary', Qualifier: 'prod' }));
    const body = payloadJson(out.Payload) as { tag: string };
    assert.equal(body.tag === 'canary' ? '2' : '1', out.ExecutedVersion, 'ExecutedVersion names the version that ran');
    if (out.ExecutedVersion === '2') toCanary++;
  }
  // Binomial(400, 0.3): mean 120, sd ~9.2; 5 sd either side.
  assert.ok(toCanary > 74 && toCanary < 166, `${toCanary} of ${n} went to version 2`);
});

test('alias bad input: unknown versions, $LATEST with weights, weights out of range, bad names', async () => {
  await server.createFunction({ FunctionName: 'badali', files: { 'index.mjs': code('x') }, Publish: true });
  await expectError(server.client.send(new CreateAliasCommand({ FunctionName: 'badali', Name: 'a', FunctionVersion: '7' })), 'ResourceNotFoundException');
  await expectError(
    server.client.send(new CreateAliasCommand({ FunctionName: 'badali', Name: 'a', FunctionVersion: '$LATEST', RoutingConfig: { AdditionalVersionWeights: { '1': 0.5 } } })),
    'InvalidParameterValueException',
    /\$LATEST/,
  );
  await expectError(
    server.client.send(new CreateAliasCommand({ FunctionName: 'badali', Name: 'a', FunctionVersion: '1', RoutingConfig: { AdditionalVersionWeights: { '1': 1.5 } } })),
    'ValidationException',
  );
  await expectError(server.client.send(new CreateAliasCommand({ FunctionName: 'badali', Name: '123', FunctionVersion: '1' })), 'ValidationException');
  await server.client.send(new CreateAliasCommand({ FunctionName: 'badali', Name: 'dup', FunctionVersion: '1' }));
  await expectError(server.client.send(new CreateAliasCommand({ FunctionName: 'badali', Name: 'dup', FunctionVersion: '1' })), 'ResourceConflictException');
  await expectError(server.client.send(new InvokeCommand({ FunctionName: 'badali', Qualifier: 'nope' })), 'ResourceNotFoundException');
  await expectError(server.client.send(new InvokeCommand({ FunctionName: 'badali:dup', Qualifier: 'other' })), 'InvalidParameterValueException', /qualifier/);
  assert.equal((await server.client.send(new InvokeCommand({ FunctionName: 'badali:dup' }))).StatusCode, 200, 'still serving');
});

test('tags: TagResource, ListTags, UntagResource, GetFunction shows them; bad input refused', async () => {
  const { TagResourceCommand, UntagResourceCommand, ListTagsCommand, GetFunctionCommand } = await import('@aws-sdk/client-lambda');
  const created = await server.createFunction({ FunctionName: 'tagged', files: { 'index.mjs': code('t') }, Tags: { team: 'core' } });
  const arn = created.FunctionArn!;
  await server.client.send(new TagResourceCommand({ Resource: arn, Tags: { env: 'dev', owner: 'me' } }));
  assert.deepEqual((await server.client.send(new ListTagsCommand({ Resource: arn }))).Tags, { team: 'core', env: 'dev', owner: 'me' });
  await server.client.send(new UntagResourceCommand({ Resource: arn, TagKeys: ['owner', 'team'] }));
  assert.deepEqual((await server.client.send(new GetFunctionCommand({ FunctionName: 'tagged' }))).Tags, { env: 'dev' });
  const after = await server.client.send(new GetFunctionConfigurationCommand({ FunctionName: 'tagged' }));
  assert.equal(after.RevisionId, created.RevisionId, 'tags do not change the RevisionId');
  await expectError(server.client.send(new TagResourceCommand({ Resource: arn, Tags: { 'aws:reserved': 'x' } })), 'InvalidParameterValueException');
  await expectError(server.client.send(new ListTagsCommand({ Resource: `${arn}-missing` })), 'ResourceNotFoundException');
});
