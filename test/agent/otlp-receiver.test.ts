import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { CumulativeToDelta, decodeOtlpLogs, decodeOtlpMetrics, decodeOtlpTraces, OtlpPayloadError } from '../../src/agent/otlp/decode.ts';
import { startOtlpReceiver } from '../../src/agent/otlp/receiver.ts';
import type { LogRecord, MetricPoint, Span } from '../../src/agent/model.ts';

type Compression = NonNullable<ConstructorParameters<typeof OTLPTraceExporter>[0]>['compression'];

const TRACE_ID = '5b8efff798038103d269b633813fc60c';
const T0 = '1700000000000000000';

async function startReceiver(maxBodyBytes?: number) {
  const spans: Span[] = [];
  const points: MetricPoint[] = [];
  const logs: LogRecord[] = [];
  const receiver = await startOtlpReceiver({
    host: '127.0.0.1',
    port: 0,
    onSpans: (s) => spans.push(...s),
    onMetrics: (p) => points.push(...p),
    onLogs: (l) => logs.push(...l),
    maxBodyBytes,
  });
  return { receiver, spans, points, logs };
}

async function post(port: number, path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers });
  return { status: response.status, body: await response.text() };
}

function sum(name: string, value: number, temporality: number, start = T0, attributes: unknown[] = []) {
  return {
    resourceMetrics: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'billing' } }] },
        scopeMetrics: [{ metrics: [{ name, sum: { aggregationTemporality: temporality, isMonotonic: true, dataPoints: [{ asInt: String(value), startTimeUnixNano: start, timeUnixNano: '1700000001000000000', attributes }] } }] }],
      },
    ],
  };
}

describe('decodeOtlpTraces', () => {
  const payload = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'cart' } }, { key: 'cloud.region', value: { stringValue: 'eu-west-1' } }] },
        scopeSpans: [
          {
            scope: { name: 'my-lib', version: '1' },
            spans: [
              {
                traceId: TRACE_ID.toUpperCase(),
                spanId: '051581bf3cb55c13',
                parentSpanId: 'aaaaaaaaaaaaaaaa',
                name: 'GET /items',
                kind: 2,
                startTimeUnixNano: '1700000000000001500',
                endTimeUnixNano: '1700000000250001000',
                attributes: [
                  { key: 'http.method', value: { stringValue: 'GET' } },
                  { key: 'http.status_code', value: { intValue: '500' } },
                  { key: 'ratio', value: { doubleValue: 0.5 } },
                  { key: 'cached', value: { boolValue: false } },
                  { key: 'ids', value: { arrayValue: { values: [{ intValue: 1 }, { stringValue: 'x' }] } } },
                  { key: 'obj', value: { kvlistValue: { values: [{ key: 'a', value: { stringValue: 'b' } }] } } },
                  { key: 'raw', value: { bytesValue: 'AQI=' } },
                ],
                status: { code: 2, message: 'boom' },
                events: [{ name: 'exception', timeUnixNano: T0, attributes: [{ key: 'exception.type', value: { stringValue: 'TypeError' } }, { key: 'exception.stacktrace', value: { stringValue: 'at x' } }] }],
              },
              { traceId: TRACE_ID, spanId: 'aaaaaaaaaaaaaaaa', parentSpanId: '', name: 'root', startTimeUnixNano: T0, endTimeUnixNano: T0 },
            ],
          },
        ],
      },
    ],
  };

  test('maps OTLP spans to Datadog-shaped spans', () => {
    const [span, root] = decodeOtlpTraces(payload);
    assert.equal(span.traceId, TRACE_ID);
    assert.equal(span.spanId, '051581bf3cb55c13');
    assert.equal(span.parentId, 'aaaaaaaaaaaaaaaa');
    assert.equal(span.service, 'cart');
    assert.equal(span.name, 'GET /items');
    assert.equal(span.resource, 'GET /items');
    assert.equal(span.startMicros, 1_700_000_000_000_002);
    assert.equal(span.durationMicros, 250_000);
    assert.equal(span.error, true);
    assert.deepEqual(span.meta, {
      'cloud.region': 'eu-west-1',
      'http.method': 'GET',
      cached: 'false',
      ids: '[1,"x"]',
      obj: '{"a":"b"}',
      raw: 'AQI=',
      'otel.scope.name': 'my-lib',
      'span.kind': 'server',
      'error.message': 'boom',
      'error.type': 'TypeError',
      'error.stack': 'at x',
    });
    assert.deepEqual(span.metrics, { 'http.status_code': 500, ratio: 0.5 });
    assert.equal(root.parentId, undefined);
    assert.equal(root.error, false);
    assert.equal(root.meta['span.kind'], undefined);
  });

  test('accepts an empty request and enum names', () => {
    assert.deepEqual(decodeOtlpTraces({}), []);
    const [span] = decodeOtlpTraces({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: TRACE_ID, spanId: '051581bf3cb55c13', name: 'x', kind: 'SPAN_KIND_CLIENT', status: { code: 'STATUS_CODE_ERROR' }, startTimeUnixNano: 1, endTimeUnixNano: 2 }] }] }] });
    assert.equal(span.meta['span.kind'], 'client');
    assert.equal(span.error, true);
    assert.equal(span.service, 'unknown_service');
  });

  const validSpan = { traceId: TRACE_ID, spanId: '051581bf3cb55c13', name: 'x', startTimeUnixNano: T0, endTimeUnixNano: T0 };
  const wrap = (span: unknown) => ({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
  const bad: Array<[string, unknown, RegExp]> = [
    ['a non-object payload', [1], /must be a JSON object/],
    ['resourceSpans that is not an array', { resourceSpans: {} }, /resourceSpans must be an array/],
    ['a base64 trace id', wrap({ ...validSpan, traceId: 'W47/95gDgQPSabYzgT/GDA==' }), /traceId must be 32 hex digits/],
    ['an all-zero span id', wrap({ ...validSpan, spanId: '0000000000000000' }), /spanId must be 16 hex digits/],
    ['a missing name', wrap({ ...validSpan, name: undefined }), /name must be a non-empty string/],
    ['a time that is not a number', wrap({ ...validSpan, startTimeUnixNano: 'yesterday' }), /startTimeUnixNano must be nanoseconds/],
    ['an unknown kind', wrap({ ...validSpan, kind: 9 }), /kind must be a span kind/],
    ['an attribute without a key', wrap({ ...validSpan, attributes: [{ value: { stringValue: 'x' } }] }), /attributes\[0\]\.key must be a string/],
    ['a string where an int is expected', wrap({ ...validSpan, attributes: [{ key: 'n', value: { intValue: 'ten' } }] }), /intValue must be an integer/],
  ];
  for (const [what, json, message] of bad) {
    test(`rejects ${what}`, () => {
      assert.throws(() => decodeOtlpTraces(json), (error: unknown) => error instanceof OtlpPayloadError && message.test(error.message));
    });
  }
});

