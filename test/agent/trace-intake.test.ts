import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { encode } from '@msgpack/msgpack';
import { decodeTracePayload, TracePayloadError } from '../../src/agent/traces/decode.ts';
import { startTraceIntake } from '../../src/agent/traces/intake-server.ts';
import type { Span } from '../../src/agent/model.ts';

const NODE_MODULES = join(import.meta.dirname, '../../node_modules');
const START_NS = 1_700_000_000_123_456_789n;

function v04Span(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    trace_id: 0xfedcba9876543210n,
    span_id: 2n,
    parent_id: 1n,
    name: 'http.request',
    service: 'checkout',
    resource: 'GET /cart',
    type: 'web',
    start: START_NS,
    duration: 2_500_499,
    error: 1,
    meta: { 'http.method': 'GET' },
    metrics: { '_sampling_priority_v1': 1 },
    meta_struct: { ignored: new Uint8Array([1, 2]) },
    ...overrides,
  };
}

function msgpack(value: unknown): Buffer {
  return Buffer.from(encode(value, { useBigInt64: true }));
}

interface Reply {
  status: number;
  body: string;
}

function send(port: number, method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('decodeTracePayload', () => {
  test('decodes a v0.4 msgpack payload into model spans', () => {
    const body = msgpack([[v04Span({ meta: { '_dd.p.tid': '6543210fedcba987', 'http.method': 'GET' } }), v04Span({ span_id: 3n, parent_id: 2n, error: 0, type: '' })]]);
    const spans = decodeTracePayload('v0.4', 'application/msgpack', body);
    assert.equal(spans.length, 2);
    const [root, child] = spans;
    assert.equal(root.traceId, '6543210fedcba987fedcba9876543210');
    assert.equal(root.spanId, '0000000000000002');
    assert.equal(root.parentId, '0000000000000001');
    assert.equal(root.startMicros, 1_700_000_000_123_457);
    assert.equal(root.durationMicros, 2500);
    assert.equal(root.error, true);
    assert.equal(root.type, 'web');
    assert.deepEqual(root.metrics, { _sampling_priority_v1: 1 });
    assert.equal(child.traceId, root.traceId, 'the chunk root\'s _dd.p.tid applies to its children');
    assert.equal(child.parentId, root.spanId);
    assert.equal(child.error, false);
    assert.equal(child.type, undefined);
  });

  test('leaves parentId out for a root span and fills missing high bits with zeros', () => {
    const [span] = decodeTracePayload('v0.4', undefined, msgpack([[v04Span({ parent_id: 0n, meta: {} })]]));
    assert.equal(span.parentId, undefined);
    assert.equal(span.traceId, '0000000000000000fedcba9876543210');
  });

  test('accepts uint64 ids with the top bit set, and ids sent as negative int64', () => {
    const [a, b] = decodeTracePayload('v0.4', undefined, msgpack([[v04Span({ span_id: 0xffffffffffffffffn }), v04Span({ span_id: -1n })]]));
    assert.equal(a.spanId, 'ffffffffffffffff');
    assert.equal(b.spanId, 'ffffffffffffffff');
  });

  test('decodes v0.4 JSON', () => {
    const body = JSON.stringify([[{ trace_id: '12345678901234567890', span_id: 7, parent_id: 0, name: 'n', service: 's', resource: 'r', start: 1_000_000, duration: 1500, error: 0, meta: { a: 'b' }, metrics: { m: 1.5 } }]]);
    const [span] = decodeTracePayload('v0.4', 'application/json; charset=utf-8', Buffer.from(body));
    assert.equal(span.traceId, `0000000000000000${12345678901234567890n.toString(16)}`);
    assert.equal(span.startMicros, 1000);
    assert.equal(span.durationMicros, 2);
    assert.deepEqual(span.meta, { a: 'b' });
  });

  test('decodes v0.5 with its string table', () => {
    const strings = ['', 'svc', 'op', 'res', 'http.method', 'POST', 'db.rows', 'sql'];
    // Tracers write meta and metrics keys as integers (string table indexes); the msgpack
    // library only writes string keys, so this span is assembled from encoded pieces.
    const fields = [1, 2, 3, 42n, 43n, 0, START_NS, 1000, 0].map(msgpack);
    const meta = Buffer.from([0x81, 0x04, 0x05]);
    const metrics = Buffer.from([0x81, 0x06, 0x0c]);
    const span = Buffer.concat([Buffer.from([0x9c]), ...fields, meta, metrics, msgpack(7)]);
    const payload = Buffer.concat([Buffer.from([0x92]), msgpack(strings), Buffer.from([0x91, 0x91]), span]);
    const [decoded] = decodeTracePayload('v0.5', 'application/msgpack', payload);
    assert.deepEqual(
      { ...decoded },
      {
        traceId: '0000000000000000000000000000002a',
        spanId: '000000000000002b',
        name: 'op',
        service: 'svc',
        resource: 'res',
        type: 'sql',
        startMicros: 1_700_000_000_123_457,
        durationMicros: 1,
        error: false,
        meta: { 'http.method': 'POST' },
        metrics: { 'db.rows': 12 },
      },
    );
  });

  test('accepts an empty list of traces', () => {
    assert.deepEqual(decodeTracePayload('v0.4', undefined, msgpack([])), []);
  });

  const bad: Array<[string, 'v0.4' | 'v0.5', string | undefined, Buffer, RegExp]> = [
    ['garbage bytes', 'v0.4', undefined, Buffer.from([0xc1, 0xff, 0x00]), /invalid msgpack/],
    ['an empty body', 'v0.4', undefined, Buffer.alloc(0), /empty body/],
    ['trailing bytes', 'v0.4', undefined, Buffer.concat([msgpack([]), Buffer.from([1])]), /invalid msgpack/],
    ['a map instead of traces', 'v0.4', undefined, msgpack({ a: 1 }), /array of traces/],
    ['a trace that is not an array', 'v0.4', undefined, msgpack([1]), /trace 0 must be an array/],
    ['a span that is not a map', 'v0.4', undefined, msgpack([['x']]), /trace 0 span 0 must be a map/],
    ['a string start', 'v0.4', undefined, msgpack([[v04Span({ start: 'yesterday' })]]), /start must be an integer/],
    ['a numeric name', 'v0.4', undefined, msgpack([[v04Span({ name: 5 })]]), /name must be a string/],
    ['a string trace id', 'v0.4', undefined, msgpack([[v04Span({ trace_id: 'abc' })]]), /trace_id must be an unsigned 64-bit integer/],
    ['a zero span id', 'v0.4', undefined, msgpack([[v04Span({ span_id: 0 })]]), /span_id must not be 0/],
    ['a non-string meta value', 'v0.4', undefined, msgpack([[v04Span({ meta: { a: 1 } })]]), /meta\.a must be a string/],
    ['a non-number metric', 'v0.4', undefined, msgpack([[v04Span({ metrics: { a: 'x' } })]]), /metrics\.a must be a number/],
    ['invalid JSON', 'v0.4', 'application/json', Buffer.from('[[{'), /invalid JSON/],
    ['JSON on v0.5', 'v0.5', 'application/json', Buffer.from('[]'), /must be msgpack/],
    ['v0.5 without a string table', 'v0.5', undefined, msgpack([[]]), /\[strings, traces\]/],
    ['v0.5 non-string table', 'v0.5', undefined, msgpack([[1], []]), /string table/],
    ['v0.5 short span', 'v0.5', undefined, msgpack([['a'], [[[0, 0, 0]]]]), /12 fields/],
    ['v0.5 index out of range', 'v0.5', undefined, msgpack([['a'], [[[0, 9, 0, 1, 1, 0, 0, 0, 0, {}, {}, 0]]]]), /name must be an index/],
  ];
  for (const [what, version, contentType, body, message] of bad) {
    test(`rejects ${what}`, () => {
      assert.throws(() => decodeTracePayload(version, contentType, body), (error: unknown) => {
        assert.ok(error instanceof TracePayloadError);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});

describe('trace intake server', () => {
  async function startIntake(maxBodyBytes?: number) {
    const received: Span[] = [];
    const intake = await startTraceIntake({ host: '127.0.0.1', port: 0, onSpans: (spans) => received.push(...spans), maxBodyBytes });
    return { intake, received };
  }

  test('answers tracers like the Datadog agent', async (t) => {
    const { intake, received } = await startIntake();
    t.after(() => intake.close());

    const put = await send(intake.port, 'PUT', '/v0.4/traces', msgpack([[v04Span()]]), { 'content-type': 'application/msgpack' });
    assert.equal(put.status, 200);
    assert.deepEqual(JSON.parse(put.body), { rate_by_service: { 'service:,env:': 1 } });
    const post = await send(intake.port, 'POST', '/v0.5/traces', msgpack([['s'], [[[0, 0, 0, 1n, 2n, 0, 1, 1, 0, {}, {}, 0]]]]));
    assert.equal(post.status, 200);
    assert.equal(received.length, 2);
    assert.equal((await send(intake.port, 'POST', '/v0.6/stats', msgpack({ Stats: [] }))).status, 200);

    const info = await send(intake.port, 'GET', '/info');
    assert.equal(info.status, 200);
    assert.ok((JSON.parse(info.body) as { endpoints: string[] }).endpoints.includes('/v0.4/traces'));
    assert.equal((await send(intake.port, 'GET', '/v0.4/traces')).status, 404);
    assert.equal((await send(intake.port, 'POST', '/v0.7/config', '{}')).status, 404);
    assert.deepEqual(intake.stats, { payloads: 2, spans: 2, rejected: 0 });
  });

  test('rejects invalid payloads with 400 and a JSON error, and keeps serving', async (t) => {
    const { intake, received } = await startIntake();
    t.after(() => intake.close());
    const garbage = await send(intake.port, 'PUT', '/v0.4/traces', Buffer.from('not msgpack at all'));
    assert.equal(garbage.status, 400);
    assert.match((JSON.parse(garbage.body) as { error: string }).error, /invalid msgpack|payload must be/);
    const wrongType = await send(intake.port, 'PUT', '/v0.4/traces', msgpack([[v04Span({ duration: 'long' })]]));
    assert.equal(wrongType.status, 400);
    assert.match(wrongType.body, /duration must be an integer/);
    const ok = await send(intake.port, 'PUT', '/v0.4/traces', msgpack([[v04Span()]]));
    assert.equal(ok.status, 200);
    assert.equal(received.length, 1);
    assert.deepEqual(intake.stats, { payloads: 1, spans: 1, rejected: 2 });
  });

  test('rejects oversized payloads with 413, declared or chunked', async (t) => {
    const { intake, received } = await startIntake(1024);
    t.after(() => intake.close());
    const big = msgpack([[v04Span({ meta: { blob: 'x'.repeat(4096) } })]]);
    const declared = await send(intake.port, 'PUT', '/v0.4/traces', big, { 'content-length': String(big.length) });
    assert.equal(declared.status, 413);
    assert.match(declared.body, /exceeds 1024 bytes/);
    const chunked = await new Promise<Reply>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: intake.port, method: 'PUT', path: '/v0.4/traces' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      for (let i = 0; i < 8; i++) req.write(big.subarray(i * 512, (i + 1) * 512));
      req.end(big.subarray(8 * 512));
    });
    assert.equal(chunked.status, 413);
    assert.equal(received.length, 0);
    assert.equal((await send(intake.port, 'PUT', '/v0.4/traces', msgpack([[v04Span()]]))).status, 200, 'still serving');
  });

  for (const protocol of ['0.4', '0.5']) {
    test(`receives parent and child spans from the real dd-trace tracer (protocol v${protocol})`, async (t) => {
      const { intake, received } = await startIntake();
      const dir = await mkdtemp(join(tmpdir(), 'nimbus-ddtrace-'));
      t.after(async () => {
        await intake.close();
        await rm(dir, { recursive: true, force: true });
      });
      const script = join(dir, 'traced.cjs');
      await writeFile(
        script,
        `const tracer = require('dd-trace').init({ service: 'orders-fn' });
tracer.trace('parent.op', { resource: 'handle order' }, () => {
  tracer.trace('child.op', { resource: 'load cart' }, (span) => { span.setTag('cart.items', 3); span.setTag('db.system', 'dynamodb'); });
});
tracer._tracer._exporter.flush(() => console.log('flushed'));
`,
      );
      const child = spawn(process.execPath, [script], {
        env: {
          PATH: process.env.PATH,
          NODE_PATH: NODE_MODULES,
          DD_TRACE_AGENT_URL: `http://127.0.0.1:${intake.port}`,
          DD_TRACE_AGENT_PROTOCOL_VERSION: protocol,
          DD_TRACE_STARTUP_LOGS: 'false',
          DD_INSTRUMENTATION_TELEMETRY_ENABLED: 'false',
          DD_REMOTE_CONFIGURATION_ENABLED: 'false',
          DD_TRACE_STATS_COMPUTATION_ENABLED: 'false',
          DD_TRACE_FLUSH_INTERVAL: '0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk));
      const exitCode = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(exitCode, 0, output);
      await waitFor(() => received.length >= 2, `two spans (tracer output: ${output})`);

      const parent = received.find((s) => s.name === 'parent.op');
      const child2 = received.find((s) => s.name === 'child.op');
      assert.ok(parent && child2, JSON.stringify(received));
      assert.equal(parent.service, 'orders-fn');
      assert.equal(parent.resource, 'handle order');
      assert.equal(parent.parentId, undefined);
      assert.equal(child2.parentId, parent.spanId);
      assert.equal(child2.traceId, parent.traceId);
      assert.match(parent.traceId, /^[0-9a-f]{32}$/);
      assert.notEqual(parent.traceId.slice(0, 16), '0000000000000000', 'dd-trace sends 128-bit ids by default (_dd.p.tid)');
      assert.equal(child2.metrics['cart.items'], 3);
      assert.equal(child2.meta['db.system'], 'dynamodb');
      assert.ok(parent.startMicros > 1_600_000_000_000_000 && parent.startMicros <= Date.now() * 1000);
      assert.ok(parent.durationMicros >= child2.durationMicros);
      assert.equal(intake.stats.rejected, 0);
    });
  }
});
