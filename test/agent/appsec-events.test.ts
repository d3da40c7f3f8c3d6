/**
 * Events → WAF addresses for every front door's event shape (built by Nimbus's own front
 * doors' event builders), bodies by content type, the client IP, the user from authorizer
 * claims, handler results → response addresses, and malformed events: never a throw.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequestOf, httpTriggerOf, parseRequestBody } from '../../src/agent/appsec/http-request.ts';
import { httpResponseAddressesOf } from '../../src/agent/appsec/http-response.ts';
import { clientIpOf, isPublicIp } from '../../src/agent/appsec/client-ip.ts';
import { eventFor, eventShapes, triggerOfShape, type RequestSpec } from '../fixtures/appsec/http-events.ts';

const options = { userClaim: 'sub' };

const rich: RequestSpec = {
  method: 'POST',
  rawPath: '/items/42',
  rawQuery: 'q=blue%20mug&tag=a&tag=b',
  route: '/items/{id}',
  pathParameters: { id: '42' },
  headers: [
    ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64)'],
    ['Accept', 'text/html'],
    ['Content-Type', 'application/json'],
    ['Cookie', 'session=abc123; theme=dark'],
    ['X-Trace', 'one'],
  ],
  body: JSON.stringify({ name: "Tim O'Reilly", qty: 2 }),
  sourceIp: '198.51.100.7',
};

describe('addresses for each trigger shape', () => {
  for (const shape of eventShapes) {
    test(shape, () => {
      const info = httpRequestOf(eventFor(shape, rich), options)!;
      assert.ok(info, 'an HTTP event');
      assert.equal(info.trigger, triggerOfShape[shape]);
      const a = info.addresses;
      assert.equal(a['server.request.method'], 'POST');
      assert.equal(info.method, 'POST');
      // ALB without multi-value headers keeps only the last value of a repeated parameter.
      const lastOnly = shape === 'alb';
      assert.equal(a['server.request.uri.raw'], lastOnly ? '/items/42?q=blue%20mug&tag=b' : '/items/42?q=blue%20mug&tag=a&tag=b');
      const headers = a['server.request.headers.no_cookies'] as Record<string, string | string[]>;
      assert.equal(headers['user-agent'], 'Mozilla/5.0 (X11; Linux x86_64)');
      assert.equal(headers['content-type'], 'application/json');
      assert.equal(headers['x-trace'], 'one');
      assert.equal(headers.cookie, undefined, 'cookies are not headers');
      for (const name of Object.keys(headers)) assert.equal(name, name.toLowerCase());
      assert.deepEqual(a['server.request.cookies'], { session: 'abc123', theme: 'dark' });
      assert.deepEqual(a['server.request.query'], lastOnly ? { q: 'blue mug', tag: 'b' } : { q: 'blue mug', tag: ['a', 'b'] });
      assert.deepEqual(a['server.request.body'], { name: "Tim O'Reilly", qty: 2 });
      // The front doors append the peer to X-Forwarded-For; ALB events carry no source IP of their own.
      assert.equal(a['http.client_ip'], '198.51.100.7');
      assert.equal(info.clientIp, '198.51.100.7');
      assert.equal(info.peerIp, '198.51.100.7', 'what the front door saw');
      assert.equal(info.userAgent, 'Mozilla/5.0 (X11; Linux x86_64)');
      assert.equal(info.accept, 'text/html');
      assert.equal(info.multiValueHeaders, shape === 'alb-multi');
      if (shape === 'api-gateway-rest' || shape === 'api-gateway-http') {
        assert.deepEqual(a['server.request.path_params'], { id: '42' });
        assert.equal(info.route, '/items/{id}');
      } else {
        assert.equal(a['server.request.path_params'], undefined);
        assert.equal(info.route, undefined);
      }
    });
  }

  test('HTTP API payload 1.0 is an HTTP API event in the v1 shape', () => {
    const event = eventFor('api-gateway-rest', rich);
    event.version = '1.0';
    assert.equal(httpTriggerOf(event), 'api-gateway-http');
    assert.deepEqual(httpRequestOf(event, options)!.addresses['server.request.query'], { q: 'blue mug', tag: ['a', 'b'] });
  });

  test('ALB keeps query strings encoded in the event; the WAF gets them decoded, the raw URI as sent', () => {
    for (const shape of ['alb', 'alb-multi'] as const) {
      const info = httpRequestOf(eventFor(shape, { method: 'GET', rawPath: '/a', rawQuery: 'path=..%2F..%2Fetc&x=a+b' }), options)!;
      assert.deepEqual(info.addresses['server.request.query'], { path: '../../etc', x: 'a b' });
      assert.equal(info.addresses['server.request.uri.raw'], '/a?path=..%2F..%2Fetc&x=a+b');
    }
  });

  test('repeated headers: every value in multi-value events, comma-joined in v2', () => {
    const spec: RequestSpec = { method: 'GET', rawPath: '/', headers: [['X-Dup', 'one'], ['x-dup', 'two']] };
    assert.deepEqual((httpRequestOf(eventFor('alb-multi', spec), options)!.addresses['server.request.headers.no_cookies'] as Record<string, unknown>)['x-dup'], ['one', 'two']);
    assert.deepEqual((httpRequestOf(eventFor('api-gateway-rest', spec), options)!.addresses['server.request.headers.no_cookies'] as Record<string, unknown>)['x-dup'], ['one', 'two']);
    assert.equal((httpRequestOf(eventFor('api-gateway-http', spec), options)!.addresses['server.request.headers.no_cookies'] as Record<string, unknown>)['x-dup'], 'one,two');
  });

  test('v2 without a raw query string falls back to queryStringParameters, split on commas', () => {
    const event = eventFor('api-gateway-http', { method: 'GET', rawPath: '/', rawQuery: 'a=1&a=2' });
    delete event.rawQueryString;
    assert.deepEqual(httpRequestOf(event, options)!.addresses['server.request.query'], { a: ['1', '2'] });
  });

  test('non-HTTP events are not for the WAF', () => {
    const others: unknown[] = [
      { Records: [{ eventSource: 'aws:sqs', body: "1' OR 1=1" }] },
      { Records: [{ eventSource: 'aws:s3', s3: { object: { key: '../../etc/passwd' } } }] },
      { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} },
      { version: '2.0', requestContext: {} },
      { requestContext: { stage: 'prod' }, httpMethod: 'GET' },
      {},
      [],
      'a string',
      42,
      null,
    ];
    for (const event of others) assert.equal(httpRequestOf(event, options), undefined, JSON.stringify(event));
  });
});

describe('malformed HTTP events: fields of the wrong type are left out, nothing throws', () => {
  const v1 = (): Record<string, unknown> => eventFor('api-gateway-rest', rich);
  const v2 = (): Record<string, unknown> => eventFor('api-gateway-http', rich);
  const mutations: Array<[string, () => Record<string, unknown>]> = [
    ['v1 headers null', () => ({ ...v1(), headers: null, multiValueHeaders: null })],
    ['v1 headers an array', () => ({ ...v1(), headers: ['a'], multiValueHeaders: ['b'] })],
    ['v1 header values numbers', () => ({ ...v1(), multiValueHeaders: { 'x-a': [1, 2], 'x-b': 'not a list' }, headers: { 'x-c': 3 } })],
    ['v1 query values objects', () => ({ ...v1(), multiValueQueryStringParameters: { a: [{}] }, queryStringParameters: { b: [] } })],
    ['v1 identity missing', () => ({ ...v1(), requestContext: { stage: 'prod' } })],
    ['v1 path a number', () => ({ ...v1(), path: 7 })],
    ['v1 body an object', () => ({ ...v1(), body: { a: 1 } })],
    ['v1 pathParameters a string', () => ({ ...v1(), pathParameters: 'id=1' })],
    ['v2 cookies not strings', () => ({ ...v2(), cookies: [1, null, 'a=b', '=novalue', 'noequals'] })],
    ['v2 http missing fields', () => ({ ...v2(), requestContext: { http: {} }, rawPath: undefined, rawQueryString: 5 })],
    ['v2 headers a string', () => ({ ...v2(), headers: 'user-agent: x' })],
    ['v2 isBase64Encoded "yes"', () => ({ ...v2(), body: 'eyJhIjoxfQ==', isBase64Encoded: 'yes' })],
    ['v2 authorizer a string', () => ({ ...v2(), requestContext: { ...(v2().requestContext as object), authorizer: 'token' } })],
    ['ALB headers null', () => ({ ...eventFor('alb', rich), headers: null })],
  ];
  for (const [name, make] of mutations) {
    test(name, () => {
      const info = httpRequestOf(make(), options);
      assert.ok(info, 'still an HTTP event');
      assert.equal(typeof info.addresses, 'object');
      JSON.stringify(info.addresses);
    });
  }

  test('specific outcomes', () => {
    const cookies = httpRequestOf({ ...v2(), cookies: [1, null, 'a=b', '=novalue', 'noequals', 'c="quoted%20value"'] }, options)!;
    assert.deepEqual(cookies.addresses['server.request.cookies'], { a: 'b', c: 'quoted value' });
    const noHeaders = httpRequestOf({ ...v1(), headers: null, multiValueHeaders: null }, options)!;
    assert.deepEqual(noHeaders.addresses['server.request.headers.no_cookies'], {});
    assert.equal(noHeaders.clientIp, '198.51.100.7', 'from requestContext.identity');
    const objectBody = httpRequestOf({ ...v1(), body: { a: 1 } }, options)!;
    assert.equal(objectBody.addresses['server.request.body'], undefined);
    const textBase64 = httpRequestOf({ ...v2(), body: 'eyJhIjoxfQ==', isBase64Encoded: 'yes' }, options)!;
    assert.equal(textBase64.addresses['server.request.body'], 'eyJhIjoxfQ==', 'only `true` means base64');
  });
});

describe('bodies by content type', () => {
  const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
  test('JSON, base64 JSON, +json, no content type', () => {
    assert.deepEqual(parseRequestBody('{"a":[1,"x"]}', false, 'application/json; charset=utf-8')?.body, { a: [1, 'x'] });
    assert.deepEqual(parseRequestBody(b64('{"a":1}'), true, 'application/json')?.body, { a: 1 });
    assert.deepEqual(parseRequestBody('{"a":1}', false, 'application/vnd.api+json')?.body, { a: 1 });
    assert.deepEqual(parseRequestBody('  [1,2]', false, undefined)?.body, [1, 2]);
    assert.equal(parseRequestBody('plain words', false, undefined)?.body, 'plain words');
  });

  test('forms: repeated fields become lists, + is a space', () => {
    assert.deepEqual(parseRequestBody(b64('a=1&a=2&name=Tim+O%27Reilly&empty='), true, 'application/x-www-form-urlencoded')?.body, {
      a: ['1', '2'],
      name: "Tim O'Reilly",
      empty: '',
    });
  });

  test('text/plain and XML are strings', () => {
    assert.equal(parseRequestBody('a < b', false, 'text/plain')?.body, 'a < b');
    assert.equal(parseRequestBody('<a>1</a>', false, 'application/xml')?.body, '<a>1</a>');
    assert.equal(parseRequestBody('<a>1</a>', false, 'application/soap+xml')?.body, '<a>1</a>');
  });

  test('multipart: text fields, and a file part as its file name', () => {
    const boundary = 'XyZ';
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nHello\r\n--${boundary}\r\nContent-Disposition: form-data; name="doc"; filename="report.v2.final.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF\u0000\u00ff\r\n--${boundary}--\r\n`;
    const bytes = Buffer.concat([Buffer.from(body.split('%PDF')[0]!), Buffer.from([0x25, 0x50, 0xff, 0xfe]), Buffer.from('\r\n--XyZ--\r\n')]);
    assert.deepEqual(parseRequestBody(b64(bytes), true, `multipart/form-data; boundary="${boundary}"`)?.body, { title: 'Hello', doc: 'report.v2.final.pdf' });
    assert.equal(parseRequestBody('no parts here', false, 'multipart/form-data; boundary=abc')?.body, 'no parts here');
    assert.equal(parseRequestBody('no boundary', false, 'multipart/form-data')?.body, 'no boundary');
  });

  test('a body that is not what its content type says is kept as a string', () => {
    assert.equal(parseRequestBody("{'not': json", false, 'application/json')?.body, "{'not': json");
    assert.equal(parseRequestBody(b64('<html>'), true, 'application/json')?.body, '<html>');
    assert.equal(parseRequestBody('', false, 'application/json'), undefined);
  });

  test('binary bodies are not for the WAF; text under an unknown type is', () => {
    assert.equal(parseRequestBody(b64(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00])), true, 'image/jpeg'), undefined);
    assert.equal(parseRequestBody(b64(Buffer.from([0xff, 0xfe, 0x00])), true, 'application/json'), undefined);
    assert.equal(parseRequestBody('id=7', false, 'application/x-custom')?.body, 'id=7');
  });

  test('an oversized body is given unparsed, as its first 4,096 characters', () => {
    const big = JSON.stringify({ rows: Array.from({ length: 50_000 }, (_, i) => ({ i })) });
    const parsed = parseRequestBody(big, false, 'application/json', 64 * 1024)!;
    assert.equal(typeof parsed.body, 'string');
    assert.equal((parsed.body as string).length, 4096);
    assert.ok(big.startsWith(parsed.body as string));
  });
});

describe('the user from the authorizer', () => {
  const cases: Array<[string, 'api-gateway-rest' | 'api-gateway-http', Record<string, unknown>, string, string | undefined]> = [
    ['v1 Cognito claims', 'api-gateway-rest', { claims: { sub: 'user-1', email: 'a@b.c' } }, 'sub', 'user-1'],
    ['v1 Lambda authorizer context', 'api-gateway-rest', { principalId: 'p', sub: 'user-2' }, 'sub', 'user-2'],
    ['v2 JWT claims', 'api-gateway-http', { jwt: { claims: { sub: 'user-3' }, scopes: [] } }, 'sub', 'user-3'],
    ['v2 Lambda authorizer', 'api-gateway-http', { lambda: { sub: 'user-4' } }, 'sub', 'user-4'],
    ['a configured claim', 'api-gateway-http', { jwt: { claims: { sub: 'x', 'custom:tenant_user': 'tenant/9' } } }, 'custom:tenant_user', 'tenant/9'],
    ['a numeric claim', 'api-gateway-rest', { claims: { uid: 1234 } }, 'uid', '1234'],
    ['an object claim is not an id', 'api-gateway-rest', { claims: { sub: { id: 1 } } }, 'sub', undefined],
    ['an empty claim is not an id', 'api-gateway-http', { jwt: { claims: { sub: '' } } }, 'sub', undefined],
    ['no such claim', 'api-gateway-http', { jwt: { claims: { email: 'a@b.c' } } }, 'sub', undefined],
  ];
  for (const [name, shape, authorizer, claim, expected] of cases) {
    test(name, () => {
      const info = httpRequestOf(eventFor(shape, { method: 'GET', rawPath: '/me', authorizer }), { userClaim: claim })!;
      assert.equal(info.userId, expected);
      assert.equal(info.addresses['usr.id'], expected);
    });
  }
});

describe('client IP', () => {
  test('the first public address of the IP headers wins', () => {
    assert.equal(clientIpOf({ 'x-forwarded-for': '10.0.0.1, 192.168.1.9, 203.0.113.9, 198.51.100.1' }, '127.0.0.1'), '203.0.113.9');
    assert.equal(clientIpOf({ 'x-real-ip': '203.0.113.5', 'x-forwarded-for': '10.0.0.1' }, '127.0.0.1'), '203.0.113.5');
    assert.equal(clientIpOf({ forwarded: 'for="[2001:db8::7]:4711";proto=https, for=10.0.0.1' }, undefined), '2001:db8::7');
    assert.equal(clientIpOf({ 'x-forwarded-for': '203.0.113.9:51234' }, undefined), '203.0.113.9');
    assert.equal(clientIpOf({ 'x-forwarded-for': ['10.0.0.1', '203.0.113.2'] }, undefined), '203.0.113.2');
  });

  test('no public header address: the front door source IP, else the first private header address', () => {
    assert.equal(clientIpOf({ 'x-forwarded-for': '10.0.0.1, 172.16.0.5' }, '198.51.100.3'), '198.51.100.3');
    assert.equal(clientIpOf({ 'x-forwarded-for': '10.0.0.1' }, '127.0.0.1'), '127.0.0.1');
    assert.equal(clientIpOf({ 'x-forwarded-for': '10.0.0.1, 172.16.0.5' }, undefined), '10.0.0.1');
    assert.equal(clientIpOf({}, undefined), undefined);
  });

  test('a client claiming another address in X-Forwarded-For: clientIp is the claim, peerIp the truth', () => {
    for (const shape of eventShapes) {
      const info = httpRequestOf(eventFor(shape, { method: 'GET', rawPath: '/', headers: [['X-Forwarded-For', '8.8.8.8']], sourceIp: '198.51.100.66' }), options)!;
      assert.equal(info.clientIp, '8.8.8.8', shape);
      assert.equal(info.peerIp, '198.51.100.66', shape);
    }
  });

  test('garbage in IP headers is skipped', () => {
    assert.equal(clientIpOf({ 'x-forwarded-for': "unknown, ' OR 1=1, 999.1.1.1, , 203.0.113.77" }, undefined), '203.0.113.77');
    assert.equal(clientIpOf({ 'x-forwarded-for': 'not-an-ip' }, 'also not'), undefined);
  });

  test('private, loopback, link-local and CGNAT ranges are not public', () => {
    for (const ip of ['10.1.1.1', '172.31.255.255', '192.168.0.1', '127.0.0.1', '169.254.169.254', '100.64.0.1', '::1', 'fe80::1', 'fd12::1', '::ffff:10.0.0.1']) assert.equal(isPublicIp(ip), false, ip);
    for (const ip of ['8.8.8.8', '172.32.0.1', '2001:4860:4860::8888', '100.128.0.1']) assert.equal(isPublicIp(ip), true, ip);
    assert.equal(isPublicIp('nonsense'), false);
  });
});

describe('response addresses', () => {
  test('status and headers without set-cookie, from headers and multiValueHeaders', () => {
    const body = Buffer.from(JSON.stringify({ statusCode: 404, headers: { 'Content-Type': 'text/html', 'Set-Cookie': 'a=b', 'X-Count': 3 }, multiValueHeaders: { 'X-Multi': ['1', '2'], 'set-cookie': ['c=d'] }, body: '' }));
    assert.deepEqual(httpResponseAddressesOf(body, 'api-gateway-rest'), {
      'server.response.status': '404',
      'server.response.headers.no_cookies': { 'x-multi': ['1', '2'], 'content-type': 'text/html', 'x-count': '3' },
    });
  });

  test('HTTP APIs and function URLs answer 200 for a result without statusCode; REST and ALB do not', () => {
    const plain = Buffer.from(JSON.stringify({ hello: 'world' }));
    assert.equal(httpResponseAddressesOf(plain, 'api-gateway-http')?.['server.response.status'], '200');
    assert.equal(httpResponseAddressesOf(Buffer.from('"just a string"'), 'function-url')?.['server.response.status'], '200');
    assert.equal(httpResponseAddressesOf(plain, 'api-gateway-rest'), undefined);
    assert.equal(httpResponseAddressesOf(plain, 'alb'), undefined);
  });

  test('unreadable results give nothing', () => {
    assert.equal(httpResponseAddressesOf(undefined, 'alb'), undefined);
    assert.equal(httpResponseAddressesOf(Buffer.from('{not json'), 'api-gateway-http'), undefined);
    assert.equal(httpResponseAddressesOf(Buffer.from('{"statusCode":"abc"}'), 'api-gateway-rest'), undefined);
    assert.equal(httpResponseAddressesOf(Buffer.from('{"statusCode":200.5}'), 'api-gateway-rest'), undefined);
    assert.equal(httpResponseAddressesOf(Buffer.from('{"statusCode":"201","headers":"x"}'), 'alb')?.['server.response.status'], '201');
  });
});
