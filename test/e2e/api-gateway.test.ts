/**
 * API Gateway emulation end to end: REST APIs (payload 1.0, stages, 403 Missing
 * Authentication Token, strict proxy responses, binary media types) and HTTP APIs
 * (payload 2.0 with routeKey and pathParameters, 1.0 routes, $default, 404 Not Found,
 * inferred responses), configured with PUT /nimbus/v1/apis/<id> and served by host name
 * and by path prefix, with the exact events the handler received.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { TestServer } from '../helpers/nimbus.ts';
import { send, values } from '../triggers/http-client.ts';

const run = promisify(execFile);
let server: TestServer;
let port: number;

const handler = `
export const handler = async (event) => {
  const mode = event.headers?.['x-mode'] ?? event.headers?.['X-Mode'];
  if (mode === 'string') return 'Hello from Lambda!';
  if (mode === 'extra-key') return { statusCode: 200, body: 'x', cookies: ['a=1'] };
  if (mode === 'no-status') return { body: 'x' };
  if (mode === 'body-object') return { statusCode: 200, body: {} };
  if (mode === 'throw') throw new Error('boom');
  if (mode === 'multi') return { statusCode: 202, headers: { 'X-One': 'a', 'X-Both': 'single' }, multiValueHeaders: { 'X-Both': ['m1', 'm2'], 'Set-Cookie': ['a=1', 'b=2'] }, body: 'multi' };
  if (mode === 'binary') return { statusCode: 200, headers: { 'Content-Type': 'image/png' }, body: event.body, isBase64Encoded: true };
  return { statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(event) };
};`;

before(async () => {
  server = await TestServer.start();
  port = Number(new URL(server.url).port);
  await server.createFunction({ FunctionName: 'apigw-echo', files: { 'index.mjs': handler } });
  await server.createFunction({ FunctionName: 'apigw-other', files: { 'index.mjs': handler } });
});
after(async () => {
  await server.stop();
});

async function putApi(apiId: string, body: unknown): Promise<Record<string, any>> {
  const res = await server.fetch(`/nimbus/v1/apis/${apiId}`, { method: 'PUT', body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, any>;
  assert.equal(res.status, 200, JSON.stringify(json));
  return json;
}

test('REST API: the payload 1.0 event exactly, stages, path templates, multi-value headers and query strings', async () => {
  const api = await putApi('restapi001', {
    ProtocolType: 'REST',
    StageName: 'dev',
    StageVariables: { tier: 'local' },
    Routes: [
      { RouteKey: 'GET /items/{id}', FunctionName: 'apigw-echo' },
      { RouteKey: 'ANY /{proxy+}', FunctionName: 'apigw-other' },
    ],
  });
  assert.equal(api.Endpoint, `http://restapi001.execute-api.us-east-1.localhost:${port}/dev/`);
  assert.equal(api.PathEndpoint, `${server.url}/nimbus/apis/restapi001/dev/`);
  const host = `restapi001.execute-api.us-east-1.localhost:${port}`;
  const res = await send({
    port, host, path: '/dev/items/a%2Fb?q=1&q=2&single=x%20y',
    headers: [['X-Multi', 'one'], ['X-Multi', 'two'], ['User-Agent', 'rest-test']],
  });
  assert.equal(res.status, 200);
  assert.match(values(res, 'x-amzn-requestid')[0]!, /^[0-9a-f-]{36}$/);
  const event = JSON.parse(res.body.toString()) as Record<string, any>;
  const ctx = event.requestContext;
  assert.deepEqual(event, {
    resource: '/items/{id}',
    path: '/items/a/b',
    httpMethod: 'GET',
    headers: {
      Host: host, 'X-Multi': 'two', 'User-Agent': 'rest-test',
      'X-Forwarded-For': '127.0.0.1', 'X-Forwarded-Proto': 'http', 'X-Forwarded-Port': String(port), 'X-Amzn-Trace-Id': event.headers['X-Amzn-Trace-Id'],
    },
    multiValueHeaders: {
      Host: [host], 'X-Multi': ['one', 'two'], 'User-Agent': ['rest-test'],
      'X-Forwarded-For': ['127.0.0.1'], 'X-Forwarded-Proto': ['http'], 'X-Forwarded-Port': [String(port)], 'X-Amzn-Trace-Id': [event.headers['X-Amzn-Trace-Id']],
    },
    queryStringParameters: { q: '2', single: 'x y' },
    multiValueQueryStringParameters: { q: ['1', '2'], single: ['x y'] },
    pathParameters: { id: 'a/b' },
    stageVariables: { tier: 'local' },
    requestContext: {
      accountId: '000000000000',
      apiId: 'restapi001',
      resourceId: ctx.resourceId,
      stage: 'dev',
      requestId: ctx.requestId,
      extendedRequestId: ctx.extendedRequestId,
      resourcePath: '/items/{id}',
      httpMethod: 'GET',
      path: '/dev/items/a/b',
      protocol: 'HTTP/1.1',
      requestTime: ctx.requestTime,
      requestTimeEpoch: ctx.requestTimeEpoch,
      domainName: 'restapi001.execute-api.us-east-1.localhost',
      domainPrefix: 'restapi001',
      identity: {
        accessKey: null, accountId: null, apiKey: null, caller: null, cognitoAuthenticationProvider: null, cognitoAuthenticationType: null,
        cognitoIdentityId: null, cognitoIdentityPoolId: null, sourceIp: '127.0.0.1', user: null, userAgent: 'rest-test', userArn: null,
      },
    },
    body: null,
    isBase64Encoded: false,
  });
  assert.match(ctx.resourceId, /^[0-9a-f]{6}$/);

  // The greedy route takes the rest; the POST body arrives as text.
  const proxied = await send({ port, host, method: 'POST', path: '/dev/a/b/c', headers: [['Content-Type', 'application/json']], body: '{"x":1}' });
  const p = JSON.parse(proxied.body.toString()) as Record<string, any>;
  assert.equal(p.resource, '/{proxy+}');
  assert.deepEqual(p.pathParameters, { proxy: 'a/b/c' });
  assert.equal(p.body, '{"x":1}');
  assert.equal(p.isBase64Encoded, false);
  assert.equal(p.queryStringParameters, null);
  assert.equal(p.multiValueQueryStringParameters, null);

  // Unknown routes and stages, as API Gateway answers them.
  const noStage = await send({ port, host, path: '/prod/items/1' });
  assert.equal(noStage.status, 403);
  assert.deepEqual(JSON.parse(noStage.body.toString()), { message: 'Forbidden' });
  const root = await send({ port, host, path: '/dev' });
  assert.equal(root.status, 403);
  assert.deepEqual(JSON.parse(root.body.toString()), { message: 'Missing Authentication Token' });
  assert.deepEqual(values(root, 'x-amzn-errortype'), ['MissingAuthenticationTokenException']);
});

test('REST API responses: strict proxy shape (502 otherwise), headers merged with multiValueHeaders, binary media types', async () => {
  await putApi('restapi002', {
    ProtocolType: 'REST',
    StageName: 'Prod',
    BinaryMediaTypes: ['image~1png'],
    Routes: [{ RouteKey: 'ANY /{proxy+}', FunctionName: 'apigw-echo' }],
  });
  const host = `restapi002.execute-api.us-east-1.localhost:${port}`;
  for (const mode of ['string', 'extra-key', 'no-status', 'body-object', 'throw']) {
    const res = await send({ port, host, path: '/Prod/x', headers: [['X-Mode', mode]] });
    assert.equal(res.status, 502, mode);
    assert.deepEqual(JSON.parse(res.body.toString()), { message: 'Internal server error' }, mode);
  }
  const multi = await send({ port, host, path: '/Prod/x', headers: [['X-Mode', 'multi']] });
  assert.equal(multi.status, 202);
  assert.deepEqual(values(multi, 'x-one'), ['a']);
  assert.deepEqual(values(multi, 'x-both'), ['m1', 'm2'], 'on a name in both, only the multi-value values survive');
  assert.deepEqual(values(multi, 'set-cookie'), ['a=1', 'b=2']);
  assert.deepEqual(values(multi, 'content-type'), ['application/json'], 'REST APIs default to application/json');

  const png = randomBytes(1000);
  const bin = await send({ port, host, method: 'POST', path: '/Prod/img', headers: [['X-Mode', 'binary'], ['Content-Type', 'image/png'], ['Accept', 'image/png']], body: png });
  assert.equal(bin.status, 200);
  assert.ok(bin.body.equals(png), 'image/png is a binary media type: base64 in the event, bytes on the wire');
});

test('HTTP API: payload 2.0 with routeKey and pathParameters, 1.0 routes, $default, inferred responses, 404 and 500', async () => {
  const api = await putApi('httpapi001', {
    ProtocolType: 'HTTP',
    Routes: [
      { RouteKey: 'GET /items/{id}', FunctionName: 'apigw-echo' },
      { RouteKey: 'POST /legacy', FunctionName: 'apigw-echo', PayloadFormatVersion: '1.0' },
      { RouteKey: 'ANY /files/{path+}', FunctionName: 'apigw-echo' },
    ],
  });
  assert.equal(api.StageName, '$default');
  assert.equal(api.Endpoint, `http://httpapi001.execute-api.us-east-1.localhost:${port}/`);
  const host = `httpapi001.execute-api.us-east-1.localhost:${port}`;
  const { stdout } = await run('curl', ['-s', `http://${host}/items/42?a=1&a=2`, '-H', 'Cookie: c1=v1; c2=v2', '-H', 'User-Agent: http-test']);
  const event = JSON.parse(stdout) as Record<string, any>;
  const ctx = event.requestContext;
  assert.match(ctx.requestId, /^[A-Za-z0-9+/]{15}=$/);
  assert.deepEqual(event, {
    version: '2.0',
    routeKey: 'GET /items/{id}',
    rawPath: '/items/42',
    rawQueryString: 'a=1&a=2',
    cookies: ['c1=v1', 'c2=v2'],
    headers: {
      host, 'user-agent': 'http-test', accept: '*/*',
      'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-port': String(port), 'x-amzn-trace-id': event.headers['x-amzn-trace-id'],
    },
    queryStringParameters: { a: '1,2' },
    requestContext: {
      accountId: '000000000000',
      apiId: 'httpapi001',
      domainName: 'httpapi001.execute-api.us-east-1.localhost',
      domainPrefix: 'httpapi001',
      http: { method: 'GET', path: '/items/42', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'http-test' },
      requestId: ctx.requestId,
      routeKey: 'GET /items/{id}',
      stage: '$default',
      time: ctx.time,
      timeEpoch: ctx.timeEpoch,
    },
    pathParameters: { id: '42' },
    isBase64Encoded: false,
  });

  const legacy = await fetch(`${server.url}/nimbus/apis/httpapi001/legacy`, { method: 'POST', body: 'hi', headers: { 'content-type': 'text/plain' } });
  const l = (await legacy.json()) as Record<string, any>;
  assert.equal(l.version, '1.0');
  assert.equal(l.resource, '/legacy');
  assert.equal(l.body, 'hi');
  assert.equal(l.requestContext.stage, '$default');
  assert.equal(l.requestContext.path, '/legacy');

  const greedy = await send({ port, host, method: 'DELETE', path: '/files/a/b.txt' });
  assert.deepEqual((JSON.parse(greedy.body.toString()) as any).pathParameters, { path: 'a/b.txt' });

  const inferred = await send({ port, host, path: '/items/1', headers: [['X-Mode', 'string']] });
  assert.equal(inferred.status, 200);
  assert.deepEqual(values(inferred, 'content-type'), ['application/json']);
  assert.equal(inferred.body.toString(), '"Hello from Lambda!"');
  assert.match(values(inferred, 'apigw-requestid')[0]!, /=$/);

  for (const [path, method] of [['/nope', 'GET'], ['/items/1', 'POST'], ['/items', 'GET']]) {
    const res = await send({ port, host, method, path: path! });
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.deepEqual(JSON.parse(res.body.toString()), { message: 'Not Found' });
  }
  for (const mode of ['throw', 'body-object']) {
    const res = await send({ port, host, path: '/items/1', headers: [['X-Mode', mode]] });
    assert.equal(res.status, 500, mode);
    assert.deepEqual(JSON.parse(res.body.toString()), { message: 'Internal Server Error' });
  }

  await putApi('httpapi002', { ProtocolType: 'HTTP', StageName: 'v1', Routes: [{ RouteKey: '$default', FunctionName: 'apigw-echo' }] });
  const def = await send({ port, host: `httpapi002.execute-api.us-east-1.localhost:${port}`, path: '/v1/anything/here' });
  const d = JSON.parse(def.body.toString()) as Record<string, any>;
  assert.equal(d.routeKey, '$default');
  assert.equal(d.rawPath, '/v1/anything/here');
  assert.equal(d.requestContext.stage, 'v1');
});

