/**
 * ALB targets end to end: `PUT /nimbus/v1/alb-targets/<name>`, then real HTTP by host
 * name and by path prefix; the exact target event with and without multi-value headers,
 * the response mapping (statusDescription, multiValueHeaders, base64), and an ALB's
 * error pages.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TestServer } from '../helpers/nimbus.ts';
import { send, values } from '../triggers/http-client.ts';

let server: TestServer;
let port: number;

const handler = `
export const handler = async (event) => {
  const h = event.headers ?? Object.fromEntries(Object.entries(event.multiValueHeaders).map(([k, v]) => [k, v.at(-1)]));
  const mode = h['x-mode'];
  if (mode === 'single') return { statusCode: 201, statusDescription: '201 Created', headers: { 'Set-Cookie': 'a=1', 'Content-Type': 'text/plain' }, body: 'made' };
  if (mode === 'multi') return { statusCode: 200, statusDescription: '200 OK', multiValueHeaders: { 'Set-Cookie': ['a=1', 'b=2'], 'Content-Type': ['text/plain'] }, body: 'both' };
  if (mode === 'binary') return { statusCode: 200, headers: { 'Content-Type': 'application/octet-stream' }, body: event.body, isBase64Encoded: true };
  if (mode === 'no-body') return { statusCode: 204, statusDescription: '204 No Content' };
  if (mode === 'bad') return { statusDescription: 'nope' };
  if (mode === 'bad-description') return { statusCode: 200, statusDescription: 'OK\\r\\nX: y' };
  if (mode === 'throw') throw new Error('boom');
  if (mode === 'huge') return { statusCode: 200, body: 'x'.repeat(1024 * 1024 + 1) };
  return { statusCode: 200, statusDescription: '200 OK', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(event) };
};`;

before(async () => {
  server = await TestServer.start();
  port = Number(new URL(server.url).port);
  await server.createFunction({ FunctionName: 'alb-echo', files: { 'index.mjs': handler } });
});
after(async () => {
  await server.stop();
});

async function putTarget(name: string, body: unknown): Promise<Record<string, any>> {
  const res = await server.fetch(`/nimbus/v1/alb-targets/${name}`, { method: 'PUT', body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, any>;
  assert.equal(res.status, 200, JSON.stringify(json));
  return json;
}

test('target event without multi-value headers: last values, raw query strings, base64 for binary bodies', async () => {
  const target = await putTarget('web', { FunctionName: 'alb-echo' });
  assert.match(target.TargetGroupArn, /^arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup\/web\/[0-9a-f]{16}$/);
  assert.equal(target.Endpoint, `http://web.elb.us-east-1.localhost:${port}/`);
  const host = `web.elb.us-east-1.localhost:${port}`;
  const res = await send({ port, host, method: 'POST', path: '/path/x%20y?myKey=val1&myKey=val2&enc=a%2Fb', headers: [['Cookie', 'name1=value1'], ['Cookie', 'name2=value2'], ['Content-Type', 'application/json'], ['User-Agent', 'alb-test']], body: '{"a":1}' });
  assert.equal(res.status, 200);
  assert.equal(res.statusMessage, 'OK');
  const event = JSON.parse(res.body.toString()) as Record<string, any>;
  assert.deepEqual(event, {
    requestContext: { elb: { targetGroupArn: target.TargetGroupArn } },
    httpMethod: 'POST',
    path: '/path/x%20y',
    queryStringParameters: { myKey: 'val2', enc: 'a%2Fb' },
    headers: {
      host, cookie: 'name2=value2', 'content-type': 'application/json', 'user-agent': 'alb-test', 'content-length': '7',
      'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-port': String(port), 'x-amzn-trace-id': event.headers['x-amzn-trace-id'],
    },
    body: '{"a":1}',
    isBase64Encoded: false,
  });
  const bytes = randomBytes(2000);
  const bin = await send({ port, host, method: 'PUT', path: '/b', headers: [['X-Mode', 'binary'], ['Content-Type', 'application/octet-stream']], body: bytes });
  assert.equal(bin.status, 200);
  assert.ok(bin.body.equals(bytes), 'base64 both ways');

  const single = await send({ port, host, path: '/', headers: [['X-Mode', 'single']] });
  assert.equal(single.status, 201);
  assert.equal(single.statusMessage, 'Created');
  assert.deepEqual(values(single, 'set-cookie'), ['a=1']);
  assert.equal(single.body.toString(), 'made');

  const empty = await fetch(`${server.url}/nimbus/albs/web/?x=1`, { headers: { 'x-mode': 'no-body' } });
  assert.equal(empty.status, 204);
});

test('target event with multi-value headers, and multiValueHeaders in the response', async () => {
  await putTarget('multi', { FunctionName: 'alb-echo', MultiValueHeaders: true });
  const host = `multi.elb.us-east-1.localhost:${port}`;
  const res = await send({ port, host, path: '/?myKey=val1&myKey=val2', headers: [['Cookie', 'name1=value1'], ['Cookie', 'name2=value2']] });
  const event = JSON.parse(res.body.toString()) as Record<string, any>;
  assert.equal(event.headers, undefined);
  assert.equal(event.queryStringParameters, undefined);
  assert.deepEqual(event.multiValueQueryStringParameters, { myKey: ['val1', 'val2'] });
  assert.deepEqual(event.multiValueHeaders.cookie, ['name1=value1', 'name2=value2']);
  assert.deepEqual(event.multiValueHeaders.host, [host]);
  assert.equal(event.body, '');
  assert.equal(event.isBase64Encoded, false);

  const multi = await send({ port, host, path: '/', headers: [['X-Mode', 'multi']] });
  assert.equal(multi.status, 200);
  assert.deepEqual(values(multi, 'set-cookie'), ['a=1', 'b=2']);
  assert.deepEqual(values(multi, 'content-type'), ['text/plain']);
});

test("an ALB's error pages: 502 for failed functions and malformed answers, 503 without a target, 413 over 1 MB", async () => {
  await putTarget('errors', { FunctionName: 'alb-echo' });
  const host = `errors.elb.us-east-1.localhost:${port}`;
  for (const mode of ['bad', 'bad-description', 'throw', 'huge']) {
    const res = await send({ port, host, path: '/', headers: [['X-Mode', mode]] });
    assert.equal(res.status, 502, mode);
    assert.deepEqual(values(res, 'content-type'), ['text/html']);
    assert.match(res.body.toString(), /<title>502 Bad Gateway<\/title>/);
    assert.deepEqual(values(res, 'x'), [], 'no header injection');
  }
  const big = await send({ port, host, method: 'POST', path: '/', headers: [['Content-Type', 'text/plain']], body: Buffer.alloc(1024 * 1024 + 1, 'a') });
  assert.equal(big.status, 413);
  const none = await send({ port, host: `nobody.elb.us-east-1.localhost:${port}`, path: '/' });
  assert.equal(none.status, 503);
  const bad = await server.fetch('/nimbus/v1/alb-targets/Bad_Name', { method: 'PUT', body: '{"FunctionName":"alb-echo"}' });
  assert.equal(bad.status, 400);
  const missing = await server.fetch('/nimbus/v1/alb-targets/ghost', { method: 'PUT', body: '{"FunctionName":"nope"}' });
  assert.equal(missing.status, 404);
  assert.equal((await send({ port, host, path: '/' })).status, 200, 'still serving');
});
