/**
 * SqliteTelemetryStore: the embedded TelemetryStore, in the same SQLite file as SqliteStore
 * (tables from migration 4) but on its own connection. WAL lets the two connections share
 * the file; every transaction here runs synchronously to completion, so the two never wait
 * on each other within this process, and the busy timeout covers other processes.
 *
 * Statements are prepared once: ingest runs on every agent flush.
 */
import { defaultBusyTimeoutMs, openDatabase } from './sqlite-open.ts';
import { inTransaction } from './sqlite-transaction.ts';
import type { DatabaseSync, SQLOutputValue, StatementSync } from 'node:sqlite';
import type { LogSource, MetricType, Span, TelemetryBatch } from '../agent/model.ts';
import {
  enhancedMetricPrefix,
  sampleTotals,
  type EnhancedSeriesTotals,
  type LogQuery,
  type MetricQuery,
  type MetricScan,
  type PurgeStep,
  type RetentionPolicy,
  type SecurityQuery,
  type StoredDropCounts,
  type StoredLogRecord,
  type StoredMetricPoint,
  type StoredSecuritySignal,
  type TelemetryCounts,
  type TelemetryStore,
  type TraceQuery,
  type TraceSummary,
} from '../telemetry/types.ts';

export interface SqliteTelemetryStoreOptions {
  /** The Nimbus database file (the one SqliteStore opens), or `:memory:`. */
  filePath: string;
  /** How long a write waits for another connection's lock (default 5,000 ms). */
  busyTimeoutMs?: number;
}

// Bounds that fit every timestamp column: ±8.64e15 ms is Date's range, and in µs it still
// fits a signed 64-bit integer.
const MIN_MS = -8.64e15;
const MAX_MS = 8.64e15;

/** The retained tables, with each one's time column and its unit. */
const TABLES = [
  { kind: 'metrics', table: 'telemetry_metrics', time: 'ts', perMs: 1 },
  { kind: 'spans', table: 'telemetry_spans', time: 'start_us', perMs: 1000 },
  { kind: 'logs', table: 'telemetry_logs', time: 'ts', perMs: 1 },
  { kind: 'security', table: 'telemetry_security', time: 'ts', perMs: 1 },
] as const;

const METRIC_COLUMNS = 'name, type, tags, ts, value, samples, weights, request_id, request_ids, version';
const SPAN_COLUMNS = 'trace_id, span_id, parent_id, name, service, resource, type, start_us, duration_us, error, meta, metrics, request_id';
const LOG_COLUMNS = 'id, ts, source, request_id, level, message, attributes';
const SECURITY_COLUMNS =
  'function_name, ts, request_id, rule_id, rule_name, category, parameter, value, client_ip, user_agent, route, method, trigger_kind, blocked';