test('bad input: bodies over the limit, invalid UTF-8 paths, malformed API definitions; still serving', async () => {
  await putApi('httpapi003', { ProtocolType: 'HTTP', Routes: [{ RouteKey: 'ANY /{p+}', FunctionName: 'apigw-echo' }] });
  const host = `httpapi003.execute-api.us-east-1.localhost:${port}`;
  const big = await send({ port, host, method: 'POST', path: '/x', headers: [['Content-Type', 'text/plain']], body: Buffer.alloc(6 * 1024 * 1024 + 10, 'a') });
  assert.equal(big.status, 413);
  assert.deepEqual(JSON.parse(big.body.toString()), { message: 'Request Entity Too Large' });
  const badPath = await send({ port, host, path: '/a%FF' });
  assert.equal(badPath.status, 400);
  const unknownApi = await send({ port, host: `zzzzzzzzzz.execute-api.us-east-1.localhost:${port}`, path: '/' });
  assert.equal(unknownApi.status, 403);

  const invalid: Array<[string, unknown]> = [
    ['httpapi004', { ProtocolType: 'SOAP', Routes: [] }],
    ['httpapi004', { ProtocolType: 'HTTP', Routes: [{ RouteKey: 'GET items', FunctionName: 'apigw-echo' }] }],
    ['httpapi004', { ProtocolType: 'HTTP', Routes: [{ RouteKey: 'GET /{a+}/b', FunctionName: 'apigw-echo' }] }],
    ['httpapi004', { ProtocolType: 'REST', StageName: 'p', Routes: [{ RouteKey: '$default', FunctionName: 'apigw-echo' }] }],
    ['BAD', { ProtocolType: 'HTTP', Routes: [] }],
  ];
  for (const [id, body] of invalid) {
    const res = await server.fetch(`/nimbus/v1/apis/${id}`, { method: 'PUT', body: JSON.stringify(body) });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.headers.get('x-amzn-errortype'), 'InvalidParameterValueException');
  }
  const missingFn = await server.fetch('/nimbus/v1/apis/httpapi004', { method: 'PUT', body: JSON.stringify({ ProtocolType: 'HTTP', Routes: [{ RouteKey: '$default', FunctionName: 'nope' }] }) });
  assert.equal(missingFn.status, 404);
  const ok = await send({ port, host, path: '/still' });
  assert.equal(ok.status, 200);
  const del = await server.fetch('/nimbus/v1/apis/httpapi003', { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.equal((await send({ port, host, path: '/still' })).status, 403);
});
