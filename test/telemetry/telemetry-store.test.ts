/**
 * The telemetry store and service on a real SQLite file: ingest and every query, metric
 * summaries, retention by age and by row cap (in chunks, and on the timer), deleting a
 * function, atomic refusal of a batch, batch validation naming the bad field, and the
 * retention settings.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TelemetryBatch } from '../../src/agent/model.ts';
import { ConfigError, resolveConfig } from '../../src/config/resolved-config.ts';
import { InvalidRequestContentException } from '../../src/errors/platform-errors.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { migrations } from '../../src/store/migrations.ts';
import { SqliteTelemetryStore } from '../../src/store/sqlite-telemetry-store.ts';
import { parseTelemetryBatch } from '../../src/telemetry/batch-validation.ts';
import { quantiles, TelemetryService } from '../../src/telemetry/telemetry-service.ts';
import { invocationBatch, sqlInjectionSignal, traceIdOf } from '../helpers/telemetry.ts';

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
let dir: string;
let counter = 0;
const dbPath = (): string => join(dir, `telemetry-${++counter}.db`);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nimbus-telemetry-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function service(store: SqliteTelemetryStore, options: Partial<ConstructorParameters<typeof TelemetryService>[0]> = {}): TelemetryService {
  return new TelemetryService({ store, logger: silentLogger, retentionHours: 24, maxRowsPerTable: 1_000_000, now: () => T0 + 3_600_000, ...options });
}

/** Ten invocations a second apart, durations 100..1000 ms; the 4th errs, the 1st is cold. */
function tenInvocations(functionName = 'orders'): TelemetryBatch {
  return invocationBatch(
    functionName,
    Array.from({ length: 10 }, (_, i) => ({ requestId: `req-${i}`, startMs: T0 + i * 1000, durationMs: (i + 1) * 100, coldStart: i === 0, error: i === 3 })),
  );
}

/** A fresh batch object each time: validation mutates (drops nulls) and tests mutate too. */
const clone = (b: TelemetryBatch): TelemetryBatch => structuredClone(b);

