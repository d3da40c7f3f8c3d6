import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ordersResource } from './resource.ts';
import { InvocationTracker } from '../../src/agent/invocation/invocation-tracker.ts';
import type { AgentResource, LogRecord, MetricPoint, SecuritySignal, Span, TelemetrySink } from '../../src/agent/model.ts';

class RecordingSink implements TelemetrySink {
  metrics: MetricPoint[] = [];
  spans: Span[] = [];
  logs: LogRecord[] = [];
  security: SecuritySignal[] = [];
  addMetric(point: MetricPoint): void {
    this.metrics.push(point);
  }
  addSpans(spans: Span[]): void {
    this.spans.push(...spans);
  }
  addLog(record: LogRecord): void {
    this.logs.push(record);
  }
  addSecurity(signal: SecuritySignal): void {
    this.security.push(signal);
  }
  lambdaSpans(): Span[] {
    return this.spans.filter((s) => s.name === 'aws.lambda');
  }
}

const resource: AgentResource = ordersResource();

function setup(options: { capture?: boolean; service?: string } = {}) {
  const sink = new RecordingSink();
  let clock = 1_700_000_000_000;
  const tracker = new InvocationTracker({
    sink,
    resource,
    now: () => clock,
    ...(options.capture !== undefined ? { captureLambdaPayload: options.capture } : {}),
    ...(options.service !== undefined ? { service: options.service } : {}),
  });
  return { sink, tracker, at: (ms: number) => (clock = 1_700_000_000_000 + ms), t: (ms: number) => 1_700_000_000_000 + ms };
}

