/**
 * Function URLs end to end: the configuration API through the AWS SDK, and real HTTP
 * through the URL (curl by host name, node:http with a Host header, fetch by path
 * prefix): the exact payload 2.0 event the handler received, the response mapping
 * (inferred, custom, cookies, base64), Lambda's errors, CORS preflight, AWS_IAM with
 * SigV4, and bad input, with the server still serving after each.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import {
  CreateFunctionUrlConfigCommand,
  DeleteFunctionCommand,
  DeleteFunctionUrlConfigCommand,
  GetFunctionUrlConfigCommand,
  ListFunctionUrlConfigsCommand,
  UpdateFunctionUrlConfigCommand,
} from '@aws-sdk/client-lambda';
import { SignatureV4 } from '@smithy/signature-v4';
import { TestServer } from '../helpers/nimbus.ts';
import { send, sendBytes, values, Sha256 } from '../triggers/http-client.ts';

const run = promisify(execFile);
const ACCESS_KEY = 'AKIANIMBUSTEST0001';
const SECRET = 'nimbus-test-secret-key';

let server: TestServer;
let dataDir: string;
let port: number;

before(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-e2e-urls-'));
  await writeFile(path.join(dataDir, 'nimbus.json'), JSON.stringify({ accessKeys: { [ACCESS_KEY]: SECRET } }));
  server = await TestServer.start({ dataDir });
  port = Number(new URL(server.url).port);
});
after(async () => {
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** Echoes the event back as the body; answers shaped by `?mode=` for the mapping tests. */
const handler = `
export const handler = async (event) => {
  const mode = event.queryStringParameters?.mode;
  if (mode === 'string') return 'Hello, world!';
  if (mode === 'object') return { message: 'Hello, world!' };
  if (mode === 'custom') return { statusCode: 201, headers: { 'Content-Type': 'text/plain', 'My-Custom-Header': 'Custom Value' }, cookies: ['Cookie_1=Value1; Max-Age=78000', 'Cookie_2=Value2'], body: 'created' };
  if (mode === 'echo-binary') return { statusCode: 200, headers: { 'content-type': 'application/octet-stream' }, body: event.body, isBase64Encoded: true };
  if (mode === 'bad-status') return { statusCode: 'abc', body: 'x' };
  if (mode === 'body-object') return { statusCode: 200, body: { not: 'a string' } };
  if (mode === 'bad-header') return { statusCode: 200, headers: { 'x-evil': 'a\\r\\nInjected: yes' }, body: 'x' };
  if (mode === 'bad-base64') return { statusCode: 200, body: '!!!', isBase64Encoded: true };
  if (mode === 'throw') throw new Error('boom');
  if (mode === 'huge') return 'x'.repeat(7 * 1024 * 1024);
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) };
};`;

