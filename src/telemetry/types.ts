/**
 * The telemetry store seam: where the Nimbus agent's batches land and how the CLI, the
 * query API and the Prometheus endpoint read them back. The embedded default is SQLite
 * (src/store/sqlite-telemetry-store.ts); a cluster would put another database behind the
 * same interface. Everything is keyed by the batch's `resource.functionName`.
 *
 * Methods are async so that a networked backend fits. `ingest` is atomic: a batch is
 * stored whole or not at all.
 */
import type { DropCounts, LogRecord, MetricPoint, MetricType, SecuritySignal, Span, TelemetryBatch } from '../agent/model.ts';

/** How many items of each kind a batch carried (the ingest reply). */
export interface TelemetryCounts {
  metrics: number;
  spans: number;
  logs: number;
  security: number;
}

export interface StoredMetricPoint extends MetricPoint {
  /** The function version of the environment that sent it (`$LATEST`, `3`). */
  version: string;
}

export interface StoredLogRecord extends LogRecord {
  /** Monotonic id assigned by the store, for following new records. */
  seq: number;
}

export interface StoredSecuritySignal extends SecuritySignal {
  functionName: string;
}

/** A time window in epoch milliseconds; both ends inclusive, both optional. */
export interface TimeWindow {
  sinceMs?: number;
  untilMs?: number;
}

export interface MetricQuery extends TimeWindow {
  /** Only points of this metric name. */
  name?: string;
  /** At most this many points, the newest ones (returned oldest first). */
  limit: number;
}

/** A scan over every point of a window, for summaries (no limit: the caller aggregates as it goes). */
export type MetricScan = TimeWindow & { name?: string };

export interface TraceQuery {
  sinceMs?: number;
  /** At most this many traces, the newest first. */
  limit: number;
}

/** One trace as a list shows it: its root span and its extent. */
export interface TraceSummary {
  traceId: string;
  /** The root: the earliest span whose parent is not in the trace (or has none). */
  rootName: string;
  rootResource: string;
  rootService: string;
  startMicros: number;
  /** From the earliest start to the latest end of its spans. */
  durationMicros: number;
  spanCount: number;
  /** True when any span of it is an error. */
  error: boolean;
  requestId?: string;
}

export interface LogQuery {
  sinceMs?: number;
  requestId?: string;
  /** Only records stored after this seq (following). */
  afterSeq?: number;
  /** At most this many records, the newest ones (returned oldest first). */
  limit: number;
}

export interface SecurityQuery {
  functionName?: string;
  sinceMs?: number;
  /** At most this many signals, newest first. */
  limit: number;
}

/** Enhanced-metric totals per series, for seeding the Prometheus aggregation at start. */
export interface EnhancedSeriesTotals {
  functionName: string;
  name: string;
  version: string;
  tags: string[];
  /** Σ value × weight over the series' samples. */
  sampleSum: number;
  /** Σ weight over the series' samples. */
  sampleCount: number;
}

export interface StoredDropCounts extends DropCounts {
  functionName: string;
  /** `sentAt` of the batch that reported them. */
  sentAt: number;
}

export interface RetentionPolicy {
  /** Rows whose timestamp is before this epoch ms are deleted. */
  olderThanMs: number;
  /** Each table keeps at most this many rows, the most recently received. */
  maxRowsPerTable: number;
}

export interface PurgeStep {
  deleted: TelemetryCounts;
  /** True when the step stopped at its delete budget and more rows are due. */
  more: boolean;
}

export interface TelemetryStore {
  /** Stores a validated batch in one transaction; a span already stored (same trace and span id) is kept once. */
  ingest(batch: TelemetryBatch): Promise<TelemetryCounts>;
  /** Points of a function in timestamp order (newest last). */
  queryMetrics(functionName: string, query: MetricQuery): Promise<StoredMetricPoint[]>;
  /** Calls `visit` for each point of the window in timestamp order; returns how many. */
  scanMetrics(functionName: string, scan: MetricScan, visit: (point: StoredMetricPoint) => void): Promise<number>;
  listTraces(functionName: string, query: TraceQuery): Promise<TraceSummary[]>;
  /** Every span of a trace in start order; empty when the trace is unknown. */
  getTrace(functionName: string, traceId: string): Promise<Span[]>;
  queryLogs(functionName: string, query: LogQuery): Promise<StoredLogRecord[]>;
  hasLogs(functionName: string): Promise<boolean>;
  querySecurity(query: SecurityQuery): Promise<StoredSecuritySignal[]>;
  /** Enhanced (`aws.lambda.enhanced.*`) totals per function, name, version and tag set. */
  enhancedTotals(): Promise<EnhancedSeriesTotals[]>;
  /** The latest drop counts each function's agent reported. */
  dropCounts(): Promise<StoredDropCounts[]>;
  /** Deletes every record of a function. */
  deleteFunction(functionName: string): Promise<void>;
  /** Deletes at most `maxDeletes` rows per table that the policy no longer keeps. */
  purgeStep(policy: RetentionPolicy, maxDeletes: number): Promise<PurgeStep>;
  close(): Promise<void>;
}

export const enhancedMetricPrefix = 'aws.lambda.enhanced.';

/**
 * The weighted sum and count of the samples a point stands for: a distribution's values
 * times their weights (1 / sample rate); any other point is one sample of its value.
 */
export function sampleTotals(point: Pick<MetricPoint, 'value' | 'values' | 'weights'>): { sum: number; count: number } {
  const values = point.values;
  if (values === undefined || values.length === 0) return { sum: point.value, count: 1 };
  const weights = point.weights;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const w = weights === undefined ? 1 : weights[i]!;
    sum += values[i]! * w;
    count += w;
  }
  return { sum, count };
}

/** One metric's statistics over a window (the `?summary=true` reply and `nimbus metrics`). */
export interface MetricSummary {
  name: string;
  type: MetricType;
  points: number;
  /** Weighted number of samples (distributions); the number of points otherwise. */
  samples: number;
  sum: number;
  min: number;
  max: number;
  avg: number;
  /** The newest sample. */
  last: number;
  /** Over distribution samples only; null for other types. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
}