const httpV2Event = (headers: Record<string, string>) =>
  Buffer.from(
    JSON.stringify({
      version: '2.0',
      routeKey: 'POST /orders',
      rawPath: '/orders',
      rawQueryString: '',
      headers: { 'user-agent': 'k6/0.50', ...headers },
      requestContext: {
        apiId: 'a1b2c3d4e5',
        domainName: 'a1b2c3d4e5.execute-api.us-east-1.amazonaws.com',
        http: { method: 'POST', path: '/orders', userAgent: 'k6/0.50' },
        stage: '$default',
      },
      body: '{}',
    }),
  );

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('InvocationTracker: the aws.lambda span', () => {
  test('cold HTTP invocation continuing a W3C trace, refined by runtimeDone', () => {
    const { sink, tracker, t } = setup();
    tracker.started('req-1', { functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:Orders-API:live', deadlineMs: t(3000), at: t(0) });
    tracker.eventSeen('req-1', httpV2Event({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }));
    tracker.finished('req-1', { status: 'success', response: json({ statusCode: 201, body: 'created' }), at: t(50) });
    // runtimeDone arrives later: its duration is the exact one.
    tracker.finished('req-1', { status: 'success', durationMs: 42.5, at: t(60) });
    assert.equal(sink.spans.length, 0, 'held until a drain');
    tracker.drain('flush');
    assert.equal(sink.spans.length, 1);
    const [span] = sink.spans;
    assert.match(span!.spanId, /^[0-9a-f]{16}$/);
    assert.deepEqual({ ...span, spanId: 'x' }, {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'x',
      parentId: 'b7ad6b7169203331',
      name: 'aws.lambda',
      service: 'aws.lambda',
      resource: 'Orders-API',
      type: 'serverless',
      startMicros: t(0) * 1000,
      durationMicros: 42_500,
      error: false,
      requestId: 'req-1',
      meta: {
        request_id: 'req-1',
        function_arn: 'arn:aws:lambda:us-east-1:123456789012:function:orders-api:live',
        function_version: '$LATEST',
        functionname: 'orders-api',
        cold_start: 'true',
        runtime: 'nodejs22.x',
        region: 'us-east-1',
        account_id: '123456789012',
        'span.kind': 'server',
        'function_trigger.event_source': 'api-gateway',
        'function_trigger.event_source_arn': 'arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5/stages/$default',
        'http.method': 'POST',
        'http.url': 'https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/orders',
        'http.url_details.path': '/orders',
        'http.route': '/orders',
        'http.useragent': 'k6/0.50',
        'http.status_code': '201',
      },
      metrics: { _sampling_priority_v1: 1, '_dd.top_level': 1 },
    });
  });

  test('the second invocation is warm, gets a new trace, and the first is sent when it starts', () => {
    const { sink, tracker, t } = setup({ service: 'orders' });
    tracker.started('req-1', { at: t(0) });
    tracker.finished('req-1', { status: 'success', response: json({ ok: true }), at: t(10) });
    tracker.started('req-2', { at: t(100) });
    assert.equal(sink.spans.length, 1, 'req-1 sent when req-2 started');
    // A runtimeDone for req-1 after it was sent neither resurrects nor duplicates it.
    tracker.finished('req-1', { status: 'success', durationMs: 9 });
    tracker.finished('req-2', { status: 'success', at: t(130) });
    tracker.drain('flush');
    const [first, second] = sink.lambdaSpans();
    assert.equal(sink.spans.length, 2);
    assert.equal(first!.meta.cold_start, 'true');
    assert.equal(first!.durationMicros, 10_000);
    assert.equal(second!.meta.cold_start, 'false');
    assert.equal(second!.service, 'orders');
    assert.equal(second!.parentId, undefined);
    assert.match(second!.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(second!.traceId, first!.traceId);
    assert.equal(second!.durationMicros, 30_000);
    assert.equal(second!.meta['http.status_code'], undefined, 'no HTTP trigger, no status');
  });

  test('an error body gives error.type, error.message and error.stack', () => {
    const { sink, tracker, t } = setup();
    tracker.started('req-1', { at: t(0) });
    const body = json({ errorType: 'TypeError', errorMessage: "Cannot read properties of undefined (reading 'id')", trace: ['TypeError: x', '    at handler (/var/task/index.js:3:20)'] });
    tracker.finished('req-1', { status: 'error', errorType: 'Unhandled', response: body, at: t(5) });
    tracker.drain('flush');
    const span = sink.spans[0]!;
    assert.equal(span.error, true);
    assert.equal(span.meta['error.type'], 'TypeError');
    assert.equal(span.meta['error.message'], "Cannot read properties of undefined (reading 'id')");
    assert.equal(span.meta['error.stack'], 'TypeError: x\n    at handler (/var/task/index.js:3:20)');
  });

  test('a non-JSON error body falls back to the error type header', () => {
    const { sink, tracker } = setup();
    tracker.started('r');
    tracker.finished('r', { status: 'error', errorType: 'Runtime.ExitError', response: Buffer.from('segfault') });
    tracker.drain('flush');
    assert.equal(sink.spans[0]!.meta['error.type'], 'Runtime.ExitError');
    assert.equal(sink.spans[0]!.meta['error.message'], undefined);
  });

  test('a 5xx HTTP response is an error; an HTTP API result without statusCode is a 200', () => {
    const { sink, tracker } = setup();
    tracker.eventSeen('a', httpV2Event({}));
    tracker.finished('a', { status: 'success', response: json({ statusCode: 503, body: 'down' }) });
    tracker.eventSeen('b', httpV2Event({}));
    tracker.finished('b', { status: 'success', response: json('hello') });
    tracker.eventSeen('c', httpV2Event({}));
    // A streamed HTTP response: JSON prelude, 8 NUL bytes, body.
    tracker.finished('c', { status: 'success', response: Buffer.concat([json({ statusCode: 418, headers: {} }), Buffer.alloc(8), Buffer.from('teapot')]) });
    tracker.drain('flush');
    const [a, b, c] = sink.spans;
    assert.equal(a!.meta['http.status_code'], '503');
    assert.equal(a!.error, true);
    assert.equal(b!.meta['http.status_code'], '200');
    assert.equal(b!.error, false);
    assert.equal(c!.meta['http.status_code'], '418');
  });

  test('a timeout from runtimeDone (no proxy): its status, error type and duration', () => {
    const { sink, tracker, t } = setup();
    tracker.started('r', { at: t(0), deadlineMs: t(3000) });
    tracker.finished('r', { status: 'timeout', errorType: 'Sandbox.Timedout', durationMs: 3000.12, at: t(3005) });
    tracker.drain('flush');
    const span = sink.spans[0]!;
    assert.equal(span.error, true);
    assert.equal(span.meta['error.type'], 'Sandbox.Timedout');
    assert.equal(span.meta['error.message'], 'Task timed out');
    assert.equal(span.durationMicros, 3_000_120);
  });

  test('a later, worse status refines a finished span; a better one does not', () => {
    const { sink, tracker } = setup();
    tracker.started('r');
    tracker.finished('r', { status: 'success' });
    tracker.finished('r', { status: 'failure', errorType: 'Runtime.ExitError' });
    tracker.finished('r', { status: 'success' });
    tracker.drain('flush');
    assert.equal(sink.spans[0]!.error, true);
    assert.equal(sink.spans[0]!.meta['error.type'], 'Runtime.ExitError');
  });

  test('drain("flush") keeps open invocations; shutdown closes them as errors', () => {
    const { sink, tracker, t, at } = setup();
    tracker.started('open', { at: t(0) });
    tracker.drain('flush');
    assert.equal(sink.spans.length, 0);
    at(500);
    tracker.drain('shutdown');
    const span = sink.spans[0]!;
    assert.equal(span.error, true);
    assert.equal(span.meta['error.type'], 'Shutdown');
    assert.equal(span.meta['error.message'], 'The environment shut down before the invocation finished');
    assert.equal(span.durationMicros, 500_000);
    tracker.drain('shutdown');
    assert.equal(sink.spans.length, 1, 'nothing twice');
  });

  test('drain("timeout") ends an open invocation at its deadline', () => {
    const { sink, tracker, t, at } = setup();
    tracker.started('open', { at: t(0), deadlineMs: t(3000) });
    at(3400);
    tracker.drain('timeout');
    const span = sink.spans[0]!;
    assert.equal(span.meta['error.type'], 'Timeout');
    assert.equal(span.durationMicros, 3_000_000);
  });

  test('tagRootSpan before the INVOKE (threat detection at /next) lands on the span', () => {
    const { sink, tracker } = setup();
    tracker.tagRootSpan('r', { 'appsec.event': 'true', '_dd.origin': 'appsec' }, { '_dd.appsec.enabled': 1, _sampling_priority_v1: 2 });
    tracker.started('r');
    tracker.tagRootSpan('r', { 'http.status_code': '403' });
    tracker.finished('r', { status: 'success' });
    tracker.drain('flush');
    const span = sink.spans[0]!;
    assert.equal(span.meta['appsec.event'], 'true');
    assert.equal(span.meta['_dd.origin'], 'appsec');
    assert.equal(span.meta['http.status_code'], '403');
    assert.equal(span.metrics['_dd.appsec.enabled'], 1);
    assert.equal(span.metrics._sampling_priority_v1, 2);
    assert.equal(span.meta.cold_start, 'true');
  });

  test('tags for an invocation already sent are ignored, not a new span', () => {
    const { sink, tracker } = setup();
    tracker.started('r');
    tracker.finished('r', { status: 'success' });
    tracker.drain('flush');
    tracker.tagRootSpan('r', { late: 'yes' });
    tracker.started('r');
    tracker.drain('shutdown');
    assert.equal(sink.spans.length, 1);
  });

  test('a finish for an invocation never started makes a span that ends then', () => {
    const { sink, tracker, t } = setup();
    tracker.finished('lost', { status: 'success', durationMs: 20, at: t(100) });
    tracker.drain('flush');
    assert.equal(sink.spans[0]!.startMicros, t(80) * 1000);
    assert.equal(sink.spans[0]!.durationMicros, 20_000);
  });

  test('the payload is captured when asked, truncated at 64 KiB', () => {
    const { sink, tracker } = setup({ capture: true });
    const big = Buffer.from(JSON.stringify({ data: 'x'.repeat(100_000) }));
    tracker.eventSeen('r', big);
    tracker.finished('r', { status: 'success', response: json({ statusCode: 200 }) });
    tracker.drain('flush');
    const meta = sink.spans[0]!.meta;
    assert.equal(meta['function.request']!.length, 64 * 1024);
    assert.equal(meta['function.request'], big.subarray(0, 64 * 1024).toString());
    assert.equal(meta['function.response'], '{"statusCode":200}');
    const off = setup();
    off.tracker.eventSeen('r', big);
    off.tracker.finished('r', { status: 'success' });
    off.tracker.drain('flush');
    assert.equal(off.sink.spans[0]!.meta['function.request'], undefined);
  });

  test('payloads that are not JSON objects, or broken JSON, give no trigger and no crash', () => {
    const { sink, tracker } = setup();
    const payloads = [Buffer.from('plain text'), Buffer.from('{"broken": '), Buffer.from('[1,2,3]'), Buffer.alloc(0), Buffer.from([0xff, 0xfe, 0x00]), Buffer.from('   {"headers": 7}')];
    payloads.forEach((p, i) => {
      tracker.eventSeen(`r${i}`, p);
      tracker.finished(`r${i}`, { status: 'success', response: Buffer.from('not json') });
    });
    tracker.drain('flush');
    assert.equal(sink.spans.length, payloads.length);
    for (const s of sink.spans) assert.equal(s.meta['function_trigger.event_source'], undefined);
  });

  test('trace context from an SQS message attribute, and from a direct invoke that forwards headers', () => {
    const { sink, tracker } = setup();
    const sqs = { Records: [{ eventSource: 'aws:sqs', eventSourceARN: 'arn:aws:sqs:us-east-1:1:q', body: 'x', messageAttributes: { _datadog: { stringValue: '{"x-datadog-trace-id":"1234","x-datadog-parent-id":"5678","x-datadog-sampling-priority":"2"}' } } }] };
    tracker.eventSeen('a', json(sqs));
    tracker.finished('a', { status: 'success' });
    tracker.eventSeen('b', json({ headers: { 'X-Amzn-Trace-Id': 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1' } }));
    tracker.finished('b', { status: 'success' });
    tracker.drain('flush');
    const [a, b] = sink.spans;
    assert.equal(a!.traceId, '000000000000000000000000000004d2');
    assert.equal(a!.parentId, '000000000000162e');
    assert.equal(a!.metrics._sampling_priority_v1, 2);
    assert.equal(a!.meta['function_trigger.event_source'], 'sqs');
    assert.equal(b!.traceId, '0000000000000000e1be46a994272793');
    assert.equal(b!.parentId, '53995c3f42cd8ad8');
  });
});

describe('InvocationTracker: joining tracer spans', () => {
  const tracerSpan = (over: Partial<Span> & Pick<Span, 'spanId' | 'startMicros'>): Span => ({
    traceId: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    name: 'express.request',
    service: 'orders',
    resource: 'GET /',
    durationMicros: 1000,
    error: false,
    meta: {},
    metrics: {},
    ...over,
  });

  test('a trace whose root starts in the invocation is rewritten under the aws.lambda span', () => {
    const { sink, tracker, t } = setup();
    tracker.started('r', { at: t(0) });
    tracker.eventSeen('r', httpV2Event({ 'x-datadog-trace-id': '1', 'x-datadog-parent-id': '2' }));
    const root = tracerSpan({ spanId: '1111111111111111', parentId: '0000000000000002', startMicros: t(5) * 1000 });
    const child = tracerSpan({ spanId: '2222222222222222', parentId: '1111111111111111', startMicros: t(6) * 1000, name: 'pg.query' });
    tracker.attachTracerSpans([root, child]);
    tracker.finished('r', { status: 'success', at: t(20) });
    tracker.drain('flush');
    const lambda = sink.lambdaSpans()[0]!;
    assert.equal(lambda.traceId, '00000000000000000000000000000001');
    assert.equal(lambda.parentId, '0000000000000002');
    assert.equal(root.traceId, lambda.traceId);
    assert.equal(root.parentId, lambda.spanId);
    assert.equal(root.requestId, 'r');
    assert.equal(child.traceId, lambda.traceId);
    assert.equal(child.parentId, '1111111111111111');
    assert.equal(child.requestId, 'r');
    assert.equal(sink.spans.length, 3);
  });

  test('a later batch of the same tracer trace follows the first one', () => {
    const { sink, tracker, t } = setup();
    tracker.started('r', { at: t(0) });
    tracker.attachTracerSpans([tracerSpan({ spanId: '1111111111111111', startMicros: t(1) * 1000 })]);
    const late = tracerSpan({ spanId: '3333333333333333', parentId: '1111111111111111', startMicros: t(2) * 1000 });
    tracker.attachTracerSpans([late]);
    tracker.finished('r', { status: 'success', at: t(10) });
    tracker.drain('flush');
    const lambda = sink.lambdaSpans()[0]!;
    assert.equal(late.traceId, lambda.traceId);
    assert.equal(late.parentId, '1111111111111111', 'its parent was in the earlier batch');
  });

  test('a root that started within a finished invocation joins it (late flush); one that started after waits for the next INVOKE', () => {
    const { sink, tracker, t } = setup();
    tracker.started('r', { at: t(0) });
    tracker.finished('r', { status: 'success', at: t(10) });
    tracker.drain('flush');
    const late = tracerSpan({ traceId: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', spanId: '4444444444444444', startMicros: t(5) * 1000 });
    const early = tracerSpan({ traceId: 'cccccccccccccccccccccccccccccccc', spanId: '5555555555555555', startMicros: t(12) * 1000 });
    tracker.attachTracerSpans([late, early]);
    const first = sink.lambdaSpans()[0]!;
    assert.equal(late.traceId, first.traceId);
    assert.equal(late.parentId, first.spanId);
    assert.equal(sink.spans.length, 2, 'the early span is held back');
    // The next INVOKE reaches the agent after the runtime already sent that span.
    tracker.started('next', { at: t(13) });
    assert.equal(early.requestId, 'next');
    assert.equal(sink.spans.length, 3);
    tracker.finished('next', { status: 'success', at: t(20) });
    tracker.drain('flush');
    const second = sink.lambdaSpans().find((s) => s.meta.request_id === 'next')!;
    assert.equal(early.traceId, second.traceId);
    assert.equal(early.parentId, second.spanId);
  });

  test('overlapping invocations: the request id in the root wins, else the latest started', () => {
    const { sink, tracker, t } = setup();
    tracker.started('first', { at: t(0) });
    tracker.started('second', { at: t(10) });
    const named = tracerSpan({ traceId: 'dddddddddddddddddddddddddddddddd', spanId: '6666666666666666', startMicros: t(20) * 1000, meta: { 'aws.lambda.request_id': 'first' } });
    const otel = tracerSpan({ traceId: 'abababababababababababababababab', spanId: '8888888888888888', startMicros: t(20) * 1000, meta: { 'faas.invocation_id': 'first' } });
    const anonymous = tracerSpan({ traceId: 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee', spanId: '7777777777777777', startMicros: t(20) * 1000 });
    tracker.attachTracerSpans([named, otel, anonymous]);
    assert.equal(named.requestId, 'first');
    assert.equal(otel.requestId, 'first');
    assert.equal(anonymous.requestId, 'second');
    tracker.finished('first', { status: 'success', at: t(30) });
    tracker.finished('second', { status: 'success', at: t(40) });
    tracker.drain('flush');
    const byId = new Map(sink.lambdaSpans().map((s) => [s.requestId, s]));
    assert.equal(named.parentId, byId.get('first')!.spanId);
    assert.equal(anonymous.parentId, byId.get('second')!.spanId);
    assert.equal(anonymous.traceId, byId.get('second')!.traceId);
  });

  test('no invocation at all: spans wait for one, then go out untouched at shutdown', () => {
    const { sink, tracker } = setup();
    const span = tracerSpan({ spanId: '1111111111111111', startMicros: 1 });
    tracker.attachTracerSpans([span]);
    tracker.attachTracerSpans([]);
    assert.deepEqual(sink.spans, []);
    tracker.drain('shutdown');
    assert.deepEqual(sink.spans, [span]);
    assert.equal(span.traceId, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
  });
});