describe('TelemetryStore ingest and queries', () => {
  it('shares the Nimbus database file with SqliteStore and migrates it once', async () => {
    const file = dbPath();
    const main = SqliteStore.open({ filePath: file });
    const telemetry = SqliteTelemetryStore.open({ filePath: file });
    try {
      assert.equal(main.schemaVersion(), migrations.length);
      await telemetry.ingest(tenInvocations());
      assert.equal((await telemetry.queryMetrics('orders', { limit: 1000 })).length, 10 * 8 + 1 + 1);
    } finally {
      await telemetry.close();
      await main.close();
    }
  });

  it('returns metric points oldest first, filtered by name and window, the newest when limited', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    try {
      const accepted = await store.ingest(tenInvocations());
      assert.deepEqual(accepted, { metrics: 82, spans: 30, logs: 20, security: 0 });
      const durations = await store.queryMetrics('orders', { name: 'aws.lambda.enhanced.duration', limit: 100 });
      assert.deepEqual(durations.map((p) => p.value), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
      assert.deepEqual(durations[0], {
        name: 'aws.lambda.enhanced.duration',
        type: 'distribution',
        value: 0.1,
        values: [0.1],
        tags: ['cold_start:true', 'executedversion:$LATEST', 'functionname:orders', 'memorysize:128', 'region:us-east-1', 'runtime:nodejs24.x'],
        timestamp: T0 + 100,
        requestId: 'req-0',
        version: '$LATEST',
      });
      const newest = await store.queryMetrics('orders', { name: 'aws.lambda.enhanced.duration', limit: 3 });
      assert.deepEqual(newest.map((p) => p.requestId), ['req-7', 'req-8', 'req-9']);
      const window = await store.queryMetrics('orders', { name: 'aws.lambda.enhanced.invocations', sinceMs: T0 + 2000, untilMs: T0 + 4000, limit: 100 });
      assert.deepEqual(window.map((p) => p.requestId), ['req-2', 'req-3', 'req-4']);
      assert.deepEqual(await store.queryMetrics('other', { limit: 100 }), []);
    } finally {
      await store.close();
    }
  });

  it('summarises each metric: points, samples, sum, min, max, avg, last and percentiles of distributions', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    const svc = service(store);
    try {
      const gauge = (value: number, at: number) => ({ name: 'queue.depth', type: 'gauge' as const, value, tags: [], timestamp: at });
      await svc.ingest(
        invocationBatch('orders', [{ requestId: 'a', startMs: T0, durationMs: 100 }], {
          metrics: [
            gauge(7, T0 + 1),
            gauge(3, T0 + 2),
            // Sampled at 50 %: each sample stands for two.
            { name: 'payload.size', type: 'distribution', value: 30, values: [10, 20], weights: [2, 2], tags: [], timestamp: T0 + 3 },
          ],
        }),
      );
      await svc.ingest(tenInvocations());
      const summary = await svc.metricSummary('orders', {});
      const byName = new Map(summary.map((m) => [m.name, m]));
      assert.deepEqual(byName.get('aws.lambda.enhanced.duration'), {
        name: 'aws.lambda.enhanced.duration',
        type: 'distribution',
        points: 11,
        samples: 11,
        sum: summary.find((m) => m.name === 'aws.lambda.enhanced.duration')!.sum,
        min: 0.1,
        max: 1,
        avg: byName.get('aws.lambda.enhanced.duration')!.sum / 11,
        last: 1,
        p50: 0.5,
        p95: 1,
        p99: 1,
      });
      assert.ok(Math.abs(byName.get('aws.lambda.enhanced.duration')!.sum - 5.6) < 1e-9);
      assert.deepEqual(byName.get('queue.depth'), { name: 'queue.depth', type: 'gauge', points: 2, samples: 2, sum: 10, min: 3, max: 7, avg: 5, last: 3, p50: null, p95: null, p99: null });
      const size = byName.get('payload.size')!;
      assert.deepEqual([size.samples, size.sum, size.avg, size.p50, size.p99], [4, 60, 15, 10, 20]);
      assert.equal(byName.get('aws.lambda.enhanced.errors')!.sum, 1);
      assert.deepEqual(summary.map((m) => m.name), [...summary.map((m) => m.name)].sort());
      const onlyOne = await svc.metricSummary('orders', { name: 'aws.lambda.enhanced.invocations', sinceMs: T0 + 5000 });
      assert.deepEqual(onlyOne.map((m) => [m.name, m.points]), [['aws.lambda.enhanced.invocations', 5]]);
    } finally {
      await svc.close();
    }
  });

  it('computes nearest-rank quantiles, weighted or not', () => {
    assert.deepEqual(quantiles([5, 1, 4, 2, 3], undefined, [0.5, 0.95, 0.99]), [3, 5, 5]);
    assert.deepEqual(quantiles([1, 100], [99, 1], [0.5, 0.99, 1]), [1, 1, 100]);
    assert.deepEqual(quantiles([], undefined, [0.5]), [null]);
  });

  it('lists traces newest first with their root, extent, span count and error, and returns a trace whole', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    try {
      await store.ingest(tenInvocations());
      const traces = await store.listTraces('orders', { limit: 3 });
      assert.deepEqual(traces.map((t) => t.requestId), ['req-9', 'req-8', 'req-7']);
      assert.deepEqual(traces[0], {
        traceId: traceIdOf('req-9'),
        rootName: 'aws.lambda',
        rootResource: 'orders',
        rootService: 'aws.lambda',
        startMicros: (T0 + 9000) * 1000,
        durationMicros: 1_000_000,
        spanCount: 3,
        error: false,
        requestId: 'req-9',
      });
      const failed = (await store.listTraces('orders', { limit: 100, sinceMs: T0 + 3000 })).find((t) => t.requestId === 'req-3');
      assert.equal(failed?.error, true);
      assert.equal((await store.listTraces('orders', { limit: 100, sinceMs: T0 + 3000 })).length, 7);

      const spans = await store.getTrace('orders', traceIdOf('req-3'));
      assert.deepEqual(spans.map((s) => s.name), ['aws.lambda', 'express.request', 'pg.query']);
      assert.equal(spans[2]!.parentId, spans[1]!.spanId);
      assert.deepEqual(spans[2]!.metrics, { 'db.row_count': 3 });
      assert.deepEqual(await store.getTrace('orders', 'f'.repeat(32)), []);
      assert.deepEqual(await store.getTrace('other', traceIdOf('req-3')), []);
    } finally {
      await store.close();
    }
  });

  it('keeps a span once when a batch is sent again (an agent retry)', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    try {
      const batch = invocationBatch('orders', [{ requestId: 'r', startMs: T0, durationMs: 50 }]);
      await store.ingest(batch);
      await store.ingest(batch);
      assert.equal((await store.getTrace('orders', traceIdOf('r'))).length, 3);
    } finally {
      await store.close();
    }
  });

  it('answers log queries by request id, window, limit and seq, and says whether a function has any', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    try {
      assert.equal(await store.hasLogs('orders'), false);
      await store.ingest(tenInvocations());
      assert.equal(await store.hasLogs('orders'), true);
      const forOne = await store.queryLogs('orders', { requestId: 'req-3', limit: 100 });
      assert.deepEqual(
        forOne.map(({ seq: _seq, ...r }) => r),
        [
          { timestamp: T0 + 3001, source: 'function', requestId: 'req-3', level: 'info', message: 'loading orders for req-3' },
          { timestamp: T0 + 3399, source: 'function', requestId: 'req-3', level: 'error', message: 'Error: database timeout', attributes: { errorType: 'Error' } },
        ],
      );
      const newest = await store.queryLogs('orders', { limit: 2 });
      assert.deepEqual(newest.map((r) => r.requestId), ['req-9', 'req-9']);
      assert.deepEqual((await store.queryLogs('orders', { sinceMs: T0 + 8000, limit: 100 })).length, 4);
      const all = await store.queryLogs('orders', { limit: 100 });
      const afterSeq = await store.queryLogs('orders', { afterSeq: all[17]!.seq, limit: 100 });
      assert.deepEqual(afterSeq.map((r) => r.seq), [all[18]!.seq, all[19]!.seq]);
    } finally {
      await store.close();
    }
  });

  it('lists security signals newest first, for one function or all', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    try {
      await store.ingest(invocationBatch('orders', [], { security: [sqlInjectionSignal('a', T0), sqlInjectionSignal('b', T0 + 10, true)], sentAt: T0 + 20 }));
      await store.ingest(invocationBatch('users', [], { security: [sqlInjectionSignal('c', T0 + 5)], sentAt: T0 + 20 }));
      const all = await store.querySecurity({ limit: 10 });
      assert.deepEqual(all.map((s) => [s.functionName, s.requestId]), [['orders', 'b'], ['users', 'c'], ['orders', 'a']]);
      assert.deepEqual(all[0], { functionName: 'orders', ...sqlInjectionSignal('b', T0 + 10, true) });
      assert.deepEqual((await store.querySecurity({ functionName: 'users', limit: 10 })).map((s) => s.requestId), ['c']);
      assert.deepEqual((await store.querySecurity({ sinceMs: T0 + 5, limit: 1 })).map((s) => s.requestId), ['b']);
    } finally {
      await store.close();
    }
  });

  it('keeps the latest drop counts per function, whatever order batches arrive in', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    try {
      await store.ingest(invocationBatch('orders', [], { sentAt: T0 + 2, dropped: { metrics: 5, spans: 1, logs: 0, security: 0 } }));
      await store.ingest(invocationBatch('orders', [], { sentAt: T0 + 1, dropped: { metrics: 2, spans: 0, logs: 0, security: 0 } }));
      assert.deepEqual(await store.dropCounts(), [{ functionName: 'orders', metrics: 5, spans: 1, logs: 0, security: 0, sentAt: T0 + 2 }]);
    } finally {
      await store.close();
    }
  });

  it('deletes everything of a deleted function and nothing of the others', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    const svc = service(store);
    try {
      await svc.ingest(tenInvocations('orders'));
      await svc.ingest(invocationBatch('users', [{ requestId: 'u', startMs: T0, durationMs: 10 }], { security: [sqlInjectionSignal('u', T0)] }));
      await svc.ingest(invocationBatch('orders', [], { security: [sqlInjectionSignal('o', T0)] }));
      await svc.deleteFunction('orders');
      assert.deepEqual(await store.queryMetrics('orders', { limit: 10 }), []);
      assert.deepEqual(await store.listTraces('orders', { limit: 10 }), []);
      assert.deepEqual(await store.queryLogs('orders', { limit: 10 }), []);
      assert.deepEqual((await store.querySecurity({ limit: 10 })).map((s) => s.functionName), ['users']);
      assert.deepEqual((await store.dropCounts()).map((d) => d.functionName), ['users']);
      assert.doesNotMatch(svc.prometheus(), /functionname="orders"/);
      assert.match(svc.prometheus(), /functionname="users"/);
      assert.equal((await store.queryMetrics('users', { limit: 100 })).length, 8);
    } finally {
      await svc.close();
    }
  });
});

