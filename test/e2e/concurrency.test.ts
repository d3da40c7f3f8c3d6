/**
 * Concurrency: reserved concurrency and the account limit, enforced exactly under
 * concurrent load with Lambda's 429 and its Reason; their settings and bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PutFunctionConcurrencyCommand,
  GetFunctionConcurrencyCommand,
  DeleteFunctionConcurrencyCommand,
  GetAccountSettingsCommand,
  GetFunctionCommand,
  InvokeCommand,
} from '@aws-sdk/client-lambda';
import { TestServer } from '../helpers/nimbus.ts';

const slow = 'export const handler = async () => { await new Promise((r) => setTimeout(r, 1500)); return "done"; };';

/** Fires `n` invokes at once; returns the outcomes. */
async function burst(server: TestServer, functionName: string, n: number): Promise<Array<{ ok: boolean; reason?: string; status?: number; name?: string }>> {
  return Promise.all(
    Array.from({ length: n }, () =>
      server.client.send(new InvokeCommand({ FunctionName: functionName })).then(
        () => ({ ok: true }),
        (err: Error & { Reason?: string; $metadata?: { httpStatusCode?: number } }) => ({ ok: false, reason: err.Reason, status: err.$metadata?.httpStatusCode, name: err.name }),
      ),
    ),
  );
}

test('reserved concurrency: exactly that many run at once, the rest get 429 ReservedFunctionConcurrentInvocationLimitExceeded', async () => {
  const server = await TestServer.start();
  try {
    await server.createFunction({ FunctionName: 'limited', Timeout: 10, files: { 'index.mjs': slow } });
    const put = await server.client.send(new PutFunctionConcurrencyCommand({ FunctionName: 'limited', ReservedConcurrentExecutions: 2 }));
    assert.equal(put.ReservedConcurrentExecutions, 2);
    assert.equal((await server.client.send(new GetFunctionConcurrencyCommand({ FunctionName: 'limited' }))).ReservedConcurrentExecutions, 2);
    assert.deepEqual((await server.client.send(new GetFunctionCommand({ FunctionName: 'limited' }))).Concurrency, { ReservedConcurrentExecutions: 2 });
    const settings = await server.client.send(new GetAccountSettingsCommand({}));
    assert.equal(settings.AccountLimit?.UnreservedConcurrentExecutions, 998);

    const outcomes = await burst(server, 'limited', 5);
    assert.equal(outcomes.filter((o) => o.ok).length, 2);
    const throttled = outcomes.filter((o) => !o.ok);
    assert.equal(throttled.length, 3);
    for (const t of throttled) {
      assert.equal(t.name, 'TooManyRequestsException');
      assert.equal(t.status, 429);
      assert.equal(t.reason, 'ReservedFunctionConcurrentInvocationLimitExceeded');
    }

    // Zero blocks every invoke.
    await server.client.send(new PutFunctionConcurrencyCommand({ FunctionName: 'limited', ReservedConcurrentExecutions: 0 }));
    const blocked = await burst(server, 'limited', 1);
    assert.equal(blocked[0]!.reason, 'ReservedFunctionConcurrentInvocationLimitExceeded');

    await server.client.send(new DeleteFunctionConcurrencyCommand({ FunctionName: 'limited' }));
    assert.equal((await server.client.send(new GetFunctionConcurrencyCommand({ FunctionName: 'limited' }))).ReservedConcurrentExecutions, undefined);
    assert.ok((await burst(server, 'limited', 1))[0]!.ok);

    // Bad input.
    await assert.rejects(server.client.send(new PutFunctionConcurrencyCommand({ FunctionName: 'limited', ReservedConcurrentExecutions: 950 })), (err: Error) => {
      assert.equal(err.name, 'InvalidParameterValueException');
      assert.match(err.message, /below its minimum value of \[100\]/);
      return true;
    });
    await assert.rejects(server.client.send(new PutFunctionConcurrencyCommand({ FunctionName: 'limited', ReservedConcurrentExecutions: -1 })), { name: 'ValidationException' });
    await assert.rejects(server.client.send(new PutFunctionConcurrencyCommand({ FunctionName: 'nope', ReservedConcurrentExecutions: 1 })), { name: 'ResourceNotFoundException' });
  } finally {
    await server.stop();
  }
});

test('the account limit (configurable) throttles with ConcurrentInvocationLimitExceeded', async () => {
  const server = await TestServer.start({ env: { NIMBUS_ACCOUNT_CONCURRENCY: '3' } });
  try {
    await server.createFunction({ FunctionName: 'busy', Timeout: 10, files: { 'index.mjs': slow } });
    const settings = await server.client.send(new GetAccountSettingsCommand({}));
    assert.equal(settings.AccountLimit?.ConcurrentExecutions, 3);
    const outcomes = await burst(server, 'busy', 5);
    assert.equal(outcomes.filter((o) => o.ok).length, 3);
    for (const t of outcomes.filter((o) => !o.ok)) assert.equal(t.reason, 'ConcurrentInvocationLimitExceeded');
    const raw = await server.fetch('/2015-03-31/functions/busy/invocations', { method: 'POST', body: '{}' });
    assert.equal(raw.status, 200, 'capacity is back once they finish');
  } finally {
    await server.stop();
  }
});

test("Lambda's scaling rate (configurable, default 1000 new environments per 10 s) throttles a burst of cold starts", async () => {
  const server = await TestServer.start({ env: { NIMBUS_SCALING_PER_10S: '2' } });
  try {
    await server.createFunction({ FunctionName: 'bursty', Timeout: 10, files: { 'index.mjs': slow } });
    const outcomes = await burst(server, 'bursty', 3);
    assert.equal(outcomes.filter((o) => o.ok).length, 2);
    const throttled = outcomes.find((o) => !o.ok)!;
    assert.equal(throttled.name, 'TooManyRequestsException');
    assert.equal(throttled.status, 429);
    // Warm environments are not limited by the scaling rate.
    const again = await burst(server, 'bursty', 2);
    assert.ok(again.every((o) => o.ok));
  } finally {
    await server.stop();
  }
});