async function createUrl(functionName: string, input: Record<string, unknown> = {}) {
  const out = await server.client.send(new CreateFunctionUrlConfigCommand({ FunctionName: functionName, AuthType: 'NONE', ...input }));
  const urlId = /^http:\/\/([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:(\d+)\/$/.exec(out.FunctionUrl!)![1]!;
  return { out, urlId, host: `${urlId}.lambda-url.us-east-1.localhost:${port}` };
}

test('configuration API: create, get, update, list, delete, with Lambda statuses and errors', async () => {
  await server.createFunction({ FunctionName: 'url-config', files: { 'index.mjs': handler } });
  const { out, urlId } = await createUrl('url-config', { Cors: { AllowOrigins: ['https://example.com'], MaxAge: 60 } });
  assert.equal(out.$metadata.httpStatusCode, 201);
  assert.equal(out.FunctionUrl, `http://${urlId}.lambda-url.us-east-1.localhost:${port}/`);
  assert.equal(out.FunctionArn, 'arn:aws:lambda:us-east-1:000000000000:function:url-config');
  assert.equal(out.AuthType, 'NONE');
  assert.equal(out.InvokeMode, 'BUFFERED');
  assert.deepEqual(out.Cors, { AllowOrigins: ['https://example.com'], MaxAge: 60 });
  assert.match(out.CreationTime!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  await assert.rejects(server.client.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'url-config', AuthType: 'NONE' })), (err: Error) => {
    assert.equal(err.name, 'ResourceConflictException');
    assert.match(err.message, /FunctionUrlConfig exists for this Lambda function/);
    return true;
  });

  const got = await server.client.send(new GetFunctionUrlConfigCommand({ FunctionName: 'url-config' }));
  assert.equal(got.FunctionUrl, out.FunctionUrl);
  assert.equal(got.LastModifiedTime, out.CreationTime);

  const updated = await server.client.send(
    new UpdateFunctionUrlConfigCommand({ FunctionName: 'url-config', AuthType: 'AWS_IAM', InvokeMode: 'RESPONSE_STREAM' }),
  );
  assert.equal(updated.$metadata.httpStatusCode, 200);
  assert.equal(updated.AuthType, 'AWS_IAM');
  assert.equal(updated.InvokeMode, 'RESPONSE_STREAM');
  assert.deepEqual(updated.Cors, { AllowOrigins: ['https://example.com'], MaxAge: 60 }, 'an absent Cors leaves the configuration as it was');
  assert.equal(updated.FunctionUrl, out.FunctionUrl, 'the URL never changes');

  const listed = await server.client.send(new ListFunctionUrlConfigsCommand({ FunctionName: 'url-config' }));
  assert.equal(listed.FunctionUrlConfigs?.length, 1);
  assert.equal(listed.FunctionUrlConfigs![0]!.InvokeMode, 'RESPONSE_STREAM');

  // RESPONSE_STREAM is stored; a handler that does not stream is answered as a buffered URL answers.
  const streamed = await send({ port, host: `${urlId}.lambda-url.us-east-1.localhost:${port}`, path: '/' });
  assert.equal(streamed.status, 403, 'AWS_IAM is checked first: unsigned requests are refused');
  await server.client.send(new UpdateFunctionUrlConfigCommand({ FunctionName: 'url-config', AuthType: 'NONE' }));
  const whole = await send({ port, host: `${urlId}.lambda-url.us-east-1.localhost:${port}`, path: '/' });
  assert.equal(whole.status, 200);

  const deleted = await server.client.send(new DeleteFunctionUrlConfigCommand({ FunctionName: 'url-config' }));
  assert.equal(deleted.$metadata.httpStatusCode, 204);
  for (const command of [new GetFunctionUrlConfigCommand({ FunctionName: 'url-config' }), new DeleteFunctionUrlConfigCommand({ FunctionName: 'url-config' })]) {
    await assert.rejects(server.client.send(command as never), { name: 'ResourceNotFoundException' });
  }
  const gone = await send({ port, host: `${urlId}.lambda-url.us-east-1.localhost:${port}`, path: '/' });
  assert.equal(gone.status, 403);
  assert.deepEqual(JSON.parse(gone.body.toString()), { Message: 'Forbidden' });
});

