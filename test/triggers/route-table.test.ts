/** API Gateway route selection: most specific template first, exact method before ANY, $default last. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteTable, parseRouteKey } from '../../src/triggers/api-gateway/route-table.ts';

const route = (routeKey: string) => ({ routeKey, functionName: routeKey, payloadFormatVersion: '2.0' as const });

test('literal beats parameter beats greedy; exact method beats ANY; $default catches the rest', () => {
  const table = new RouteTable([
    route('ANY /{proxy+}'),
    route('GET /items/{id}'),
    route('GET /items/special'),
    route('ANY /items/{id}'),
    route('POST /items'),
    route('GET /'),
    route('$default'),
  ]);
  const pick = (method: string, path: string) => {
    const m = table.match(method, path);
    return m && { key: m.route.routeKey, params: m.pathParameters, resource: m.resource };
  };
  assert.deepEqual(pick('GET', '/items/special'), { key: 'GET /items/special', params: {}, resource: '/items/special' });
  assert.deepEqual(pick('GET', '/items/7'), { key: 'GET /items/{id}', params: { id: '7' }, resource: '/items/{id}' });
  assert.deepEqual(pick('DELETE', '/items/7'), { key: 'ANY /items/{id}', params: { id: '7' }, resource: '/items/{id}' });
  assert.deepEqual(pick('GET', '/items/7/parts/x%20y'), { key: 'ANY /{proxy+}', params: { proxy: 'items/7/parts/x y' }, resource: '/{proxy+}' });
  assert.deepEqual(pick('POST', '/items/'), { key: 'POST /items', params: {}, resource: '/items' });
  assert.deepEqual(pick('GET', '/'), { key: 'GET /', params: {}, resource: '/' });
  assert.deepEqual(pick('POST', '/'), { key: '$default', params: {}, resource: '$default' }, 'a greedy variable needs at least one segment');
});

test('without $default an unmatched request has no route', () => {
  const table = new RouteTable([route('GET /a/{b}')]);
  assert.equal(table.match('POST', '/a/1'), undefined);
  assert.equal(table.match('GET', '/b'), undefined);
  assert.equal(table.match('GET', '/a/%FF'), undefined, 'a segment that is not UTF-8 matches no parameter');
});

test('route keys are checked', () => {
  assert.equal(typeof parseRouteKey('GET /items/{id}'), 'object');
  for (const bad of ['GET items', 'FETCH /x', 'GET /{a+}/b', 'GET /{a}/{a}', 'GET /a b', 'get /x']) {
    assert.equal(typeof parseRouteKey(bad), 'string', bad);
  }
});
