/**
 * Asynchronous invocation end to end: 202 on accept, Lambda's retry policy (counted),
 * destinations with the exact invocation record, dead-letter queues, event invoke
 * configs and their bad input, and no event lost when the server is killed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  InvokeCommand,
  PutFunctionEventInvokeConfigCommand,
  UpdateFunctionEventInvokeConfigCommand,
  GetFunctionEventInvokeConfigCommand,
  DeleteFunctionEventInvokeConfigCommand,
  ListFunctionEventInvokeConfigsCommand,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { TestServer } from '../helpers/nimbus.ts';

const fast = { NIMBUS_ASYNC_RETRY_DELAYS_MS: '100,200', NIMBUS_ASYNC_THROTTLE_BASE_MS: '50' };
const queueArn = (name: string) => `arn:aws:sqs:us-east-1:000000000000:${name}`;
const fnArn = (name: string) => `arn:aws:lambda:us-east-1:000000000000:function:${name}`;

interface Message {
  messageId: string;
  body: string;
  messageAttributes: Record<string, { DataType: string; StringValue: string }>;
}

async function messages(server: TestServer, queue: string): Promise<Message[]> {
  const res = await server.fetch(`/nimbus/v1/queues/${queue}/messages`);
  return ((await res.json()) as { Messages: Message[] }).Messages;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const eventAsync = (server: TestServer, FunctionName: string, payload: unknown) =>
  server.client.send(new InvokeCommand({ FunctionName, InvocationType: 'Event', Payload: Buffer.from(JSON.stringify(payload)) }));

test('success: 202, then the on-success record in the queue destination, exactly shaped', async () => {
  const server = await TestServer.start({ env: fast });
  try {
    await server.createFunction({ FunctionName: 'ok', files: { 'index.mjs': 'export const handler = async (e) => ({ doubled: e.n * 2 });' } });
    const config = await server.client.send(
      new PutFunctionEventInvokeConfigCommand({ FunctionName: 'ok', DestinationConfig: { OnSuccess: { Destination: queueArn('done') } } }),
    );
    assert.equal(config.FunctionArn, `${fnArn('ok')}:$LATEST`);
    assert.equal(config.DestinationConfig?.OnSuccess?.Destination, queueArn('done'));
    const out = await eventAsync(server, 'ok', { n: 21 });
    assert.equal(out.StatusCode, 202);
    const requestId = out.$metadata.requestId!;
    assert.match(requestId, /^[0-9a-f-]{36}$/);
    const [message] = await waitFor('the success record', async () => {
      const m = await messages(server, 'done');
      return m.length > 0 ? m : undefined;
    });
    const record = JSON.parse(message!.body) as Record<string, unknown>;
    assert.match(record.timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(record, {
      version: '1.0',
      timestamp: record.timestamp,
      requestContext: { requestId, functionArn: `${fnArn('ok')}:$LATEST`, condition: 'Success', approximateInvokeCount: 1 },
      requestPayload: { n: 21 },
      responseContext: { statusCode: 200, executedVersion: '$LATEST' },
      responsePayload: { doubled: 42 },
    });
  } finally {
    await server.stop();
  }
});

test('function errors: retried MaximumRetryAttempts times, then the failure record, the DLQ, and a Lambda destination', async () => {
  const server = await TestServer.start({ env: fast });
  try {
    await server.createFunction({
      FunctionName: 'flaky',
      files: { 'index.mjs': 'export const handler = async (e) => { console.log("attempt for", e.id); throw new Error("always fails " + e.id); };' },
      DeadLetterConfig: { TargetArn: queueArn('dead') },
    });
    await server.createFunction({ FunctionName: 'listener', files: { 'index.mjs': 'export const handler = async (e) => { console.log("RECORD " + JSON.stringify(e)); return 1; };' } });
    await server.client.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: 'flaky',
        MaximumRetryAttempts: 2,
        DestinationConfig: { OnFailure: { Destination: queueArn('failed') }, OnSuccess: { Destination: queueArn('never') } },
      }),
    );
    const out = await eventAsync(server, 'flaky', { id: 'A' });
    const requestId = out.$metadata.requestId!;
    const [failure] = await waitFor('the failure record', async () => {
      const m = await messages(server, 'failed');
      return m.length > 0 ? m : undefined;
    });
    const record = JSON.parse(failure!.body) as { requestContext: Record<string, unknown>; responseContext: Record<string, unknown>; responsePayload: Record<string, unknown>; requestPayload: unknown };
    assert.deepEqual(record.requestContext, { requestId, functionArn: `${fnArn('flaky')}:$LATEST`, condition: 'RetriesExhausted', approximateInvokeCount: 3 });
    assert.deepEqual(record.requestPayload, { id: 'A' });
    assert.deepEqual(record.responseContext, { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' });
    assert.equal(record.responsePayload.errorType, 'Error');
    assert.equal(record.responsePayload.errorMessage, 'always fails A');
    // Three attempts, all with the same request id.
    const starts = (await server.logs('flaky')).filter((l) => l === `START RequestId: ${requestId} Version: $LATEST`);
    assert.equal(starts.length, 3);
    // The dead-letter queue got the original event with Lambda's attributes.
    const [dead] = await waitFor('the dead letter', async () => {
      const m = await messages(server, 'dead');
      return m.length > 0 ? m : undefined;
    });
    assert.equal(dead!.body, '{"id":"A"}');
    assert.equal(dead!.messageAttributes.RequestID!.StringValue, requestId);
    assert.equal(dead!.messageAttributes.ErrorCode!.DataType, 'Number');
    assert.match(dead!.messageAttributes.ErrorMessage!.StringValue, /always fails A/);
    assert.deepEqual(await messages(server, 'never'), []);

    // No retries at all, and a Lambda function as the failure destination.
    await server.client.send(
      new UpdateFunctionEventInvokeConfigCommand({ FunctionName: 'flaky', MaximumRetryAttempts: 0, DestinationConfig: { OnFailure: { Destination: fnArn('listener') } } }),
    );
    const second = await eventAsync(server, 'flaky', { id: 'B' });
    const line = await waitFor('the record delivered to the listener function', async () =>
      (await server.logs('listener')).find((l) => l.includes('RECORD') && l.includes(second.$metadata.requestId!)),
    );
    const delivered = JSON.parse(line.slice(line.indexOf('RECORD ') + 7)) as { requestContext: { approximateInvokeCount: number; condition: string } };
    assert.equal(delivered.requestContext.approximateInvokeCount, 1);
    assert.equal(delivered.requestContext.condition, 'RetriesExhausted');

    // `nimbus queue replay` sends the failed event again.
    const replay = await server.fetch('/nimbus/v1/queues/failed/replay', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    const replayed = ((await replay.json()) as { Replayed: Array<{ RequestId: string }> }).Replayed;
    assert.equal(replayed.length, 1);
    await waitFor('the replayed attempt', async () => ((await server.logs('flaky')).some((l) => l.includes(replayed[0]!.RequestId)) ? true : undefined));
  } finally {
    await server.stop();
  }
});

test('event invoke configs: shapes, list, delete, and out-of-range values; oversized async payloads', async () => {
  const server = await TestServer.start({ env: fast });
  try {
    await server.createFunction({ FunctionName: 'cfg', files: { 'index.mjs': 'export const handler = async () => 1;' }, Publish: true });
    const put = await server.client.send(new PutFunctionEventInvokeConfigCommand({ FunctionName: 'cfg', Qualifier: '1', MaximumRetryAttempts: 1, MaximumEventAgeInSeconds: 3600 }));
    assert.equal(put.FunctionArn, `${fnArn('cfg')}:1`);
    assert.equal(put.MaximumRetryAttempts, 1);
    assert.equal(put.MaximumEventAgeInSeconds, 3600);
    assert.ok(put.LastModified instanceof Date);
    const got = await server.client.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: 'cfg', Qualifier: '1' }));
    assert.equal(got.MaximumEventAgeInSeconds, 3600);
    const listed = await server.client.send(new ListFunctionEventInvokeConfigsCommand({ FunctionName: 'cfg' }));
    assert.equal(listed.FunctionEventInvokeConfigs!.length, 1);
    const reject = (input: Record<string, unknown>, name: string) =>
      assert.rejects(server.client.send(new PutFunctionEventInvokeConfigCommand({ FunctionName: 'cfg', ...input } as never)), { name });
    await reject({ MaximumRetryAttempts: 3 }, 'ValidationException');
    await reject({ MaximumRetryAttempts: -1 }, 'ValidationException');
    await reject({ MaximumEventAgeInSeconds: 59 }, 'ValidationException');
    await reject({ MaximumEventAgeInSeconds: 21601 }, 'ValidationException');
    await reject({ DestinationConfig: { OnFailure: { Destination: 'arn:aws:sns:us-east-1:000000000000:topic' } } }, 'InvalidParameterValueException');
    await reject({ DestinationConfig: { OnFailure: { Destination: 'not-an-arn' } } }, 'InvalidParameterValueException');
    await reject({ Qualifier: '7' }, 'ResourceNotFoundException');
    await assert.rejects(server.client.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: 'cfg' })), { name: 'ResourceNotFoundException' });
    await server.client.send(new DeleteFunctionEventInvokeConfigCommand({ FunctionName: 'cfg', Qualifier: '1' }));
    await assert.rejects(server.client.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: 'cfg', Qualifier: '1' })), { name: 'ResourceNotFoundException' });
    await assert.rejects(
      server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'cfg', DeadLetterConfig: { TargetArn: 'arn:aws:s3:::bucket' } })),
      { name: 'InvalidParameterValueException' },
    );

    const big = await server.fetch('/2015-03-31/functions/cfg/invocations', {
      method: 'POST',
      headers: { 'x-amz-invocation-type': 'Event' },
      body: JSON.stringify({ pad: 'x'.repeat(1024 * 1024) }),
    });
    assert.equal(big.status, 413);
    assert.equal(big.headers.get('x-amzn-errortype'), 'RequestTooLargeException');
    const missing = await server.fetch('/2015-03-31/functions/nope/invocations', { method: 'POST', headers: { 'x-amz-invocation-type': 'Event' }, body: '{}' });
    assert.equal(missing.status, 404);
    assert.equal((await eventAsync(server, 'cfg', {})).StatusCode, 202, 'still serving');
  } finally {
    await server.stop();
  }
});

test('SIGKILL with events queued: every event is delivered once the server is back', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-async-kill-'));
  try {
    const first = await TestServer.start({ dataDir, env: fast });
    await first.createFunction({ FunctionName: 'slowpoke', Timeout: 10, files: { 'index.mjs': 'export const handler = async (e) => { await new Promise((r) => setTimeout(r, 1500)); return e; };' } });
    await first.client.send(new PutFunctionEventInvokeConfigCommand({ FunctionName: 'slowpoke', DestinationConfig: { OnSuccess: { Destination: queueArn('delivered') } } }));
    const ids: number[] = [];
    for (let i = 0; i < 12; i++) {
      await eventAsync(first, 'slowpoke', { i });
      ids.push(i);
    }
    await first.kill();
    const second = await TestServer.start({ dataDir, env: fast });
    try {
      const delivered = await waitFor(
        'all 12 events',
        async () => {
          const got = new Set((await messages(second, 'delivered')).map((m) => (JSON.parse(m.body) as { requestPayload: { i: number } }).requestPayload.i));
          return got.size === 12 ? got : undefined;
        },
        60_000,
      );
      assert.deepEqual([...delivered].sort((a, b) => a - b), ids);
    } finally {
      await second.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