test('configuration API: bad input gets Lambda-shaped errors', async () => {
  await server.createFunction({ FunctionName: 'url-bad', files: { 'index.mjs': handler } });
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ AuthType: 'PASSWORD' }, 'ValidationException', /Value 'PASSWORD' at 'authType' failed to satisfy constraint: Member must satisfy enum value set: \[NONE, AWS_IAM\]/],
    [{ AuthType: 'NONE', InvokeMode: 'FAST' }, 'ValidationException', /at 'invokeMode'/],
    [{ AuthType: 'NONE', Cors: { MaxAge: 90000 } }, 'ValidationException', /at 'cors.maxAge' failed to satisfy constraint: Member must have value between 0 and 86400/],
    [{ AuthType: 'NONE', Cors: { AllowMethods: ['FETCH'] } }, 'ValidationException', /cors.allowMethods/],
  ];
  for (const [body, name, message] of cases) {
    const res = await server.fetch('/2021-10-31/functions/url-bad/url', { method: 'POST', body: JSON.stringify(body) });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.headers.get('x-amzn-errortype'), name);
    assert.match(((await res.json()) as { message: string }).message, message);
  }
  const missing = await server.fetch('/2021-10-31/functions/no-such-function/url', { method: 'POST', body: '{"AuthType":"NONE"}' });
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('x-amzn-errortype'), 'ResourceNotFoundException');
  const version = await server.fetch('/2021-10-31/functions/url-bad/url?Qualifier=1', { method: 'POST', body: '{"AuthType":"NONE"}' });
  assert.equal(version.status, 400, 'a URL points at an alias, never a version');
  const notJson = await server.fetch('/2021-10-31/functions/url-bad/url', { method: 'POST', body: '{' });
  assert.equal(notJson.status, 400);
  assert.equal(notJson.headers.get('x-amzn-errortype'), 'InvalidRequestContentException');
});