describe('decodeOtlpMetrics', () => {
  test('maps gauges, sums and histograms, with attributes as tags', () => {
    const json = {
      resourceMetrics: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'billing' } }] },
          scopeMetrics: [
            {
              metrics: [
                { name: 'temp', gauge: { dataPoints: [{ asDouble: 21.5, timeUnixNano: '1700000001000000000', attributes: [{ key: 'room', value: { stringValue: 'a' } }] }] } },
                { name: 'requests', sum: { aggregationTemporality: 1, isMonotonic: true, dataPoints: [{ asInt: '7', timeUnixNano: '1700000001000000000' }] } },
                { name: 'in_flight', sum: { aggregationTemporality: 2, isMonotonic: false, dataPoints: [{ asInt: '-3', timeUnixNano: '1700000001000000000' }] } },
                { name: 'latency', histogram: { aggregationTemporality: 1, dataPoints: [{ count: '4', sum: 100, bucketCounts: ['4'], explicitBounds: [], timeUnixNano: '1700000001000000000' }] } },
                { name: 'no_sum', histogram: { aggregationTemporality: 1, dataPoints: [{ count: '4' }] } },
                { name: 'summary', summary: { dataPoints: [] } },
              ],
            },
          ],
        },
      ],
    };
    const points = decodeOtlpMetrics(json, new CumulativeToDelta());
    assert.deepEqual(points, [
      { name: 'temp', type: 'gauge', value: 21.5, tags: ['room:a', 'service:billing'], timestamp: 1_700_000_001_000 },
      { name: 'requests', type: 'count', value: 7, tags: ['service:billing'], timestamp: 1_700_000_001_000 },
      { name: 'in_flight', type: 'gauge', value: -3, tags: ['service:billing'], timestamp: 1_700_000_001_000 },
      { name: 'latency', type: 'distribution', value: 100, values: [25], weights: [4], tags: ['service:billing'], timestamp: 1_700_000_001_000 },
    ]);
  });

  test('turns a cumulative monotonic sum into per-export deltas, and restarts on reset', () => {
    const state = new CumulativeToDelta();
    const attributes = [{ key: 'route', value: { stringValue: '/a' } }];
    assert.equal(decodeOtlpMetrics(sum('hits', 5, 2, T0, attributes), state)[0].value, 5);
    assert.equal(decodeOtlpMetrics(sum('hits', 12, 2, T0, attributes), state)[0].value, 7);
    assert.equal(decodeOtlpMetrics(sum('hits', 3, 2, T0, []), state)[0].value, 3, 'another attribute set is another stream');
    assert.equal(decodeOtlpMetrics(sum('hits', 2, 2, T0, attributes), state)[0].value, 2, 'a decrease is a reset');
    assert.equal(decodeOtlpMetrics(sum('hits', 9, 2, '1700000005000000000', attributes), state)[0].value, 9, 'a new start time is a new stream');
  });

  test('rejects bad metric shapes', () => {
    const state = new CumulativeToDelta();
    assert.throws(() => decodeOtlpMetrics({ resourceMetrics: [{ scopeMetrics: [{ metrics: [{ gauge: { dataPoints: [] } }] }] }] }, state), /name must be a non-empty string/);
    assert.throws(() => decodeOtlpMetrics(sum('x', 1, 7), state), /aggregationTemporality must be 1 \(delta\) or 2/);
    assert.throws(() => decodeOtlpMetrics({ resourceMetrics: [{ scopeMetrics: [{ metrics: [{ name: 'g', gauge: { dataPoints: [{ asDouble: 'high' }] } }] }] }] }, state), /asDouble must be a finite number/);
    assert.throws(() => decodeOtlpMetrics({ resourceMetrics: [{ scopeMetrics: [{ metrics: [{ name: 'g', gauge: { dataPoints: [{}] } }] }] }] }, state), /must have asDouble or asInt/);
  });
});

