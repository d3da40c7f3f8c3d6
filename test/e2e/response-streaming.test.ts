/**
 * Response streaming: InvokeWithResponseStream read with the AWS SDK, chunks arriving
 * while the handler is still running (timed by arrival), a stream broken mid-way
 * reported in InvokeComplete, a buffered Invoke of a streaming function, and a
 * non-streaming function through the streaming API.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { InvokeWithResponseStreamCommand, InvokeCommand } from '@aws-sdk/client-lambda';
import { TestServer, payloadJson } from '../helpers/nimbus.ts';

let server: TestServer;
before(async () => {
  server = await TestServer.start();
  await server.createFunction({
    FunctionName: 'streamer',
    Timeout: 10,
    files: {
      'index.mjs': `
        const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
        export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
          responseStream.setContentType('text/plain');
          responseStream.write('first;');
          await sleep(600);
          if (event.fail) throw new Error('broke mid-stream');
          responseStream.write('second;');
          await sleep(300);
          responseStream.end('third');
        });`,
    },
  });
  await server.createFunction({ FunctionName: 'plain', files: { 'index.mjs': 'export const handler = async () => ({ whole: true });' } });
});
after(async () => {
  await server.stop();
});

test('InvokeWithResponseStream: chunks arrive as the handler writes them, then InvokeComplete', async () => {
  const started = Date.now();
  const out = await server.client.send(new InvokeWithResponseStreamCommand({ FunctionName: 'streamer', Payload: Buffer.from('{}') }));
  assert.equal(out.StatusCode, 200);
  assert.equal(out.ExecutedVersion, '$LATEST');
  const arrivals: Array<{ text: string; atMs: number }> = [];
  let complete: { ErrorCode?: string } | undefined;
  for await (const event of out.EventStream!) {
    if (event.PayloadChunk?.Payload) arrivals.push({ text: Buffer.from(event.PayloadChunk.Payload).toString(), atMs: Date.now() - started });
    if (event.InvokeComplete) complete = event.InvokeComplete;
  }
  assert.equal(arrivals.map((a) => a.text).join(''), 'first;second;third');
  assert.ok(arrivals.length >= 2, `${arrivals.length} chunks`);
  const total = Date.now() - started;
  // The first chunk came long before the handler finished (it sleeps 900 ms after writing it).
  assert.ok(arrivals[0]!.atMs < total - 500, `first chunk at ${arrivals[0]!.atMs} ms of ${total} ms`);
  assert.ok(complete, 'an InvokeComplete event ends the stream');
  assert.equal(complete!.ErrorCode, undefined);
});

test('a stream broken mid-way reports the error in InvokeComplete', async () => {
  const out = await server.client.send(new InvokeWithResponseStreamCommand({ FunctionName: 'streamer', Payload: Buffer.from('{"fail":true}') }));
  let text = '';
  let complete: { ErrorCode?: string; ErrorDetails?: string } | undefined;
  for await (const event of out.EventStream!) {
    if (event.PayloadChunk?.Payload) text += Buffer.from(event.PayloadChunk.Payload).toString();
    if (event.InvokeComplete) complete = event.InvokeComplete;
  }
  assert.equal(text, 'first;');
  assert.equal(complete?.ErrorCode, 'Error');
  assert.match(complete?.ErrorDetails ?? '', /broke mid-stream/);
});

test('a buffered Invoke of a streaming function gets the whole response; a plain function streams as one chunk', async () => {
  const whole = await server.client.send(new InvokeCommand({ FunctionName: 'streamer' }));
  assert.equal(Buffer.from(whole.Payload!).toString(), 'first;second;third');
  const failed = await server.client.send(new InvokeCommand({ FunctionName: 'streamer', Payload: Buffer.from('{"fail":true}') }));
  assert.equal(failed.FunctionError, 'Unhandled');
  assert.equal((payloadJson(failed.Payload) as { errorMessage: string }).errorMessage, 'broke mid-stream');

  const out = await server.client.send(new InvokeWithResponseStreamCommand({ FunctionName: 'plain' }));
  const chunks: string[] = [];
  for await (const event of out.EventStream!) if (event.PayloadChunk?.Payload) chunks.push(Buffer.from(event.PayloadChunk.Payload).toString());
  assert.deepEqual(chunks, ['{"whole":true}']);
  await assert.rejects(server.client.send(new InvokeWithResponseStreamCommand({ FunctionName: 'missing' })), { name: 'ResourceNotFoundException' });
});

test('a RESPONSE_STREAM function URL streams HttpResponseStream output: prelude status, headers, cookies, then chunks as written', async () => {
  const { CreateFunctionUrlConfigCommand } = await import('@aws-sdk/client-lambda');
  await server.createFunction({
    FunctionName: 'http-streamer',
    Timeout: 10,
    files: {
      'index.mjs': `
        const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
        export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
          const http = awslambda.HttpResponseStream.from(responseStream, {
            statusCode: 201, headers: { 'content-type': 'text/plain', 'x-stream': 'yes' }, cookies: ['a=1', 'b=2'],
          });
          http.write('part one|');
          await sleep(700);
          http.end('part two');
        });`,
    },
  });
  const url = await server.client.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'http-streamer', AuthType: 'NONE', InvokeMode: 'RESPONSE_STREAM' }));
  const { hostname, port } = new URL(url.FunctionUrl!);
  const http = await import('node:http');
  const started = Date.now();
  const result = await new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; chunks: Array<{ text: string; atMs: number }> }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', method: 'GET', headers: { host: `${hostname}:${port}` } }, (res) => {
      const chunks: Array<{ text: string; atMs: number }> = [];
      res.on('data', (c: Buffer) => chunks.push({ text: c.toString(), atMs: Date.now() - started }));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, chunks }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  const total = Date.now() - started;
  assert.equal(result.status, 201);
  assert.equal(result.headers['content-type'], 'text/plain');
  assert.equal(result.headers['x-stream'], 'yes');
  assert.deepEqual(result.headers['set-cookie'], ['a=1', 'b=2']);
  assert.equal(result.chunks.map((c) => c.text).join(''), 'part one|part two');
  assert.ok(result.chunks[0]!.atMs < total - 400, `first chunk at ${result.chunks[0]!.atMs} ms of ${total} ms`);
});
