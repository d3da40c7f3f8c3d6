/**
 * Provisioned concurrency: environments initialized ahead (no Init Duration, init type
 * provisioned-concurrency), IN_PROGRESS then READY, spill-over to on-demand, configs on
 * versions and aliases, and bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PutProvisionedConcurrencyConfigCommand,
  GetProvisionedConcurrencyConfigCommand,
  DeleteProvisionedConcurrencyConfigCommand,
  ListProvisionedConcurrencyConfigsCommand,
  PutFunctionConcurrencyCommand,
  CreateAliasCommand,
  InvokeCommand,
} from '@aws-sdk/client-lambda';
import { TestServer, logResult, payloadJson } from '../helpers/nimbus.ts';

const handler = 'export const handler = async (e) => { if (e.wait) await new Promise((r) => setTimeout(r, 800)); return process.env.AWS_LAMBDA_INITIALIZATION_TYPE; };';

test('provisioned environments serve without a cold start; extra load spills to on-demand', async () => {
  const server = await TestServer.start();
  try {
    await server.createFunction({ FunctionName: 'pc', Publish: true, Timeout: 10, files: { 'index.mjs': handler } });
    const put = await server.client.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'pc', Qualifier: '1', ProvisionedConcurrentExecutions: 2 }));
    assert.equal(put.$metadata.httpStatusCode, 202);
    assert.equal(put.RequestedProvisionedConcurrentExecutions, 2);
    assert.ok(put.Status === 'IN_PROGRESS' || put.Status === 'READY');
    let status: string | undefined = put.Status;
    for (let i = 0; i < 100 && status !== 'READY'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const got = await server.client.send(new GetProvisionedConcurrencyConfigCommand({ FunctionName: 'pc', Qualifier: '1' }));
      status = got.Status;
      if (status === 'READY') assert.equal(got.AllocatedProvisionedConcurrentExecutions, 2);
    }
    assert.equal(status, 'READY');

    const warm = await server.client.send(new InvokeCommand({ FunctionName: 'pc', Qualifier: '1', LogType: 'Tail' }));
    assert.equal(payloadJson(warm.Payload), 'provisioned-concurrency');
    assert.doesNotMatch(logResult(warm.LogResult), /Init Duration/);

    const three = await Promise.all(
      [1, 2, 3].map(() => server.client.send(new InvokeCommand({ FunctionName: 'pc', Qualifier: '1', LogType: 'Tail', Payload: Buffer.from('{"wait":true}') }))),
    );
    const types = three.map((o) => payloadJson(o.Payload)).sort();
    assert.deepEqual(types, ['on-demand', 'provisioned-concurrency', 'provisioned-concurrency']);
    const spilled = three.find((o) => payloadJson(o.Payload) === 'on-demand')!;
    assert.match(logResult(spilled.LogResult), /Init Duration/);

    const listed = await server.client.send(new ListProvisionedConcurrencyConfigsCommand({ FunctionName: 'pc' }));
    assert.equal(listed.ProvisionedConcurrencyConfigs!.length, 1);
    assert.equal(listed.ProvisionedConcurrencyConfigs![0]!.FunctionArn, 'arn:aws:lambda:us-east-1:000000000000:function:pc:1');

    await server.client.send(new DeleteProvisionedConcurrencyConfigCommand({ FunctionName: 'pc', Qualifier: '1' }));
    await assert.rejects(server.client.send(new GetProvisionedConcurrencyConfigCommand({ FunctionName: 'pc', Qualifier: '1' })), {
      name: 'ProvisionedConcurrencyConfigNotFoundException',
    });
  } finally {
    await server.stop();
  }
});

test('on an alias; refused on $LATEST and beyond reserved concurrency', async () => {
  const server = await TestServer.start();
  try {
    await server.createFunction({ FunctionName: 'pca', Publish: true, files: { 'index.mjs': handler } });
    await server.client.send(new CreateAliasCommand({ FunctionName: 'pca', Name: 'live', FunctionVersion: '1' }));
    await server.client.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'pca', Qualifier: 'live', ProvisionedConcurrentExecutions: 1 }));
    let ready = false;
    for (let i = 0; i < 100 && !ready; i++) {
      await new Promise((r) => setTimeout(r, 100));
      ready = (await server.client.send(new GetProvisionedConcurrencyConfigCommand({ FunctionName: 'pca', Qualifier: 'live' }))).Status === 'READY';
    }
    assert.ok(ready);
    assert.equal(payloadJson((await server.client.send(new InvokeCommand({ FunctionName: 'pca:live' }))).Payload), 'provisioned-concurrency');

    await assert.rejects(
      server.client.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'pca', ProvisionedConcurrentExecutions: 1 } as never)),
      (err: Error) => err.name === 'InvalidParameterValueException' && /unpublished/.test(err.message),
    );
    await assert.rejects(server.client.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'pca', Qualifier: '9', ProvisionedConcurrentExecutions: 1 })), {
      name: 'ResourceNotFoundException',
    });
    await assert.rejects(server.client.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'pca', Qualifier: 'live', ProvisionedConcurrentExecutions: 0 })), {
      name: 'ValidationException',
    });
    await server.client.send(new PutFunctionConcurrencyCommand({ FunctionName: 'pca', ReservedConcurrentExecutions: 2 }));
    await assert.rejects(
      server.client.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'pca', Qualifier: 'live', ProvisionedConcurrentExecutions: 3 })),
      (err: Error) => err.name === 'InvalidParameterValueException' && /reservedConcurrentExecution/.test(err.message),
    );
  } finally {
    await server.stop();
  }
});