test('the payload 2.0 event, exactly, by host name (curl) and by path prefix (fetch)', async () => {
  await server.createFunction({ FunctionName: 'url-echo', files: { 'index.mjs': handler } });
  const { urlId, host } = await createUrl('url-echo');
  const { stdout } = await run('curl', [
    '-s', '-X', 'POST',
    `http://${host}/items/a%20b?x=1&x=2&flag&name=J%C3%BCrgen`,
    '-H', 'Content-Type: application/json',
    '-H', 'X-Multi: one',
    '-H', 'X-Multi: two',
    '-H', 'Cookie: session=abc; theme=dark',
    '-H', 'User-Agent: nimbus-test/1.0',
    '--data-binary', '{"hello":"world"}',
  ]);
  const event = JSON.parse(stdout) as Record<string, any>;
  const ctx = event.requestContext;
  assert.match(ctx.requestId, /^[0-9a-f-]{36}$/);
  assert.match(ctx.time, /^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
  assert.ok(Math.abs(ctx.timeEpoch - Date.now()) < 60_000);
  assert.match(event.headers['x-amzn-trace-id'], /^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$/);
  assert.deepEqual(event, {
    version: '2.0',
    routeKey: '$default',
    rawPath: '/items/a%20b',
    rawQueryString: 'x=1&x=2&flag&name=J%C3%BCrgen',
    cookies: ['session=abc', 'theme=dark'],
    headers: {
      host,
      accept: '*/*',
      'content-type': 'application/json',
      'x-multi': 'one,two',
      'user-agent': 'nimbus-test/1.0',
      'content-length': '17',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-port': String(port),
      'x-amzn-trace-id': event.headers['x-amzn-trace-id'],
    },
    queryStringParameters: { x: '1,2', flag: '', name: 'Jürgen' },
    requestContext: {
      accountId: 'anonymous',
      apiId: urlId,
      domainName: `${urlId}.lambda-url.us-east-1.localhost`,
      domainPrefix: urlId,
      http: { method: 'POST', path: '/items/a b', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'nimbus-test/1.0' },
      requestId: ctx.requestId,
      routeKey: '$default',
      stage: '$default',
      time: ctx.time,
      timeEpoch: ctx.timeEpoch,
    },
    body: '{"hello":"world"}',
    isBase64Encoded: false,
  });

  // By path prefix, with fetch: a GET without body has no body, cookies or query keys.
  const res = await fetch(`${server.url}/nimbus/urls/${urlId}/`, { headers: { 'user-agent': 'fetch-test' } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('x-amzn-requestid')!, /^[0-9a-f-]{36}$/);
  const plain = (await res.json()) as Record<string, any>;
  assert.equal(plain.rawPath, '/');
  assert.equal(plain.rawQueryString, '');
  for (const absent of ['body', 'cookies', 'queryStringParameters', 'pathParameters', 'stageVariables']) assert.ok(!(absent in plain), absent);
  assert.equal(plain.isBase64Encoded, false);
  assert.equal(plain.requestContext.http.method, 'GET');
  assert.equal(plain.requestContext.requestId, res.headers.get('x-amzn-requestid'), 'the request id is the invocation id');
});

test('response mapping: inferred string and object, custom status, headers and cookies, binary round trip', async () => {
  await server.createFunction({ FunctionName: 'url-map', files: { 'index.mjs': handler } });
  const { host } = await createUrl('url-map');

  const str = await send({ port, host, path: '/?mode=string' });
  assert.equal(str.status, 200);
  assert.deepEqual(values(str, 'content-type'), ['application/json']);
  assert.equal(values(str, 'content-length')[0], '15', 'Lambda sends the JSON string, quotes included');
  assert.equal(str.body.toString(), '"Hello, world!"');

  const obj = await send({ port, host, path: '/?mode=object' });
  assert.equal(obj.status, 200);
  assert.deepEqual(values(obj, 'content-type'), ['application/json']);
  assert.equal(obj.body.toString(), '{"message":"Hello, world!"}');

  const custom = await send({ port, host, path: '/?mode=custom' });
  assert.equal(custom.status, 201);
  assert.deepEqual(values(custom, 'content-type'), ['text/plain']);
  assert.deepEqual(values(custom, 'my-custom-header'), ['Custom Value']);
  assert.deepEqual(values(custom, 'set-cookie'), ['Cookie_1=Value1; Max-Age=78000', 'Cookie_2=Value2']);
  assert.equal(custom.body.toString(), 'created');

  const bytes = Buffer.concat([randomBytes(4096), Buffer.from([0, 0xff, 0xfe, 0x80])]);
  const echoed = await send({ port, host, method: 'POST', path: '/?mode=echo-binary', headers: [['Content-Type', 'application/octet-stream']], body: bytes });
  assert.equal(echoed.status, 200);
  assert.deepEqual(values(echoed, 'content-type'), ['application/octet-stream']);
  assert.ok(echoed.body.equals(bytes), 'binary body survives event base64 and response base64');

  const head = await send({ port, host, method: 'HEAD', path: '/?mode=object' });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
});

test("Lambda's errors: malformed responses and function errors 502, oversized 413, throttling 429; the URL keeps serving", async () => {
  await server.createFunction({ FunctionName: 'url-errors', files: { 'index.mjs': handler }, MemorySize: 512 });
  const { host } = await createUrl('url-errors');
  for (const mode of ['bad-status', 'body-object', 'bad-header', 'bad-base64', 'throw']) {
    const res = await send({ port, host, path: `/?mode=${mode}` });
    assert.equal(res.status, 502, mode);
    assert.equal(res.body.toString(), 'Internal Server Error', mode);
    assert.deepEqual(values(res, 'injected'), [], 'no header injection');
  }
  const huge = await send({ port, host, path: '/?mode=huge' });
  assert.equal(huge.status, 413);
  assert.deepEqual(JSON.parse(huge.body.toString()), { Message: 'Response payload size exceeded maximum allowed payload size (6291556 bytes).' });

  const bigBody = Buffer.alloc(6 * 1024 * 1024 + 1, 'a');
  const tooBig = await send({ port, host, method: 'POST', path: '/', headers: [['Content-Type', 'text/plain']], body: bigBody });
  assert.equal(tooBig.status, 413);
  assert.deepEqual(JSON.parse(tooBig.body.toString()), { Message: 'Request must be smaller than 6291456 bytes for the InvokeFunction operation' });
  // Under the raw limit but over it once base64-encoded into the event.
  const binary = await send({ port, host, method: 'POST', path: '/', headers: [['Content-Type', 'application/octet-stream']], body: Buffer.alloc(5 * 1024 * 1024) });
  assert.equal(binary.status, 413);

  const ok = await send({ port, host, path: '/?mode=object' });
  assert.equal(ok.status, 200, 'still serving');

  await server.fetch('/2017-10-31/functions/url-errors/concurrency', { method: 'PUT', body: '{"ReservedConcurrentExecutions":0}' });
  const throttled = await send({ port, host, path: '/?mode=object' });
  assert.equal(throttled.status, 429);
  assert.deepEqual(JSON.parse(throttled.body.toString()), { Message: 'Rate Exceeded.' });
});

test('bad input: invalid UTF-8 in headers and paths, unknown URL ids', async () => {
  await server.createFunction({ FunctionName: 'url-input', files: { 'index.mjs': handler } });
  const { host, urlId } = await createUrl('url-input');
  const raw = await sendBytes(
    port,
    Buffer.concat([Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nX-Bad: `), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('\r\nConnection: close\r\n\r\n')]),
  );
  assert.match(raw, /^HTTP\/1\.1 400 /);
  assert.match(raw, /\{"Message":"Bad Request"\}/);
  const utf8 = await send({ port, host, path: '/', headers: [['X-Name', Buffer.from('Jürgen', 'utf8').toString('latin1')]] });
  assert.equal((JSON.parse(utf8.body.toString()) as any).headers['x-name'], 'Jürgen', 'UTF-8 header values arrive decoded');
  const badPath = await send({ port, host, path: '/a%FFb' });
  assert.equal(badPath.status, 400);
  const unknown = await send({ port, host: `${'z'.repeat(32)}.lambda-url.us-east-1.localhost:${port}`, path: '/' });
  assert.equal(unknown.status, 403);
  assert.deepEqual(JSON.parse(unknown.body.toString()), { Message: 'Forbidden' });
  const prefixUnknown = await fetch(`${server.url}/nimbus/urls/${'y'.repeat(32)}/`);
  assert.equal(prefixUnknown.status, 403);
  const ok = await send({ port, host: `${urlId}.lambda-url.us-east-1.localhost:${port}`, path: '/?mode=object' });
  assert.equal(ok.status, 200, 'still serving');
});

test('CORS: preflight answered from the configuration without invoking; the function\'s CORS headers replaced', async () => {
  await server.createFunction({ FunctionName: 'url-cors', files: { 'index.mjs': handler } });
  const { host } = await createUrl('url-cors', {
    Cors: { AllowOrigins: ['https://app.example'], AllowMethods: ['GET', 'POST'], AllowHeaders: ['content-type', 'x-token'], ExposeHeaders: ['x-total'], MaxAge: 300, AllowCredentials: true },
  });
  const pre = await send({
    port,
    host,
    method: 'OPTIONS',
    path: '/anything',
    headers: [['Origin', 'https://app.example'], ['Access-Control-Request-Method', 'POST'], ['Access-Control-Request-Headers', 'Content-Type, X-Token']],
  });
  assert.equal(pre.status, 200);
  assert.deepEqual(values(pre, 'access-control-allow-origin'), ['https://app.example']);
  assert.deepEqual(values(pre, 'access-control-allow-methods'), ['GET, POST']);
  assert.deepEqual(values(pre, 'access-control-allow-headers'), ['content-type, x-token']);
  assert.deepEqual(values(pre, 'access-control-allow-credentials'), ['true']);
  assert.deepEqual(values(pre, 'access-control-max-age'), ['300']);
  assert.deepEqual(values(pre, 'x-amzn-requestid'), [], 'no invocation behind a preflight');
  assert.equal(pre.body.length, 0);

  const other = await send({ port, host, method: 'OPTIONS', path: '/', headers: [['Origin', 'https://evil.example'], ['Access-Control-Request-Method', 'POST']] });
  assert.equal(other.status, 200);
  assert.deepEqual(values(other, 'access-control-allow-origin'), [], 'origins not configured get no CORS headers');

  const actual = await send({ port, host, path: '/?mode=object', headers: [['Origin', 'https://app.example']] });
  assert.equal(actual.status, 200);
  assert.deepEqual(values(actual, 'access-control-allow-origin'), ['https://app.example']);
  assert.deepEqual(values(actual, 'access-control-expose-headers'), ['x-total']);
  assert.deepEqual(values(actual, 'vary'), ['Origin']);
});

test('AWS_IAM: SigV4 with a configured key (curl --aws-sigv4 and the SDK signer); unsigned, wrong, expired and unknown keys get 403', async () => {
  await server.createFunction({ FunctionName: 'url-iam', files: { 'index.mjs': handler } });
  const { host } = await createUrl('url-iam', { AuthType: 'AWS_IAM' });

  const { stdout } = await run('curl', ['-s', '--aws-sigv4', 'aws:amz:us-east-1:lambda', '--user', `${ACCESS_KEY}:${SECRET}`, `http://${host}/signed?a=1`]);
  const event = JSON.parse(stdout) as Record<string, any>;
  assert.equal(event.requestContext.accountId, '000000000000');
  const iam = event.requestContext.authorizer.iam;
  assert.match(iam.userId, /^AIDA[0-9A-F]{17}$/);
  assert.deepEqual(event.requestContext.authorizer, {
    iam: {
      accessKey: ACCESS_KEY,
      accountId: '000000000000',
      callerId: iam.userId,
      cognitoIdentity: null,
      principalOrgId: null,
      userArn: `arn:aws:iam::000000000000:user/${ACCESS_KEY}`,
      userId: iam.userId,
    },
  });

  const sign = async (secret: string, at: Date, accessKeyId = ACCESS_KEY, body = '{"n":1}') => {
    const signer = new SignatureV4({ credentials: { accessKeyId, secretAccessKey: secret }, region: 'us-east-1', service: 'lambda', sha256: Sha256 });
    const signed = await signer.sign(
      { method: 'POST', protocol: 'http:', hostname: host.split(':')[0]!, port, path: '/p/q', query: { b: '2' }, headers: { host, 'content-type': 'application/json' }, body },
      { signingDate: at },
    );
    return send({ port, host, method: 'POST', path: '/p/q?b=2', headers: Object.entries(signed.headers).filter(([k]) => k !== 'host') as Array<[string, string]>, body });
  };
  const good = await sign(SECRET, new Date());
  assert.equal(good.status, 200);
  assert.equal((JSON.parse(good.body.toString()) as any).body, '{"n":1}');

  const forbidden = [
    await send({ port, host, path: '/' }),
    await sign('wrong-secret', new Date()),
    await sign(SECRET, new Date(Date.now() - 10 * 60_000)),
    await sign(SECRET, new Date(), 'AKIANOTCONFIGURED01'),
  ];
  for (const res of forbidden) {
    assert.equal(res.status, 403);
    assert.deepEqual(JSON.parse(res.body.toString()), { Message: 'Forbidden' });
  }
  const tampered = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--aws-sigv4', 'aws:amz:us-east-1:lambda', '--user', `${ACCESS_KEY}:${SECRET}`, '-H', `Host: ${host}`, `http://127.0.0.1:${port}/nimbus/urls/${host.slice(0, 32)}/x`]);
  assert.equal(tampered.stdout, '200', 'by path prefix the signed Host is still checked, and matches');
});

test('a deleted function takes its URL with it; a new function of the same name starts without one', async () => {
  await server.createFunction({ FunctionName: 'url-gone', files: { 'index.mjs': handler } });
  const { host } = await createUrl('url-gone');
  assert.equal((await send({ port, host, path: '/?mode=object' })).status, 200);
  await server.client.send(new DeleteFunctionCommand({ FunctionName: 'url-gone' }));
  assert.equal((await send({ port, host, path: '/' })).status, 403);
  await server.createFunction({ FunctionName: 'url-gone', files: { 'index.mjs': handler } });
  await assert.rejects(server.client.send(new GetFunctionUrlConfigCommand({ FunctionName: 'url-gone' })), { name: 'ResourceNotFoundException' });
  const again = await createUrl('url-gone');
  assert.notEqual(again.host, host, 'a new URL id');
});