describe('TelemetryStore atomic ingest', () => {
  it('stores nothing of a batch when a row fails halfway, and the store stays usable', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    try {
      const bad = tenInvocations();
      // Validation refuses NaN; bypassing it reaches SQLite's NOT NULL (NaN binds as NULL) on a late row.
      bad.logs[15]!.timestamp = Number.NaN;
      await assert.rejects(store.ingest(bad));
      assert.deepEqual(await store.queryMetrics('orders', { limit: 10 }), []);
      assert.deepEqual(await store.listTraces('orders', { limit: 10 }), []);
      assert.deepEqual(await store.queryLogs('orders', { limit: 10 }), []);
      assert.deepEqual(await store.dropCounts(), []);
      await store.ingest(tenInvocations());
      assert.equal((await store.queryLogs('orders', { limit: 100 })).length, 20);
    } finally {
      await store.close();
    }
  });

  it('leaves the Prometheus aggregation alone when the store refuses a batch', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    const svc = service(store);
    try {
      const bad = tenInvocations();
      bad.spans[29]!.startMicros = Number.NaN;
      await assert.rejects(svc.ingest(bad));
      assert.equal(svc.prometheus(), '');
    } finally {
      await svc.close();
    }
  });
});

describe('TelemetryService retention', () => {
  const old = (functionName: string) =>
    invocationBatch(functionName, [{ requestId: 'old', startMs: T0 - 48 * 3_600_000, durationMs: 100 }], {
      security: [sqlInjectionSignal('old', T0 - 48 * 3_600_000)],
      sentAt: T0,
    });
  const recent = (functionName: string) =>
    invocationBatch(functionName, [{ requestId: 'new', startMs: T0, durationMs: 100 }], { security: [sqlInjectionSignal('new', T0)] });

  it('purges rows older than the retention at start, keeping recent ones', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    await store.ingest(old('orders'));
    await store.ingest(recent('orders'));
    const svc = service(store, { retentionHours: 24 });
    try {
      await svc.start();
      assert.deepEqual(new Set((await store.queryMetrics('orders', { limit: 100 })).map((p) => p.requestId)), new Set(['new']));
      assert.deepEqual((await store.listTraces('orders', { limit: 10 })).map((t) => t.requestId), ['new']);
      assert.deepEqual(new Set((await store.queryLogs('orders', { limit: 10 })).map((r) => r.requestId)), new Set(['new']));
      assert.deepEqual((await store.querySecurity({ limit: 10 })).map((s) => s.requestId), ['new']);
      // Nothing more is due.
      assert.deepEqual(await svc.purge(), { metrics: 0, spans: 0, logs: 0, security: 0 });
    } finally {
      await svc.close();
    }
  });

  it('caps each table at the most recently received rows, in chunks when far over', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    const many = Array.from({ length: 1500 }, (_, i) => ({ requestId: `r${i}`, startMs: T0 + i, durationMs: 1 }));
    await store.ingest(invocationBatch('orders', many)); // 12,000 metric points, 4,500 spans, 3,000 logs
    const svc = service(store, { maxRowsPerTable: 1000 });
    try {
      const deleted = await svc.purge();
      assert.deepEqual(deleted, { metrics: 11_000, spans: 3_500, logs: 2_000, security: 0 });
      const points = await store.queryMetrics('orders', { limit: 10_000 });
      assert.equal(points.length, 1000);
      assert.equal(points.at(-1)!.requestId, 'r1499');
      assert.equal((await store.queryLogs('orders', { limit: 10_000 })).length, 1000);
      assert.equal((await store.listTraces('orders', { limit: 1000 })).length, 334);
    } finally {
      await svc.close();
    }
  });

  it('counts rows, not ids: gaps left by a deleted function do not make it delete below the cap', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    const three = (fn: string) => invocationBatch(fn, [0, 1, 2].map((i) => ({ requestId: `${fn}-${i}`, startMs: T0 + i, durationMs: 1 })));
    await store.ingest(three('a'));
    await store.ingest(three('b'));
    await store.ingest(three('c'));
    await store.deleteFunction('b');
    try {
      assert.equal((await service(store, { maxRowsPerTable: 12 }).purge()).logs, 0);
      assert.equal((await service(store, { maxRowsPerTable: 11 }).purge()).logs, 1);
      const left = await store.queryLogs('a', { limit: 100 });
      assert.deepEqual(left.map((r) => r.requestId), ['a-0', 'a-1', 'a-1', 'a-2', 'a-2']);
      assert.equal((await store.queryLogs('c', { limit: 100 })).length, 6);
    } finally {
      await store.close();
    }
  });

  it('purges again on its timer, and close stops the timer', async () => {
    const store = SqliteTelemetryStore.open({ filePath: dbPath() });
    const svc = service(store, { purgeIntervalMs: 20 });
    try {
      await svc.start();
      await store.ingest(old('orders'));
      const deadline = Date.now() + 10_000;
      while ((await store.queryMetrics('orders', { limit: 10 })).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(await store.queryMetrics('orders', { limit: 10 }), []);
    } finally {
      await svc.close();
    }
    await assert.rejects(store.queryMetrics('orders', { limit: 1 }), /closed/);
  });

  it('refuses a retention that keeps nothing', () => {
    const store = {} as SqliteTelemetryStore;
    assert.throws(() => service(store, { retentionHours: 0 }), RangeError);
    assert.throws(() => service(store, { maxRowsPerTable: 0 }), RangeError);
  });
});

