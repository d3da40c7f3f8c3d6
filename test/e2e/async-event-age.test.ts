/**
 * Event age: an async event that cannot run (its function is throttled) is retried with
 * back-off until MaximumEventAgeInSeconds, then goes to the failure destination with
 * condition EventAgeExceeded. Lambda's minimum age is 60 s, so this test takes a minute.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvokeCommand, PutFunctionEventInvokeConfigCommand } from '@aws-sdk/client-lambda';
import { TestServer } from '../helpers/nimbus.ts';

test('a throttled event ages out after MaximumEventAgeInSeconds with condition EventAgeExceeded', { timeout: 120_000 }, async () => {
  const server = await TestServer.start({ env: { NIMBUS_ACCOUNT_CONCURRENCY: '1', NIMBUS_ASYNC_THROTTLE_BASE_MS: '200' } });
  try {
    await server.createFunction({
      FunctionName: 'hog',
      Timeout: 120,
      files: { 'index.mjs': 'export const handler = async (e) => { if (e.hold) await new Promise((r) => setTimeout(r, 110_000)); return "ran"; };' },
    });
    await server.client.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: 'hog',
        MaximumEventAgeInSeconds: 60,
        DestinationConfig: { OnFailure: { Destination: 'arn:aws:sqs:us-east-1:000000000000:aged' } },
      }),
    );
    // Hold the account's only concurrency slot.
    const holder = server.client.send(new InvokeCommand({ FunctionName: 'hog', Payload: Buffer.from('{"hold":true}') })).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1000));
    const started = Date.now();
    const out = await server.client.send(new InvokeCommand({ FunctionName: 'hog', InvocationType: 'Event', Payload: Buffer.from('{"n":1}') }));
    assert.equal(out.StatusCode, 202);
    let body: string | undefined;
    while (!body && Date.now() - started < 90_000) {
      await new Promise((r) => setTimeout(r, 1000));
      const res = await server.fetch('/nimbus/v1/queues/aged/messages');
      body = ((await res.json()) as { Messages: Array<{ body: string }> }).Messages[0]?.body;
    }
    assert.ok(body, 'the failure record arrived');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 59_000, `aged out after ${elapsed} ms`);
    const record = JSON.parse(body) as { requestContext: { condition: string; requestId: string; approximateInvokeCount: number }; requestPayload: unknown };
    assert.equal(record.requestContext.condition, 'EventAgeExceeded');
    assert.equal(record.requestContext.requestId, out.$metadata.requestId);
    assert.equal(record.requestContext.approximateInvokeCount, 0);
    assert.deepEqual(record.requestPayload, { n: 1 });
    void holder;
  } finally {
    await server.stop();
  }
});
