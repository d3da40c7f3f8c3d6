/**
 * What the telemetry store's tests share. invocationBatch builds TelemetryBatches shaped
 * like the Nimbus agent's flushes: per invocation the enhanced metrics (Datadog's names and
 * tags), an `aws.lambda` root span with a handler span and a database span under it, and
 * function log lines; plus custom metrics and security signals on request. Ids derive from
 * the request id, so they are stable. assertSameExposition compares Prometheus texts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { MetricPoint, SecuritySignal, TelemetryBatch } from '../../src/agent/model.ts';

export interface InvocationSpec {
  requestId: string;
  /** Epoch ms when the invocation started. */
  startMs: number;
  durationMs: number;
  coldStart?: boolean;
  /** The handler threw: error metric, error spans, an ERROR log line. */
  error?: boolean;
  maxMemoryUsedMb?: number;
}

export interface BatchOptions {
  version?: string;
  memorySize?: number;
  sentAt?: number;
  dropped?: TelemetryBatch['dropped'];
  /** Extra points (custom metrics). */
  metrics?: MetricPoint[];
  security?: SecuritySignal[];
}

const hex = (seed: string, length: number): string => createHash('sha256').update(seed).digest('hex').slice(0, length);

export const traceIdOf = (requestId: string): string => hex(`trace:${requestId}`, 32);

export function invocationBatch(functionName: string, invocations: InvocationSpec[], options: BatchOptions = {}): TelemetryBatch {
  const version = options.version ?? '$LATEST';
  const memorySize = options.memorySize ?? 128;
  const baseTags = [`executedversion:${version}`, `functionname:${functionName.toLowerCase()}`, `memorysize:${memorySize}`, 'region:us-east-1', 'runtime:nodejs24.x'];
  const batch: TelemetryBatch = {
    resource: {
      functionName,
      functionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
      version,
      region: 'us-east-1',
      accountId: '000000000000',
      runtime: 'nodejs24.x',
      memorySize,
      architecture: 'x86_64',
      extensionVersion: '0.1.0',
      tags: [`service:${functionName.toLowerCase()}`],
    },
    metrics: [],
    spans: [],
    logs: [],
    security: options.security ?? [],
    dropped: options.dropped ?? { metrics: 0, spans: 0, logs: 0, security: 0 },
    sentAt: options.sentAt ?? Math.max(0, ...invocations.map((i) => i.startMs + i.durationMs)) + 5,
  };
  for (const inv of invocations) {
    const tags = [...baseTags, `cold_start:${inv.coldStart === true}`].sort();
    const end = inv.startMs + inv.durationMs;
    const billedMs = Math.ceil(inv.durationMs);
    const dist = (metric: string, value: number, at = end): MetricPoint => ({
      name: `aws.lambda.enhanced.${metric}`,
      type: 'distribution',
      value,
      values: [value],
      tags,
      timestamp: at,
      requestId: inv.requestId,
    });
    batch.metrics.push(
      dist('invocations', 1, inv.startMs),
      dist('duration', inv.durationMs / 1000),
      dist('billed_duration', billedMs / 1000),
      dist('runtime_duration', inv.durationMs - 0.25),
      dist('post_runtime_duration', 0.25),
      dist('max_memory_used', inv.maxMemoryUsedMb ?? 64),
      dist('memorysize', memorySize),
      dist('estimated_cost', Number((2e-7 + (billedMs / 1000) * (memorySize / 1024) * 0.0000166667).toFixed(12))),
    );
    if (inv.coldStart) batch.metrics.push(dist('init_duration', 0.18, inv.startMs));
    if (inv.error) batch.metrics.push(dist('errors', 1));

    const traceId = traceIdOf(inv.requestId);
    const root = hex(`root:${inv.requestId}`, 16);
    const handler = hex(`handler:${inv.requestId}`, 16);
    const startUs = inv.startMs * 1000;
    const durUs = Math.round(inv.durationMs * 1000);
    batch.spans.push(
      {
        traceId,
        spanId: root,
        name: 'aws.lambda',
        service: 'aws.lambda',
        resource: functionName,
        type: 'serverless',
        startMicros: startUs,
        durationMicros: durUs,
        error: inv.error === true,
        meta: { request_id: inv.requestId, cold_start: String(inv.coldStart === true), function_trigger: 'api-gateway-http' },
        metrics: { '_sampling_priority_v1': 1 },
        requestId: inv.requestId,
      },
      {
        traceId,
        spanId: handler,
        parentId: root,
        name: 'express.request',
        service: functionName.toLowerCase(),
        resource: 'GET /orders',
        type: 'web',
        startMicros: startUs + 100,
        durationMicros: Math.max(0, durUs - 300),
        error: inv.error === true,
        meta: { 'http.method': 'GET', 'http.status_code': inv.error ? '500' : '200' },
        metrics: {},
        requestId: inv.requestId,
      },
      {
        traceId,
        spanId: hex(`db:${inv.requestId}`, 16),
        parentId: handler,
        name: 'pg.query',
        service: `${functionName.toLowerCase()}-postgres`,
        resource: 'SELECT * FROM orders WHERE id = $1',
        type: 'sql',
        startMicros: startUs + 200,
        durationMicros: Math.round(durUs / 4),
        error: false,
        meta: { 'db.type': 'postgres' },
        metrics: { 'db.row_count': 3 },
        requestId: inv.requestId,
      },
    );
    batch.logs.push(
      { timestamp: inv.startMs + 1, source: 'function', requestId: inv.requestId, level: 'info', message: `loading orders for ${inv.requestId}` },
      inv.error
        ? { timestamp: end - 1, source: 'function', requestId: inv.requestId, level: 'error', message: 'Error: database timeout', attributes: { errorType: 'Error' } }
        : { timestamp: end - 1, source: 'function', requestId: inv.requestId, level: 'info', message: '{"msg":"done","count":3}', attributes: { msg: 'done', count: 3 } },
    );
  }
  batch.metrics.push(...(options.metrics ?? []));
  return batch;
}

/** A SQL injection attempt seen on an API Gateway HTTP API invocation. */
export function sqlInjectionSignal(requestId: string, timestamp: number, blocked = false): SecuritySignal {
  return {
    timestamp,
    requestId,
    ruleId: 'crs-942-100',
    ruleName: 'SQL Injection Attack Detected via libinjection',
    category: 'sql_injection',
    parameter: 'server.request.query.q',
    value: "1' OR '1'='1",
    clientIp: '203.0.113.7',
    userAgent: 'curl/8.5.0',
    route: 'GET /orders',
    method: 'GET',
    trigger: 'api-gateway-http',
    blocked,
  };
}

/**
 * The same exposition lines, sample values equal to a relative 1e-9: sums seeded by SQL
 * are added in another order than ingest added them, which may change the last bits.
 */
export function assertSameExposition(actual: string, expected: string): void {
  const a = actual.split('\n');
  const e = expected.split('\n');
  assert.equal(a.length, e.length, actual);
  a.forEach((line, i) => {
    const want = e[i]!;
    if (line.startsWith('#') || line === '') {
      assert.equal(line, want);
      return;
    }
    const cut = line.lastIndexOf(' ');
    const wantCut = want.lastIndexOf(' ');
    assert.equal(line.slice(0, cut), want.slice(0, wantCut));
    const value = Number(line.slice(cut + 1));
    const wanted = Number(want.slice(wantCut + 1));
    assert.ok(Math.abs(value - wanted) <= 1e-9 * Math.abs(wanted), `${line}\nvs ${want}`);
  });
}