describe('parseTelemetryBatch', () => {
  const good = () => clone(invocationBatch('orders', [{ requestId: 'a', startMs: T0, durationMs: 10, error: true }], { security: [sqlInjectionSignal('a', T0)] }));

  it('accepts a well-formed batch, and null for an optional member', () => {
    const batch = good() as unknown as Record<string, unknown> & TelemetryBatch;
    (batch.logs[0] as unknown as Record<string, unknown>).requestId = null;
    const parsed = parseTelemetryBatch(batch);
    assert.equal(parsed.metrics.length, 9);
    assert.equal('requestId' in parsed.logs[0]!, false);
  });

  const cases: Array<[string, (b: Record<string, any>) => void, RegExp]> = [
    ['not an object', () => undefined, /the body must be a JSON object/],
    ['no resource', (b) => delete b.resource, /resource must be an object, got nothing/],
    ['bad function name', (b) => (b.resource.functionName = 'a b'), /resource\.functionName must be a function name/],
    ['memory as a string', (b) => (b.resource.memorySize = '128'), /resource\.memorySize must be a non-negative integer, got string "128"/],
    ['unknown architecture', (b) => (b.resource.architecture = 'sparc'), /resource\.architecture must be x86_64 or arm64/],
    ['metrics not an array', (b) => (b.metrics = {}), /metrics must be an array, got an object/],
    ['unknown metric type', (b) => (b.metrics[2].type = 'histogram'), /metrics\[2\]\.type must be one of count, gauge, distribution, set, got string "histogram"/],
    ['a string sample', (b) => (b.metrics[1].values = [1, 'x']), /metrics\[1\]\.values\[1\] must be a finite number, got string "x"/],
    ['weights of another length', (b) => (b.metrics[1].weights = [1, 1]), /metrics\[1\]\.weights must be an array of 1 numbers/],
    ['a zero weight', (b) => (b.metrics[1].weights = [0]), /metrics\[1\]\.weights\[0\] must be a positive number/],
    ['a tag that is a number', (b) => (b.metrics[0].tags = [1]), /metrics\[0\]\.tags\[0\] must be a string/],
    ['a negative timestamp', (b) => (b.metrics[0].timestamp = -1), /metrics\[0\]\.timestamp must be epoch milliseconds/],
    ['an upper-case trace id', (b) => (b.spans[0].traceId = 'A'.repeat(32)), /spans\[0\]\.traceId must be 32 lowercase hex digits/],
    ['a short parent id', (b) => (b.spans[1].parentId = 'abc'), /spans\[1\]\.parentId must be 16 lowercase hex digits/],
    ['error as a string', (b) => (b.spans[0].error = 'true'), /spans\[0\]\.error must be a boolean/],
    ['a numeric meta value', (b) => (b.spans[0].meta.status = 200), /spans\[0\]\.meta\["status"\] must be a string, got number 200/],
    ['a string span metric', (b) => (b.spans[2].metrics.rows = '3'), /spans\[2\]\.metrics\["rows"\] must be a finite number/],
    ['a negative duration', (b) => (b.spans[0].durationMicros = -5), /spans\[0\]\.durationMicros must be microseconds/],
    ['an unknown log source', (b) => (b.logs[1].source = 'kernel'), /logs\[1\]\.source must be one of function, platform, extension/],
    ['attributes as an array', (b) => (b.logs[1].attributes = []), /logs\[1\]\.attributes must be an object when present, got an array/],
    ['blocked as a number', (b) => (b.security[0].blocked = 1), /security\[0\]\.blocked must be a boolean/],
    ['a missing rule id', (b) => delete b.security[0].ruleId, /security\[0\]\.ruleId must be a string, got nothing/],
    ['a negative drop count', (b) => (b.dropped.spans = -1), /dropped\.spans must be a non-negative integer/],
    ['sentAt as a date string', (b) => (b.sentAt = '2026-01-01'), /sentAt must be epoch milliseconds/],
  ];
  for (const [what, spoil, message] of cases) {
    it(`refuses ${what}, naming the field`, () => {
      const batch = good() as unknown as Record<string, any>;
      const body = what === 'not an object' ? [batch] : batch;
      spoil(batch);
      assert.throws(
        () => parseTelemetryBatch(body),
        (err: unknown) => err instanceof InvalidRequestContentException && message.test(err.message),
      );
    });
  }

  it('truncates long values in its message', () => {
    const batch = good() as unknown as Record<string, any>;
    batch.resource.functionName = 'x'.repeat(500);
    assert.throws(() => parseTelemetryBatch(batch), (err: Error) => err.message.length < 300 && /\.\.\./.test(err.message));
  });
});

