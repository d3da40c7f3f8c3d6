/** Response mapping of each front door, in process: what AWS accepts, and what it answers 5xx for. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { v2Response } from '../../src/triggers/responses/v2-response.ts';
import { v1Response } from '../../src/triggers/responses/v1-response.ts';
import { albResponse } from '../../src/triggers/responses/alb-response.ts';
import { MalformedResponse } from '../../src/triggers/http/outgoing.ts';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

test('payload 2.0: inferred responses keep the function output byte for byte', () => {
  for (const out of ['"Hello, world!"', '{ "message" : 1 }', '[1,2]', 'null', '42']) {
    const r = v2Response(Buffer.from(out));
    assert.equal(r.status, 200);
    assert.deepEqual(r.headers, [['Content-Type', 'application/json']]);
    assert.equal(r.body.toString(), out);
  }
});

test('payload 2.0: statusCode, headers, cookies, base64; malformed answers refused', () => {
  const r = v2Response(json({ statusCode: 404, headers: { 'X-A': 1, 'content-type': 'text/plain' }, cookies: ['a=1', 'b=2'], body: 'aGk=', isBase64Encoded: true }));
  assert.equal(r.status, 404);
  assert.deepEqual(r.headers, [['X-A', '1'], ['content-type', 'text/plain'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']]);
  assert.equal(r.body.toString(), 'hi');
  assert.deepEqual(v2Response(json({ statusCode: 200, headers: { 'Content-Length': '99', 'Transfer-Encoding': 'chunked' } })).headers, [['Content-Type', 'application/json']], 'platform-owned fields dropped');
  for (const bad of [
    '{"statusCode": 200',
    json({ statusCode: 'abc' }),
    json({ statusCode: 99 }),
    json({ statusCode: 200, body: { a: 1 } }),
    json({ statusCode: 200, headers: { 'bad name': 'x' } }),
    json({ statusCode: 200, headers: { a: 'x\r\ny: z' } }),
    json({ statusCode: 200, headers: { a: { b: 1 } } }),
    json({ statusCode: 200, cookies: 'a=1' }),
    json({ statusCode: 200, body: '%%%', isBase64Encoded: true }),
  ]) {
    assert.throws(() => v2Response(typeof bad === 'string' ? Buffer.from(bad) : bad), MalformedResponse, String(bad));
  }
});

test('payload 1.0: only the proxy keys, statusCode required, headers merged, base64 decoded when allowed', () => {
  const decode = { decodeBase64: () => true };
  const r = v1Response(json({ statusCode: '201', headers: { A: 'h', B: 'single' }, multiValueHeaders: { B: ['m1', 'm2'] }, body: 'x' }), decode);
  assert.equal(r.status, 201);
  assert.deepEqual(r.headers, [['B', 'm1'], ['B', 'm2'], ['A', 'h'], ['Content-Type', 'application/json']]);
  assert.equal(v1Response(json({ statusCode: 200, body: 'aGk=', isBase64Encoded: true }), { decodeBase64: () => false }).body.toString(), 'aGk=');
  assert.equal(v1Response(json({ statusCode: 200, body: 'aGk=', isBase64Encoded: true }), decode).body.toString(), 'hi');
  for (const bad of [json('text'), json({ body: 'x' }), json({ statusCode: 200, cookies: [] }), json({ statusCode: 200, multiValueHeaders: { a: 'x' } })]) {
    assert.throws(() => v1Response(bad, decode), MalformedResponse);
  }
});

test('ALB: statusDescription as the reason phrase, multiValueHeaders only when enabled, 1 MB limit', () => {
  const r = albResponse(json({ statusCode: 200, statusDescription: '200 Fine', headers: { a: 'x' }, multiValueHeaders: { b: ['y'] } }), false);
  assert.equal(r.statusMessage, 'Fine');
  assert.deepEqual(r.headers, [['a', 'x']]);
  assert.deepEqual(albResponse(json({ statusCode: 200, headers: { a: 'x' }, multiValueHeaders: { b: ['y', 'z'] } }), true).headers, [['b', 'y'], ['b', 'z']]);
  assert.throws(() => albResponse(json({ statusCode: 200, statusDescription: 'OK' }), false), MalformedResponse);
  assert.throws(() => albResponse(json({ statusCode: 200, body: 'x'.repeat(1024 * 1024) }), false), MalformedResponse);
});