describe('decodeOtlpLogs', () => {
  test('maps log records with level, body, attributes and request id', () => {
    const json = {
      resourceLogs: [
        {
          scopeLogs: [
            {
              logRecords: [
                {
                  timeUnixNano: '1700000002000000000',
                  severityText: 'WARN',
                  body: { stringValue: 'disk almost full' },
                  attributes: [{ key: 'faas.invocation_id', value: { stringValue: 'req-1' } }, { key: 'pct', value: { doubleValue: 91.5 } }],
                  traceId: TRACE_ID,
                  spanId: '051581bf3cb55c13',
                },
                { observedTimeUnixNano: '1700000003000000000', severityNumber: 17, body: { kvlistValue: { values: [{ key: 'event', value: { stringValue: 'x' } }] } }, attributes: [{ key: 'aws.lambda.request_id', value: { stringValue: 'req-2' } }] },
                { body: { intValue: '5' } },
              ],
            },
          ],
        },
      ],
    };
    const [first, second, third] = decodeOtlpLogs(json);
    assert.deepEqual(first, {
      timestamp: 1_700_000_002_000,
      source: 'function',
      level: 'warn',
      message: 'disk almost full',
      requestId: 'req-1',
      attributes: { 'faas.invocation_id': 'req-1', pct: 91.5, trace_id: TRACE_ID, span_id: '051581bf3cb55c13' },
    });
    assert.equal(second.timestamp, 1_700_000_003_000);
    assert.equal(second.level, 'error');
    assert.equal(second.message, '{"event":"x"}');
    assert.equal(second.requestId, 'req-2');
    assert.equal(third.message, '5');
    assert.equal(third.level, undefined);
    assert.equal(third.attributes, undefined);
    assert.ok(third.timestamp > 1_700_000_003_000, 'no time means now');
  });

  test('rejects bad log shapes', () => {
    assert.throws(() => decodeOtlpLogs({ resourceLogs: [{ scopeLogs: [{ logRecords: ['x'] }] }] }), /logRecords\[0\] must be an object/);
    assert.throws(() => decodeOtlpLogs({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ severityNumber: 99 }] }] }] }), /severityNumber must be an integer from 1 to 24/);
    assert.throws(() => decodeOtlpLogs({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: 5 } }] }] }] }), /stringValue must be a string/);
  });
});