describe('telemetry retention settings', () => {
  it('defaults to 24 hours and 1,000,000 rows; nimbus.json sets them, NIMBUS_* wins, bad values are refused', () => {
    const configDir = mkdtempSync(join(dir, 'config-'));
    const defaults = resolveConfig({ dataDir: configDir }, {});
    assert.deepEqual([defaults.telemetryRetentionHours, defaults.telemetryMaxRows], [24, 1_000_000]);
    writeFileSync(join(configDir, 'nimbus.json'), JSON.stringify({ telemetryRetentionHours: 72, telemetryMaxRows: 5000 }));
    const fromFile = resolveConfig({ dataDir: configDir }, {});
    assert.deepEqual([fromFile.telemetryRetentionHours, fromFile.telemetryMaxRows], [72, 5000]);
    const fromEnv = resolveConfig({ dataDir: configDir }, { NIMBUS_TELEMETRY_RETENTION_HOURS: '2', NIMBUS_TELEMETRY_MAX_ROWS: '100' });
    assert.deepEqual([fromEnv.telemetryRetentionHours, fromEnv.telemetryMaxRows], [2, 100]);
    assert.throws(() => resolveConfig({ dataDir: configDir }, { NIMBUS_TELEMETRY_RETENTION_HOURS: '0.5' }), ConfigError);
    assert.throws(() => resolveConfig({ dataDir: configDir }, { NIMBUS_TELEMETRY_MAX_ROWS: '-1' }), /telemetry max rows must be an integer/);
  });
});