const SQL = {
  begin: 'BEGIN IMMEDIATE',
  commit: 'COMMIT',
  rollback: 'ROLLBACK',
  insertMetric:
    'INSERT INTO telemetry_metrics (function_name, name, type, tags, ts, value, samples, weights, sample_sum, sample_count, request_id, request_ids, version) ' +
    'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  insertSpan:
    `INSERT INTO telemetry_spans (function_name, ${SPAN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ` +
    'ON CONFLICT (function_name, trace_id, span_id) DO NOTHING',
  insertLog: 'INSERT INTO telemetry_logs (function_name, ts, source, request_id, level, message, attributes) VALUES (?, ?, ?, ?, ?, ?, ?)',
  insertSecurity: `INSERT INTO telemetry_security (${SECURITY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  // Batches may arrive out of order (a retried flush): the newest report wins.
  upsertDropped:
    'INSERT INTO telemetry_dropped (function_name, metrics, spans, logs, security, sent_at) VALUES (?, ?, ?, ?, ?, ?) ' +
    'ON CONFLICT (function_name) DO UPDATE SET metrics = excluded.metrics, spans = excluded.spans, logs = excluded.logs, ' +
    'security = excluded.security, sent_at = excluded.sent_at WHERE excluded.sent_at >= telemetry_dropped.sent_at',
  // Newest first so LIMIT keeps the newest; the caller reverses.
  queryMetrics:
    `SELECT ${METRIC_COLUMNS} FROM telemetry_metrics WHERE function_name = ? AND ts >= ? AND ts <= ? ORDER BY ts DESC, id DESC LIMIT ?`,
  queryMetricsByName:
    `SELECT ${METRIC_COLUMNS} FROM telemetry_metrics WHERE function_name = ? AND ts >= ? AND ts <= ? AND name = ? ORDER BY ts DESC, id DESC LIMIT ?`,
  scanMetrics: `SELECT ${METRIC_COLUMNS} FROM telemetry_metrics WHERE function_name = ? AND ts >= ? AND ts <= ? ORDER BY ts, id`,
  scanMetricsByName:
    `SELECT ${METRIC_COLUMNS} FROM telemetry_metrics WHERE function_name = ? AND ts >= ? AND ts <= ? AND name = ? ORDER BY ts, id`,
  recentTraceIds: 'SELECT trace_id FROM telemetry_spans WHERE function_name = ? AND start_us >= ? ORDER BY start_us DESC, id DESC',
  traceExtent:
    'SELECT count(*) AS span_count, min(start_us) AS start_us, max(start_us + duration_us) AS end_us, max(error) AS error, ' +
    'max(request_id) AS request_id FROM telemetry_spans WHERE function_name = ? AND trace_id = ?',
  traceRoot:
    'SELECT name, resource, service, request_id FROM telemetry_spans s WHERE function_name = ? AND trace_id = ? AND (parent_id IS NULL OR NOT EXISTS ' +
    '(SELECT 1 FROM telemetry_spans p WHERE p.function_name = s.function_name AND p.trace_id = s.trace_id AND p.span_id = s.parent_id)) ' +
    'ORDER BY start_us, id LIMIT 1',
  traceSpans: `SELECT ${SPAN_COLUMNS} FROM telemetry_spans WHERE function_name = ? AND trace_id = ? ORDER BY start_us, id`,
  queryLogs: `SELECT ${LOG_COLUMNS} FROM telemetry_logs WHERE function_name = ? AND ts >= ? AND id > ? ORDER BY ts DESC, id DESC LIMIT ?`,
  queryLogsByRequest:
    `SELECT ${LOG_COLUMNS} FROM telemetry_logs WHERE function_name = ? AND request_id = ? AND ts >= ? AND id > ? ORDER BY ts DESC, id DESC LIMIT ?`,
  hasLogs: 'SELECT 1 AS present FROM telemetry_logs WHERE function_name = ? LIMIT 1',
  querySecurity: `SELECT ${SECURITY_COLUMNS} FROM telemetry_security WHERE ts >= ? ORDER BY ts DESC, id DESC LIMIT ?`,
  querySecurityByFunction:
    `SELECT ${SECURITY_COLUMNS} FROM telemetry_security WHERE function_name = ? AND ts >= ? ORDER BY ts DESC, id DESC LIMIT ?`,
  // A prefix match written as a range ('/' is the character after '.'): no LIKE escaping.
  // Runs once at start, so a scan of the table is acceptable.
  enhancedTotals:
    'SELECT function_name, name, version, tags, sum(sample_sum) AS sample_sum, sum(sample_count) AS sample_count FROM telemetry_metrics ' +
    `WHERE name >= '${enhancedMetricPrefix}' AND name < '${enhancedMetricPrefix.slice(0, -1)}/' GROUP BY function_name, name, version, tags`,
  dropCounts: 'SELECT function_name, metrics, spans, logs, security, sent_at FROM telemetry_dropped ORDER BY function_name',
  deleteMetrics: 'DELETE FROM telemetry_metrics WHERE function_name = ?',
  deleteSpans: 'DELETE FROM telemetry_spans WHERE function_name = ?',
  deleteLogs: 'DELETE FROM telemetry_logs WHERE function_name = ?',
  deleteSecurity: 'DELETE FROM telemetry_security WHERE function_name = ?',
  deleteDropped: 'DELETE FROM telemetry_dropped WHERE function_name = ?',
} as const;

type Statements = Record<keyof typeof SQL, StatementSync>;

/** The purge's statements for one table. */
interface PurgeStatements {
  kind: keyof TelemetryCounts;
  perMs: number;
  deleteOlder: StatementSync;
  idSpan: StatementSync;
  count: StatementSync;
  deleteOldest: StatementSync;
}

export class SqliteTelemetryStore implements TelemetryStore {
  readonly #db: DatabaseSync;
  readonly #s: Statements;
  readonly #purge: PurgeStatements[];

  /** Opens (creating if needed) and migrates the database. */
  static open(options: SqliteTelemetryStoreOptions): SqliteTelemetryStore {
    return openDatabase(options.filePath, options.busyTimeoutMs ?? defaultBusyTimeoutMs, (db) => new SqliteTelemetryStore(db));
  }

  private constructor(db: DatabaseSync) {
    this.#db = db;
    const statements: Partial<Statements> = {};
    for (const key of Object.keys(SQL) as (keyof typeof SQL)[]) statements[key] = db.prepare(SQL[key]);
    this.#s = statements as Statements;
    this.#purge = TABLES.map(({ kind, table, time, perMs }) => ({
      kind,
      perMs,
      deleteOlder: db.prepare(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE ${time} < ? LIMIT ?)`),
      // max(id) - min(id) + 1 bounds the row count from above in O(log n); the exact count
      // (a scan) is only needed when that bound is over the cap.
      idSpan: db.prepare(`SELECT coalesce(max(id) - min(id) + 1, 0) AS n FROM ${table}`),
      count: db.prepare(`SELECT count(*) AS n FROM ${table}`),
      // Oldest by arrival (id order), which the id primary key gives without a sort.
      deleteOldest: db.prepare(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} ORDER BY id LIMIT ?)`),
    }));
  }

  async ingest(batch: TelemetryBatch): Promise<TelemetryCounts> {
    const s = this.#live();
    const fn = batch.resource.functionName;
    const version = batch.resource.version;
    this.#transaction(() => {
      for (const m of batch.metrics) {
        const totals = sampleTotals(m);
        s.insertMetric.run(
          fn,
          m.name,
          m.type,
          JSON.stringify(m.tags),
          m.timestamp,
          m.value,
          m.values === undefined ? null : JSON.stringify(m.values),
          m.weights === undefined ? null : JSON.stringify(m.weights),
          totals.sum,
          totals.count,
          m.requestId ?? null,
          m.requestIds === undefined ? null : JSON.stringify(m.requestIds),
          version,
        );
      }
      for (const sp of batch.spans) {
        s.insertSpan.run(
          fn,
          sp.traceId,
          sp.spanId,
          sp.parentId ?? null,
          sp.name,
          sp.service,
          sp.resource,
          sp.type ?? null,
          Math.round(sp.startMicros),
          Math.round(sp.durationMicros),
          sp.error ? 1 : 0,
          JSON.stringify(sp.meta),
          JSON.stringify(sp.metrics),
          sp.requestId ?? null,
        );
      }
      for (const l of batch.logs) {
        s.insertLog.run(fn, l.timestamp, l.source, l.requestId ?? null, l.level ?? null, l.message, l.attributes === undefined ? null : JSON.stringify(l.attributes));
      }
      for (const g of batch.security) {
        s.insertSecurity.run(
          fn,
          g.timestamp,
          g.requestId,
          g.ruleId,
          g.ruleName,
          g.category,
          g.parameter,
          g.value,
          g.clientIp ?? null,
          g.userAgent ?? null,
          g.route ?? null,
          g.method ?? null,
          g.trigger,
          g.blocked ? 1 : 0,
        );
      }
      const d = batch.dropped;
      s.upsertDropped.run(fn, d.metrics, d.spans, d.logs, d.security, batch.sentAt);
    });
    return { metrics: batch.metrics.length, spans: batch.spans.length, logs: batch.logs.length, security: batch.security.length };
  }

  async queryMetrics(functionName: string, query: MetricQuery): Promise<StoredMetricPoint[]> {
    const s = this.#live();
    const since = query.sinceMs ?? MIN_MS;
    const until = query.untilMs ?? MAX_MS;
    const rows =
      query.name === undefined
        ? s.queryMetrics.all(functionName, since, until, query.limit)
        : s.queryMetricsByName.all(functionName, since, until, query.name, query.limit);
    const points: StoredMetricPoint[] = [];
    for (let i = rows.length - 1; i >= 0; i--) points.push(toMetricPoint(rows[i]!));
    return points;
  }

  async scanMetrics(functionName: string, scan: MetricScan, visit: (point: StoredMetricPoint) => void): Promise<number> {
    const s = this.#live();
    const since = scan.sinceMs ?? MIN_MS;
    const until = scan.untilMs ?? MAX_MS;
    const rows =
      scan.name === undefined ? s.scanMetrics.iterate(functionName, since, until) : s.scanMetricsByName.iterate(functionName, since, until, scan.name);
    let count = 0;
    for (const row of rows) {
      visit(toMetricPoint(row));
      count++;
    }
    return count;
  }

  async listTraces(functionName: string, query: TraceQuery): Promise<TraceSummary[]> {
    const s = this.#live();
    // Walks spans newest first and stops at `limit` distinct traces, so a list costs the
    // spans of the traces it shows, not a GROUP BY over everything retained.
    const ids: string[] = [];
    const seen = new Set<string>();
    for (const row of s.recentTraceIds.iterate(functionName, (query.sinceMs ?? MIN_MS) * 1000)) {
      const id = String(row.trace_id);
      if (seen.has(id)) continue;
      seen.add(id);
      ids.push(id);
      if (ids.length >= query.limit) break;
    }
    return ids.map((traceId) => {
      const extent = s.traceExtent.get(functionName, traceId)!;
      const root = s.traceRoot.get(functionName, traceId);
      const startMicros = num(extent.start_us, 'start_us');
      const summary: TraceSummary = {
        traceId,
        rootName: root === undefined ? '' : String(root.name),
        rootResource: root === undefined ? '' : String(root.resource),
        rootService: root === undefined ? '' : String(root.service),
        startMicros,
        durationMicros: num(extent.end_us, 'end_us') - startMicros,
        spanCount: num(extent.span_count, 'span_count'),
        error: extent.error === 1,
      };
      const requestId = optStr(root?.request_id) ?? optStr(extent.request_id);
      if (requestId !== undefined) summary.requestId = requestId;
      return summary;
    });
  }

  async getTrace(functionName: string, traceId: string): Promise<Span[]> {
    return this.#live().traceSpans.all(functionName, traceId).map(toSpan);
  }

  async queryLogs(functionName: string, query: LogQuery): Promise<StoredLogRecord[]> {
    const s = this.#live();
    const since = query.sinceMs ?? MIN_MS;
    const after = query.afterSeq ?? 0;
    const rows =
      query.requestId === undefined
        ? s.queryLogs.all(functionName, since, after, query.limit)
        : s.queryLogsByRequest.all(functionName, query.requestId, since, after, query.limit);
    const records: StoredLogRecord[] = [];
    for (let i = rows.length - 1; i >= 0; i--) records.push(toLogRecord(rows[i]!));
    return records;
  }

  async hasLogs(functionName: string): Promise<boolean> {
    return this.#live().hasLogs.get(functionName) !== undefined;
  }

  async querySecurity(query: SecurityQuery): Promise<StoredSecuritySignal[]> {
    const s = this.#live();
    const since = query.sinceMs ?? MIN_MS;
    const rows =
      query.functionName === undefined
        ? s.querySecurity.all(since, query.limit)
        : s.querySecurityByFunction.all(query.functionName, since, query.limit);
    return rows.map(toSecuritySignal);
  }

  async enhancedTotals(): Promise<EnhancedSeriesTotals[]> {
    return this.#live().enhancedTotals.all().map((row) => ({
      functionName: String(row.function_name),
      name: String(row.name),
      version: String(row.version),
      tags: JSON.parse(String(row.tags)) as string[],
      sampleSum: num(row.sample_sum, 'sample_sum'),
      sampleCount: num(row.sample_count, 'sample_count'),
    }));
  }

  async dropCounts(): Promise<StoredDropCounts[]> {
    return this.#live().dropCounts.all().map((row) => ({
      functionName: String(row.function_name),
      metrics: num(row.metrics, 'metrics'),
      spans: num(row.spans, 'spans'),
      logs: num(row.logs, 'logs'),
      security: num(row.security, 'security'),
      sentAt: num(row.sent_at, 'sent_at'),
    }));
  }

  async deleteFunction(functionName: string): Promise<void> {
    const s = this.#live();
    this.#transaction(() => {
      s.deleteMetrics.run(functionName);
      s.deleteSpans.run(functionName);
      s.deleteLogs.run(functionName);
      s.deleteSecurity.run(functionName);
      s.deleteDropped.run(functionName);
    });
  }

  async purgeStep(policy: RetentionPolicy, maxDeletes: number): Promise<PurgeStep> {
    this.#live();
    if (!Number.isSafeInteger(maxDeletes) || maxDeletes < 1) throw new RangeError(`maxDeletes must be a positive integer, got ${maxDeletes}`);
    const deleted: TelemetryCounts = { metrics: 0, spans: 0, logs: 0, security: 0 };
    let more = false;
    this.#transaction(() => {
      for (const t of this.#purge) {
        let n = Number(t.deleteOlder.run(policy.olderThanMs * t.perMs, maxDeletes).changes);
        if (n < maxDeletes && num(t.idSpan.get()!.n, 'id span') > policy.maxRowsPerTable) {
          const excess = num(t.count.get()!.n, 'count') - policy.maxRowsPerTable;
          if (excess > 0) n += Number(t.deleteOldest.run(Math.min(excess, maxDeletes - n)).changes);
        }
        deleted[t.kind] = n;
        if (n >= maxDeletes) more = true;
      }
    });
    return { deleted, more };
  }

  /** Closes the connection; later calls are no-ops, other methods then reject. */
  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }

  #live(): Statements {
    if (!this.#db.isOpen) throw new Error('SqliteTelemetryStore is closed');
    return this.#s;
  }

  #transaction<T>(work: () => T): T {
    return inTransaction(this.#db, this.#s, work);
  }
}

// Rows are built with absent (not undefined) optional members, so they round-trip under
// deepStrictEqual and serialise as the agent sent them.

function toMetricPoint(row: Record<string, SQLOutputValue>): StoredMetricPoint {
  const point: StoredMetricPoint = {
    name: String(row.name),
    type: String(row.type) as MetricType,
    value: num(row.value, 'value'),
    tags: JSON.parse(String(row.tags)) as string[],
    timestamp: num(row.ts, 'ts'),
    version: String(row.version),
  };
  if (typeof row.samples === 'string') point.values = JSON.parse(row.samples) as number[];
  if (typeof row.request_ids === 'string') point.requestIds = JSON.parse(row.request_ids) as string[];
  if (typeof row.weights === 'string') point.weights = JSON.parse(row.weights) as number[];
  if (typeof row.request_id === 'string') point.requestId = row.request_id;
  return point;
}

function toSpan(row: Record<string, SQLOutputValue>): Span {
  const span: Span = {
    traceId: String(row.trace_id),
    spanId: String(row.span_id),
    name: String(row.name),
    service: String(row.service),
    resource: String(row.resource),
    startMicros: num(row.start_us, 'start_us'),
    durationMicros: num(row.duration_us, 'duration_us'),
    error: row.error === 1,
    meta: JSON.parse(String(row.meta)) as Record<string, string>,
    metrics: JSON.parse(String(row.metrics)) as Record<string, number>,
  };
  if (typeof row.parent_id === 'string') span.parentId = row.parent_id;
  if (typeof row.type === 'string') span.type = row.type;
  if (typeof row.request_id === 'string') span.requestId = row.request_id;
  return span;
}

function toLogRecord(row: Record<string, SQLOutputValue>): StoredLogRecord {
  const record: StoredLogRecord = {
    seq: num(row.id, 'id'),
    timestamp: num(row.ts, 'ts'),
    source: String(row.source) as LogSource,
    message: String(row.message),
  };
  if (typeof row.request_id === 'string') record.requestId = row.request_id;
  if (typeof row.level === 'string') record.level = row.level;
  if (typeof row.attributes === 'string') record.attributes = JSON.parse(row.attributes) as Record<string, unknown>;
  return record;
}

function toSecuritySignal(row: Record<string, SQLOutputValue>): StoredSecuritySignal {
  const signal: StoredSecuritySignal = {
    functionName: String(row.function_name),
    timestamp: num(row.ts, 'ts'),
    requestId: String(row.request_id),
    ruleId: String(row.rule_id),
    ruleName: String(row.rule_name),
    category: String(row.category),
    parameter: String(row.parameter),
    value: String(row.value),
    trigger: String(row.trigger_kind),
    blocked: row.blocked === 1,
  };
  if (typeof row.client_ip === 'string') signal.clientIp = row.client_ip;
  if (typeof row.user_agent === 'string') signal.userAgent = row.user_agent;
  if (typeof row.route === 'string') signal.route = row.route;
  if (typeof row.method === 'string') signal.method = row.method;
  return signal;
}

function optStr(value: SQLOutputValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function num(value: SQLOutputValue | undefined, column: string): number {
  if (typeof value !== 'number') throw new TypeError(`Expected a number in ${column}, got ${typeof value}`);
  return value;
}