describe('OTLP/HTTP receiver', () => {
  for (const compression of ['none', 'gzip']) {
    test(`receives linked parent and child spans from the OpenTelemetry SDK (compression ${compression})`, async (t) => {
      const { receiver, spans } = await startReceiver();
      const exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${receiver.port}/v1/traces`, compression: compression as Compression });
      const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'orders-otel' }),
        spanProcessors: [new SimpleSpanProcessor(exporter)],
      });
      t.after(async () => {
        await provider.shutdown();
        await receiver.close();
      });
      const tracer = provider.getTracer('nimbus-test');
      const parent = tracer.startSpan('handle-order', { kind: SpanKind.SERVER, attributes: { 'order.items': 3 } });
      const child = tracer.startSpan('load-cart', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'dynamodb' } }, trace.setSpan(ROOT_CONTEXT, parent));
      child.setStatus({ code: SpanStatusCode.ERROR, message: 'throttled' });
      child.end();
      parent.end();
      await provider.forceFlush();

      assert.equal(spans.length, 2);
      const parentSpan = spans.find((s) => s.name === 'handle-order');
      const childSpan = spans.find((s) => s.name === 'load-cart');
      assert.ok(parentSpan && childSpan);
      assert.equal(parentSpan.parentId, undefined);
      assert.equal(childSpan.parentId, parentSpan.spanId);
      assert.equal(childSpan.traceId, parentSpan.traceId);
      assert.equal(parentSpan.traceId, parent.spanContext().traceId);
      assert.equal(parentSpan.service, 'orders-otel');
      assert.equal(parentSpan.meta['span.kind'], 'server');
      assert.equal(parentSpan.metrics['order.items'], 3);
      assert.equal(childSpan.error, true);
      assert.equal(childSpan.meta['error.message'], 'throttled');
      assert.equal(childSpan.meta['otel.scope.name'], 'nimbus-test');
    });
  }

  test('accepts metrics and logs posted as JSON, gzip too', async (t) => {
    const { receiver, points, logs } = await startReceiver();
    t.after(() => receiver.close());
    const metrics = await post(receiver.port, '/v1/metrics', JSON.stringify(sum('hits', 4, 1)));
    assert.deepEqual(metrics, { status: 200, body: '{}' });
    const logBody = gzipSync(JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: 'hello' } }] }] }] }));
    const logged = await post(receiver.port, '/v1/logs', logBody, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    assert.equal(logged.status, 200);
    assert.equal(points[0].value, 4);
    assert.equal(logs[0].message, 'hello');
  });

  test('refuses protobuf with 415 and a message naming http/json', async (t) => {
    const { receiver } = await startReceiver();
    t.after(() => receiver.close());
    const reply = await post(receiver.port, '/v1/traces', Buffer.from([0x0a, 0x00]), { 'content-type': 'application/x-protobuf' });
    assert.equal(reply.status, 415);
    assert.match((JSON.parse(reply.body) as { message: string }).message, /only OTLP\/HTTP JSON.*OTEL_EXPORTER_OTLP_PROTOCOL=http\/json/);
    assert.equal((await post(receiver.port, '/v1/traces', '{}', { 'content-type': 'text/plain' })).status, 415);
  });

  test('answers 400 for invalid JSON, wrong shapes and corrupt gzip, and keeps serving', async (t) => {
    const { receiver, spans } = await startReceiver();
    t.after(() => receiver.close());
    const invalid = await post(receiver.port, '/v1/traces', '{"resourceSpans": [');
    assert.equal(invalid.status, 400);
    assert.match(invalid.body, /invalid JSON/);
    const shape = await post(receiver.port, '/v1/logs', '{"resourceLogs": 5}');
    assert.equal(shape.status, 400);
    assert.match(shape.body, /resourceLogs must be an array/);
    const corrupt = await post(receiver.port, '/v1/traces', Buffer.from('not gzip'), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    assert.equal(corrupt.status, 400);
    assert.match(corrupt.body, /not valid gzip/);
    const brotli = await post(receiver.port, '/v1/traces', '{}', { 'content-type': 'application/json', 'content-encoding': 'br' });
    assert.equal(brotli.status, 415);
    assert.equal((await fetch(`http://127.0.0.1:${receiver.port}/v1/traces`)).status, 404);
    assert.equal((await post(receiver.port, '/v2/traces', '{}')).status, 404);
    assert.equal((await post(receiver.port, '/v1/traces', '{}')).status, 200);
    assert.equal(spans.length, 0);
  });

  test('answers 413 for an oversized body, before and after gzip decoding', async (t) => {
    const { receiver } = await startReceiver(1024);
    t.after(() => receiver.close());
    const big = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: 'x'.repeat(5000) } }] }] }] });
    const plain = await post(receiver.port, '/v1/logs', big);
    assert.equal(plain.status, 413);
    const bomb = gzipSync(big);
    assert.ok(bomb.length < 1024, 'the compressed body itself is under the limit');
    const zipped = await post(receiver.port, '/v1/logs', bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    assert.equal(zipped.status, 413);
    assert.match(zipped.body, /exceeds 1024 bytes/);
  });
});
