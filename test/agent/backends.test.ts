import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { BackendSendError, closeHttpAgents, HttpRequestError, postAccepted, postBody } from '../../src/agent/backends/http-post.ts';
import { NimbusBackend } from '../../src/agent/backends/nimbus-backend.ts';
import { OtlpBackend } from '../../src/agent/backends/otlp-backend.ts';
import { DatadogBackend } from '../../src/agent/backends/datadog-backend.ts';
import { decodeAgentPayload, DatadogPayloadError } from '../../src/agent/backends/datadog-trace-payload.ts';
import type { AgentResource, LogRecord, MetricPoint, SecuritySignal, Span, TelemetryBatch } from '../../src/agent/model.ts';

interface Recorded {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A local intake that records every request and answers `status(path)` (200 unless told). */
async function recordingServer(status: (path: string) => number = () => 200) {
  const requests: Recorded[] = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      const code = status(req.url ?? '');
      res.writeHead(code, { 'Content-Type': 'text/plain' });
      res.end(code >= 300 ? `refused with ${code}` : 'ok');
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    connections: () => connections,
    find: (path: string) => requests.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port with nothing listening on it. */
async function deadUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

after(() => closeHttpAgents());

const resource: AgentResource = {
  functionName: 'Orders',
  functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:Orders',
  version: '7',
  region: 'eu-west-1',
  accountId: '123456789012',
  runtime: 'nodejs20.x',
  memorySize: 128,
  architecture: 'arm64',
  extensionVersion: '0.1.0',
  tags: ['service:orders', 'env:prod', 'version:1.2.3', 'team:payments'],
};

const T0 = 1_700_000_000_000; // ms
const rootSpan: Span = {
  traceId: '00000000000000010000000000000002',
  spanId: '00000000000000aa',
  name: 'aws.lambda',
  service: 'orders',
  resource: 'Orders',
  type: 'serverless',
  startMicros: T0 * 1000 + 123,
  durationMicros: 2500,
  error: true,
  meta: { 'span.kind': 'server', 'error.message': 'boom', request_id: 'req-1' },
  metrics: { _sampling_priority_v1: 2, 'http.status_code': 500 },
  requestId: 'req-1',
};
const childSpan: Span = {
  traceId: '00000000000000010000000000000002',
  spanId: '00000000000000bb',
  parentId: '00000000000000aa',
  name: 'http.request',
  service: 'payments-api',
  resource: 'GET /pay',
  startMicros: T0 * 1000 + 500,
  durationMicros: 1000,
  error: false,
  meta: { 'span.kind': 'client' },
  metrics: {},
};
const otherTraceSpan: Span = { ...childSpan, traceId: '0000000000000000000000000000000f', spanId: '00000000000000cc', parentId: undefined };

const metrics: MetricPoint[] = [
  { name: 'orders.placed', type: 'count', value: 3, tags: ['shop:eu'], timestamp: T0 },
  { name: 'orders.placed', type: 'count', value: 4, tags: ['shop:eu'], timestamp: T0 + 10_000 },
  { name: 'queue.depth', type: 'gauge', value: 12.5, tags: [], timestamp: T0 },
  { name: 'users.unique', type: 'set', value: 2, tags: ['service:custom'], timestamp: T0 },
  { name: 'aws.lambda.enhanced.duration', type: 'distribution', value: 7, values: [1, 2, 4], weights: [1, 3, 2.4], tags: ['cold_start:true'], timestamp: T0, requestId: 'req-1' },
];

const logs: LogRecord[] = [
  { timestamp: T0, source: 'function', requestId: 'req-1', level: 'error', message: '{"msg":"failed","user":{"id":7,"vip":true},"tags":["a",1]}', attributes: { msg: 'failed', user: { id: 7, vip: true }, tags: ['a', 1] } },
  { timestamp: T0 + 1, source: 'platform', message: 'START RequestId: req-1' },
];

const signal: SecuritySignal = {
  timestamp: T0,
  requestId: 'req-1',
  ruleId: 'crs-942-100',
  ruleName: 'SQL injection',
  category: 'sql_injection',
  parameter: 'server.request.query.q',
  value: "' OR 1=1 --",
  clientIp: '203.0.113.9',
  trigger: 'function-url',
  blocked: false,
};

function batch(parts: Partial<TelemetryBatch> = {}): TelemetryBatch {
  return {
    resource,
    metrics: [],
    spans: [],
    logs: [],
    security: [],
    dropped: { metrics: 0, spans: 0, logs: 0, security: 0 },
    sentAt: T0 + 5000,
    ...parts,
  };
}

const fullBatch = () => batch({ metrics, spans: [rootSpan, childSpan, otherTraceSpan], logs, security: [signal] });

async function rejection(promise: Promise<unknown>): Promise<BackendSendError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof BackendSendError, `expected a BackendSendError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

describe('postBody', () => {
  test('resolves with any status and the answer, over one kept-alive connection', async () => {
    const server = await recordingServer((path) => (path === '/missing' ? 404 : 200));
    try {
      const first = await postBody(`${server.url}/a`, '{"x":1}', { headers: { 'Content-Type': 'application/json' } });
      const second = await postBody(`${server.url}/missing`, Buffer.from('x'));
      assert.equal(first.status, 200);
      assert.equal(first.body.toString(), 'ok');
      assert.equal(second.status, 404);
      assert.equal(second.body.toString(), 'refused with 404');
      assert.equal(server.connections(), 1, 'the second request reused the first connection');
      assert.equal(server.requests[0].method, 'POST');
      assert.equal(server.requests[0].headers['content-length'], '7');
      assert.equal(server.requests[0].body.toString(), '{"x":1}');
    } finally {
      await server.close();
    }
  });

  test('times out when no answer comes', async () => {
    const server = http.createServer(() => {}); // never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      await assert.rejects(postBody(url, 'x', { timeoutMs: 50 }), (e: unknown) => e instanceof HttpRequestError && e.code === 'ETIMEDOUT');
      const controller = new AbortController();
      const pending = postBody(url, 'x', { signal: controller.signal });
      setImmediate(() => controller.abort(new Error('flush cancelled')));
      await assert.rejects(pending, (e: unknown) => e instanceof HttpRequestError && e.code === 'EABORTED');
      await assert.rejects(postBody(url, 'x', { signal: AbortSignal.abort() }), (e: unknown) => e instanceof HttpRequestError && e.code === 'EABORTED');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('rejects when nothing listens, and on URLs it cannot post to', async () => {
    await assert.rejects(postBody(`${await deadUrl()}/x`, 'x'), (e: unknown) => e instanceof HttpRequestError && e.code === 'ENETWORK');
    await assert.rejects(postBody('not a url', 'x'), (e: unknown) => e instanceof HttpRequestError && e.code === 'EBADURL' && /not a URL/.test(e.message));
    await assert.rejects(postBody('ftp://example.com/x', 'x'), (e: unknown) => e instanceof HttpRequestError && e.code === 'EBADURL');
    const refused = await rejection(postAccepted('test', 'not a url', 'x', {}, () => false));
    assert.equal(refused.permanent, true, 'a malformed endpoint never gets better');
    const down = await rejection(postAccepted('test', `${await deadUrl()}/x`, 'x', {}, () => false));
    assert.equal(down.permanent, false);
  });

  test('a kept-alive socket the server dropped is retried once on a fresh one', async () => {
    // A raw server: answers the first request of each connection, then drops the connection
    // when a second request arrives on it, as a server does after its keep-alive timeout.
    let answered = 0;
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      let buffered = '';
      let requestsOnSocket = 0;
      socket.on('data', (chunk) => {
        buffered += chunk.toString('latin1');
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(buffered)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        buffered = '';
        requestsOnSocket++;
        if (requestsOnSocket > 1) {
          socket.destroy();
          return;
        }
        answered++;
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      assert.equal((await postBody(url, 'one')).status, 200);
      assert.equal((await postBody(url, 'two')).status, 200);
      assert.equal(answered, 2);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('a huge answer is cut to 64 KiB, not buffered whole', async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end(Buffer.alloc(1024 * 1024, 'a')));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const response = await postBody(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, 'x');
      assert.equal(response.status, 200);
      assert.equal(response.body.length, 64 * 1024);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('NimbusBackend', () => {
  test('POSTs the batch as JSON to the endpoint', async () => {
    const server = await recordingServer();
    try {
      const sent = fullBatch();
      await new NimbusBackend({ endpoint: `${server.url}/agent/v1/telemetry` }).send(sent);
      const [request] = server.requests;
      assert.equal(request.path, '/agent/v1/telemetry');
      assert.equal(request.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(request.body.toString()), JSON.parse(JSON.stringify(sent)));
    } finally {
      await server.close();
    }
  });

  test('4xx is permanent (except 429); 429, 5xx and a dead server are retried', async () => {
    let status = 400;
    const server = await recordingServer(() => status);
    try {
      const backend = new NimbusBackend({ endpoint: `${server.url}/intake` });
      for (const [code, permanent] of [[400, true], [413, true], [429, false], [500, false], [503, false]] as const) {
        status = code;
        const error = await rejection(backend.send(batch({ logs })));
        assert.equal(error.permanent, permanent, `status ${code}`);
        assert.equal(error.status, code);
        assert.match(error.message, new RegExp(`answered ${code}: refused with ${code}`));
      }
      const down = await rejection(new NimbusBackend({ endpoint: `${await deadUrl()}/intake` }).send(batch({ logs })));
      assert.equal(down.permanent, false);
    } finally {
      await server.close();
    }
  });
});

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- walking decoded JSON in assertions

function attrs(list: Json[]): Record<string, unknown> {
  return Object.fromEntries(list.map((kv) => [kv.key, Object.values(kv.value)[0]]));
}

describe('OtlpBackend', () => {
  test('sends traces, metrics and logs as OTLP/HTTP JSON with the resource and the headers given', async () => {
    const server = await recordingServer();
    try {
      await new OtlpBackend({ endpoint: `${server.url}/`, headers: { Authorization: 'Bearer t0k' } }).send(fullBatch());
      assert.deepEqual(server.requests.map((r) => r.path).sort(), ['/v1/logs', '/v1/metrics', '/v1/traces']);
      for (const request of server.requests) {
        assert.equal(request.headers['content-type'], 'application/json');
        assert.equal(request.headers.authorization, 'Bearer t0k');
      }

      const traces = JSON.parse(server.find('/v1/traces')[0].body.toString()) as Json;
      const services = traces.resourceSpans.map((rs: Json) => attrs(rs.resource.attributes)['service.name']);
      assert.deepEqual(services, ['orders', 'payments-api']);
      const res = attrs(traces.resourceSpans[0].resource.attributes);
      assert.equal(res['faas.name'], 'Orders');
      assert.equal(res['faas.version'], '7');
      assert.equal(res['faas.max_memory'], String(128 * 1024 * 1024));
      assert.equal(res['cloud.provider'], 'aws');
      assert.equal(res['cloud.platform'], 'aws_lambda');
      assert.equal(res['cloud.region'], 'eu-west-1');
      assert.equal(res['cloud.account.id'], '123456789012');
      assert.equal(res['team'], 'payments');
      assert.equal(res['env'], 'prod');
      assert.equal(traces.resourceSpans[0].scopeSpans[0].scope.name, 'nimbus-agent');

      const root = traces.resourceSpans[0].scopeSpans[0].spans[0];
      assert.equal(root.traceId, '00000000000000010000000000000002');
      assert.equal(root.spanId, '00000000000000aa');
      assert.equal(root.parentSpanId, undefined);
      assert.equal(root.name, 'aws.lambda');
      assert.equal(root.kind, 2);
      assert.equal(root.startTimeUnixNano, `${T0 * 1000 + 123}000`);
      assert.equal(root.endTimeUnixNano, `${T0 * 1000 + 123 + 2500}000`);
      assert.deepEqual(root.status, { code: 2, message: 'boom' });
      const rootAttrs = attrs(root.attributes);
      assert.equal(rootAttrs['error.message'], 'boom');
      assert.equal(rootAttrs['http.status_code'], 500);
      assert.equal(rootAttrs['resource.name'], 'Orders');
      assert.equal(rootAttrs['faas.invocation_id'], 'req-1');
      assert.equal(rootAttrs['span.kind'], undefined, 'carried by kind');
      const child = traces.resourceSpans[1].scopeSpans[0].spans[0];
      assert.equal(child.parentSpanId, '00000000000000aa');
      assert.equal(child.kind, 3);
      assert.deepEqual(child.status, {});

      const metricsBody = JSON.parse(server.find('/v1/metrics')[0].body.toString()) as Json;
      const byName = Object.fromEntries(metricsBody.resourceMetrics[0].scopeMetrics[0].metrics.map((m: Json) => [m.name, m]));
      assert.equal(byName['orders.placed'].sum.aggregationTemporality, 1);
      assert.equal(byName['orders.placed'].sum.isMonotonic, true);
      assert.deepEqual(byName['orders.placed'].sum.dataPoints.map((p: Json) => p.asDouble), [3, 4]);
      assert.equal(byName['orders.placed'].sum.dataPoints[1].timeUnixNano, `${T0 + 10_000}000000`);
      assert.deepEqual(attrs(byName['orders.placed'].sum.dataPoints[0].attributes), { shop: 'eu' });
      assert.equal(byName['queue.depth'].gauge.dataPoints[0].asDouble, 12.5);
      assert.equal(byName['users.unique'].gauge.dataPoints[0].asDouble, 2);
      const histogram = byName['aws.lambda.enhanced.duration'].histogram;
      assert.equal(histogram.aggregationTemporality, 1);
      const [hp] = histogram.dataPoints;
      assert.equal(hp.count, String(Math.round(1 + 3 + 2.4)));
      assert.equal(hp.sum, 1 * 1 + 2 * 3 + 4 * 2.4);
      assert.equal(hp.min, 1);
      assert.equal(hp.max, 4);
      assert.equal(hp.bucketCounts, undefined);

      const logsBody = JSON.parse(server.find('/v1/logs')[0].body.toString()) as Json;
      const records = logsBody.resourceLogs[0].scopeLogs[0].logRecords;
      assert.equal(records.length, 3, 'two logs and the security signal');
      assert.equal(records[0].timeUnixNano, `${T0}000000`);
      assert.equal(records[0].severityText, 'error');
      assert.equal(records[0].severityNumber, 17);
      assert.equal(records[0].body.stringValue, logs[0].message);
      const logAttrs = attrs(records[0].attributes);
      assert.equal(logAttrs['aws.lambda.request_id'], 'req-1');
      assert.equal(logAttrs['msg'], 'failed');
      assert.equal(logAttrs['user.id'], '7', 'integers as OTLP JSON intValue strings');
      assert.equal(logAttrs['user.vip'], true);
      assert.deepEqual(logAttrs['tags'], { values: [{ stringValue: 'a' }, { intValue: '1' }] });
      assert.equal(records[1].severityText, undefined);
      assert.equal(attrs(records[1].attributes)['aws.lambda.request_id'], undefined);
      const securityAttrs = attrs(records[2].attributes);
      assert.equal(securityAttrs['security.rule.id'], 'crs-942-100');
      assert.equal(securityAttrs['client.address'], '203.0.113.9');
    } finally {
      await server.close();
    }
  });

  test('only the signals that have something are sent', async () => {
    const server = await recordingServer();
    try {
      await new OtlpBackend({ endpoint: server.url }).send(batch({ metrics: metrics.slice(0, 1) }));
      assert.deepEqual(server.requests.map((r) => r.path), ['/v1/metrics']);
    } finally {
      await server.close();
    }
  });

  test('a failing signal is retried alone; 400 everywhere is permanent; a dead collector is retried', async () => {
    let failing = (path: string): number => (path === '/v1/logs' ? 503 : 200);
    const server = await recordingServer((path) => failing(path));
    try {
      const backend = new OtlpBackend({ endpoint: server.url });
      const partial = await rejection(backend.send(fullBatch()));
      assert.equal(partial.permanent, false);
      assert.deepEqual(partial.accepted.sort(), ['metrics', 'spans']);
      assert.deepEqual(partial.rejected, []);
      assert.match(partial.message, /\/v1\/logs answered 503/);

      failing = () => 400;
      const refused = await rejection(backend.send(fullBatch()));
      assert.equal(refused.permanent, true);

      const down = await rejection(new OtlpBackend({ endpoint: await deadUrl() }).send(fullBatch()));
      assert.equal(down.permanent, false);
      assert.deepEqual(down.accepted, []);
    } finally {
      await server.close();
    }
  });
});

describe('DatadogBackend', () => {
  const options = (url: string) => ({ apiKey: 'dd-key-123', metricsUrl: url, logsUrl: `${url}/`, tracesUrl: url });

  test('metrics: series v2 for counts, gauges and sets; distribution points with weights expanded', async () => {
    const server = await recordingServer();
    try {
      await new DatadogBackend(options(server.url)).send(batch({ metrics }));
      const [seriesRequest] = server.find('/api/v2/series');
      assert.equal(seriesRequest.headers['dd-api-key'], 'dd-key-123');
      assert.equal(seriesRequest.headers['content-type'], 'application/json');
      const { series } = JSON.parse(seriesRequest.body.toString()) as Json;
      const placed = series.find((s: Json) => s.metric === 'orders.placed');
      assert.equal(placed.type, 1);
      assert.deepEqual(placed.points, [
        { timestamp: T0 / 1000, value: 3 },
        { timestamp: T0 / 1000 + 10, value: 4 },
      ]);
      assert.deepEqual(placed.tags, ['shop:eu', 'service:orders', 'env:prod', 'version:1.2.3', 'team:payments']);
      assert.deepEqual(placed.resources, [{ name: resource.functionArn, type: 'host' }]);
      assert.equal(series.find((s: Json) => s.metric === 'queue.depth').type, 3);
      const set = series.find((s: Json) => s.metric === 'users.unique');
      assert.equal(set.type, 3);
      assert.deepEqual(set.tags, ['service:custom', 'env:prod', 'version:1.2.3', 'team:payments'], "the point's own service wins");

      const [distRequest] = server.find('/api/v1/distribution_points');
      assert.equal(distRequest.headers['dd-api-key'], 'dd-key-123');
      const dist = (JSON.parse(distRequest.body.toString()) as Json).series;
      assert.equal(dist.length, 1);
      assert.equal(dist[0].metric, 'aws.lambda.enhanced.duration');
      assert.equal(dist[0].type, 'distribution');
      assert.deepEqual(dist[0].points, [[T0 / 1000, [1, 2, 2, 2, 4, 4]]], 'weight 3 → three times; 2.4 → twice');
      assert.ok(dist[0].tags.includes('cold_start:true'));
    } finally {
      await server.close();
    }
  });

  test('logs: intake entries with source, service, host, status, tags, request id and the JSON fields', async () => {
    const server = await recordingServer();
    try {
      await new DatadogBackend(options(server.url)).send(batch({ logs }));
      const [request] = server.find('/api/v2/logs');
      assert.equal(request.headers['dd-api-key'], 'dd-key-123');
      const entries = JSON.parse(request.body.toString()) as Json[];
      assert.equal(entries.length, 2);
      assert.equal(entries[0].message, logs[0].message);
      assert.equal(entries[0].ddsource, 'lambda');
      assert.equal(entries[0].service, 'orders');
      assert.equal(entries[0].hostname, resource.functionArn);
      assert.equal(entries[0].status, 'error');
      assert.equal(entries[0].timestamp, T0);
      assert.deepEqual(entries[0].lambda, { arn: resource.functionArn, request_id: 'req-1' });
      assert.deepEqual(entries[0].user, { id: 7, vip: true });
      const tags = entries[0].ddtags.split(',');
      for (const tag of ['functionname:orders', 'region:eu-west-1', 'account_id:123456789012', 'env:prod', 'team:payments']) {
        assert.ok(tags.includes(tag), tag);
      }
      assert.equal(entries[1].status, 'info');
      assert.deepEqual(entries[1].lambda, { arn: resource.functionArn });
    } finally {
      await server.close();
    }
  });

  test('logs: at most 1000 entries and 5 MiB per request; a message is cut at 1 MiB', async () => {
    const server = await recordingServer();
    try {
      const many = Array.from({ length: 1001 }, (_, i): LogRecord => ({ timestamp: T0 + i, source: 'function', message: `l${i}` }));
      const huge: LogRecord[] = Array.from({ length: 6 }, (_, i) => ({ timestamp: T0 + i, source: 'function', message: `${i}`.repeat(1024 * 1024 + 10) }));
      await new DatadogBackend(options(server.url)).send(batch({ logs: [...many, ...huge] }));
      const bodies = server.find('/api/v2/logs').map((r) => r.body);
      for (const body of bodies) assert.ok(body.length <= 5 * 1024 * 1024, `${body.length} bytes`);
      // The requests go out concurrently, so they may arrive in any order; each keeps its own in order.
      const entries = bodies.map((b) => JSON.parse(b.toString()) as Json[]).sort((a, b) => a[0].timestamp - b[0].timestamp);
      assert.ok(entries.every((list) => list.length <= 1000));
      assert.equal(entries.flat().length, 1007);
      const small = entries.flat().filter((e) => e.message.length < 10);
      assert.ok(small.map((e) => e.message).join() === many.map((l) => l.message).join(), 'every small entry, in order');
      const cut = entries.flat().filter((e) => e.message.length >= 10);
      assert.equal(cut.length, 6);
      for (const entry of cut) assert.equal(Buffer.byteLength(entry.message), 1024 * 1024);
    } finally {
      await server.close();
    }
  });

  test('traces: a protobuf AgentPayload with 64-bit ids, the upper trace id bits in _dd.p.tid, one chunk per trace', async () => {
    const server = await recordingServer();
    try {
      await new DatadogBackend(options(server.url)).send(batch({ spans: [rootSpan, childSpan, otherTraceSpan] }));
      const [request] = server.find('/api/v0.2/traces');
      assert.equal(request.headers['dd-api-key'], 'dd-key-123');
      assert.equal(request.headers['content-type'], 'application/x-protobuf');
      assert.equal(request.headers['x-datadog-reported-languages'], 'nodejs');
      const payload = decodeAgentPayload(request.body);
      assert.equal(payload.env, 'prod');
      assert.equal(payload.agentVersion, '0.1.0');
      assert.equal(payload.tracerPayloads.length, 1);
      const [tracer] = payload.tracerPayloads;
      assert.equal(tracer.languageName, 'nodejs');
      assert.equal(tracer.languageVersion, '20.x');
      assert.equal(tracer.appVersion, '1.2.3');
      assert.equal(tracer.chunks.length, 2);
      const [chunk, other] = tracer.chunks;
      assert.equal(chunk.priority, 2, "the root span's sampling priority");
      assert.equal(chunk.origin, 'lambda');
      assert.equal(other.priority, 1);
      const [root, child] = chunk.spans;
      assert.equal(root.traceID, 2n);
      assert.equal(root.meta['_dd.p.tid'], '0000000000000001');
      assert.equal(root.spanID, 0xaan);
      assert.equal(root.parentID, 0n);
      assert.equal(root.start, BigInt(T0 * 1000 + 123) * 1000n);
      assert.equal(root.duration, 2_500_000n);
      assert.equal(root.error, 1);
      assert.equal(root.service, 'orders');
      assert.equal(root.name, 'aws.lambda');
      assert.equal(root.resource, 'Orders');
      assert.equal(root.type, 'serverless');
      assert.equal(root.meta['error.message'], 'boom');
      assert.equal(root.metrics['http.status_code'], 500);
      assert.equal(child.parentID, 0xaan);
      assert.equal(child.error, 0);
      assert.equal(other.spans[0].traceID, 15n);
      assert.equal(other.spans[0].meta['_dd.p.tid'], undefined, 'upper 64 bits are zero');
    } finally {
      await server.close();
    }
  });

  test('traces: payloads past 12 MB are split between chunks', async () => {
    const server = await recordingServer();
    try {
      const spans = Array.from({ length: 13 }, (_, i): Span => ({
        ...otherTraceSpan,
        traceId: (i + 1).toString(16).padStart(32, '0'),
        meta: { blob: 'x'.repeat(1_000_000) },
      }));
      await new DatadogBackend(options(server.url)).send(batch({ spans }));
      const requests = server.find('/api/v0.2/traces');
      assert.ok(requests.length >= 2, `${requests.length} payloads`);
      // Concurrent requests arrive in any order: every trace exactly once is what counts.
      const traceIds = requests.flatMap((r) => decodeAgentPayload(r.body).tracerPayloads[0].chunks.map((c) => c.spans[0].traceID));
      assert.deepEqual(traceIds.sort((a, b) => (a < b ? -1 : 1)), spans.map((_, i) => BigInt(i + 1)));
      for (const r of requests) assert.ok(r.body.length <= 12_000_000);
    } finally {
      await server.close();
    }
  });

  test('security signals alone send nothing (Datadog shows attacks on the span)', async () => {
    const server = await recordingServer();
    try {
      await new DatadogBackend(options(server.url)).send(batch({ security: [signal] }));
      assert.equal(server.requests.length, 0);
    } finally {
      await server.close();
    }
  });

  test('403 is permanent; 5xx and a dead intake are retried, naming what got through', async () => {
    let status = (_path: string): number => 403;
    const server = await recordingServer((path) => status(path));
    try {
      const backend = new DatadogBackend(options(server.url));
      const forbidden = await rejection(backend.send(fullBatch()));
      assert.equal(forbidden.permanent, true);
      assert.equal(forbidden.status, 403);

      status = (path) => (path === '/api/v0.2/traces' ? 500 : 200);
      const partial = await rejection(backend.send(fullBatch()));
      assert.equal(partial.permanent, false);
      assert.deepEqual(partial.accepted.sort(), ['logs', 'metrics']);

      status = (path) => (path === '/api/v1/distribution_points' ? 502 : 200);
      const metricsHalf = await rejection(backend.send(fullBatch()));
      assert.ok(!metricsHalf.accepted.includes('metrics'), 'metrics count as delivered only when every metrics request was');

      const down = await rejection(new DatadogBackend(options(await deadUrl())).send(fullBatch()));
      assert.equal(down.permanent, false);
    } finally {
      await server.close();
    }
  });

  test('decodeAgentPayload refuses bytes that are not a payload', () => {
    assert.throws(() => decodeAgentPayload(Buffer.from('{"not":"protobuf"}')), DatadogPayloadError);
    assert.throws(() => decodeAgentPayload(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f])), DatadogPayloadError);
  });
});
