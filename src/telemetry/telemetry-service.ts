/**
 * TelemetryService: what the server does with the Nimbus agent's batches. Stores them
 * (atomically, through the TelemetryStore seam), keeps the Prometheus aggregation current,
 * enforces retention (at start, then every minute on an unref'd timer), and answers the
 * queries of the CLI and the HTTP API, including metric summaries with percentiles.
 *
 * Batches reach `ingest` already validated (batch-validation.ts) and for a function that
 * exists; the route checks both.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { MetricType, Span, TelemetryBatch } from '../agent/model.ts';
import type { Logger } from '../logging/logger.ts';
import { EnhancedMetricsAggregation, renderExposition } from './prometheus.ts';
import type {
  LogQuery,
  MetricQuery,
  MetricScan,
  MetricSummary,
  SecurityQuery,
  StoredLogRecord,
  StoredMetricPoint,
  StoredSecuritySignal,
  TelemetryCounts,
  TelemetryStore,
  TraceQuery,
  TraceSummary,
} from './types.ts';

export interface TelemetryServiceOptions {
  store: TelemetryStore;
  logger: Logger;
  /** Rows older than this are purged. */
  retentionHours: number;
  /** Each table keeps at most this many rows. */
  maxRowsPerTable: number;
  /** Between purges (default 60 s). */
  purgeIntervalMs?: number;
  /** Epoch ms (tests). */
  now?: () => number;
}

/** Rows deleted per table per purge step; the event loop runs between steps. */
const PURGE_CHUNK = 5_000;

export class TelemetryService {
  readonly #o: TelemetryServiceOptions;
  readonly #store: TelemetryStore;
  readonly #now: () => number;
  readonly #aggregation = new EnhancedMetricsAggregation();
  #timer: NodeJS.Timeout | undefined;
  #purging: Promise<TelemetryCounts> | undefined;
  #closed = false;

  constructor(options: TelemetryServiceOptions) {
    if (!(options.retentionHours > 0)) throw new RangeError(`retentionHours must be positive, got ${options.retentionHours}`);
    if (!Number.isSafeInteger(options.maxRowsPerTable) || options.maxRowsPerTable < 1) {
      throw new RangeError(`maxRowsPerTable must be a positive integer, got ${options.maxRowsPerTable}`);
    }
    this.#o = options;
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
  }

  /** Seeds the Prometheus aggregation from what is retained, purges, and starts the purge timer. */
  async start(): Promise<void> {
    for (const totals of await this.#store.enhancedTotals()) this.#aggregation.addTotals(totals);
    for (const d of await this.#store.dropCounts()) this.#aggregation.setDropped(d.functionName, d, d.sentAt);
    await this.purge();
    this.#timer = setInterval(() => {
      this.purge().catch((err: unknown) => this.#o.logger.warn('telemetry purge failed', { error: (err as Error).message }));
    }, this.#o.purgeIntervalMs ?? 60_000);
    this.#timer.unref();
  }

  /** Stops the timer, lets a running purge finish, and closes the store. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#purging?.catch(() => undefined);
    await this.#store.close();
  }

  async ingest(batch: TelemetryBatch): Promise<TelemetryCounts> {
    const accepted = await this.#store.ingest(batch);
    // Only after the commit: a refused batch leaves the aggregation as it was.
    const { functionName, version } = batch.resource;
    for (const point of batch.metrics) this.#aggregation.add(functionName, version, point);
    this.#aggregation.setDropped(functionName, batch.dropped, batch.sentAt);
    return accepted;
  }

  metrics(functionName: string, query: MetricQuery): Promise<StoredMetricPoint[]> {
    return this.#store.queryMetrics(functionName, query);
  }

  /** Per metric name and type over the window: points, samples, sum, min, max, avg, last, percentiles. */
  async metricSummary(functionName: string, scan: MetricScan): Promise<MetricSummary[]> {
    const byKey = new Map<string, SummaryAccumulator>();
    await this.#store.scanMetrics(functionName, scan, (point) => {
      const key = `${point.name}\u0000${point.type}`;
      let acc = byKey.get(key);
      if (acc === undefined) {
        acc = new SummaryAccumulator(point.name, point.type);
        byKey.set(key, acc);
      }
      acc.add(point);
    });
    return [...byKey.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.type < b.type ? -1 : 1))
      .map((acc) => acc.summary());
  }

  traces(functionName: string, query: TraceQuery): Promise<TraceSummary[]> {
    return this.#store.listTraces(functionName, query);
  }

  trace(functionName: string, traceId: string): Promise<Span[]> {
    return this.#store.getTrace(functionName, traceId);
  }

  logs(functionName: string, query: LogQuery): Promise<StoredLogRecord[]> {
    return this.#store.queryLogs(functionName, query);
  }

  /** Whether the function's agent ever sent log records (that are still retained). */
  hasLogs(functionName: string): Promise<boolean> {
    return this.#store.hasLogs(functionName);
  }

  securityEvents(query: SecurityQuery): Promise<StoredSecuritySignal[]> {
    return this.#store.querySecurity(query);
  }

  /** The `GET /metrics` body. */
  prometheus(): string {
    return renderExposition(this.#aggregation.families());
  }

  /** A deleted function's telemetry goes with it (FunctionService.onDeleted). */
  async deleteFunction(functionName: string): Promise<void> {
    await this.#store.deleteFunction(functionName);
    this.#aggregation.deleteFunction(functionName);
  }

  /** Deletes what retention no longer keeps; returns the rows deleted per table. Overlapping calls share one run. */
  purge(): Promise<TelemetryCounts> {
    this.#purging ??= this.#purge().finally(() => {
      this.#purging = undefined;
    });
    return this.#purging;
  }

  async #purge(): Promise<TelemetryCounts> {
    const policy = { olderThanMs: this.#now() - this.#o.retentionHours * 3_600_000, maxRowsPerTable: this.#o.maxRowsPerTable };
    const total: TelemetryCounts = { metrics: 0, spans: 0, logs: 0, security: 0 };
    // In chunks, so that a large purge (the first after a long stop) does not hold the
    // event loop, and ingest and queries keep being served in between.
    for (;;) {
      const step = await this.#store.purgeStep(policy, PURGE_CHUNK);
      total.metrics += step.deleted.metrics;
      total.spans += step.deleted.spans;
      total.logs += step.deleted.logs;
      total.security += step.deleted.security;
      if (!step.more || this.#closed) break;
      await yieldToEventLoop();
    }
    if (total.metrics + total.spans + total.logs + total.security > 0) this.#o.logger.debug('telemetry purged', { ...total });
    return total;
  }
}

/** Running statistics of one metric over a scan. */
class SummaryAccumulator {
  readonly name: string;
  readonly type: MetricType;
  #points = 0;
  #samples = 0;
  #sum = 0;
  #min = Infinity;
  #max = -Infinity;
  #last = 0;
  /** Distribution samples for percentiles; weights only once a weight other than 1 is seen. */
  readonly #values: number[] = [];
  #weights: number[] | undefined;

  constructor(name: string, type: MetricType) {
    this.name = name;
    this.type = type;
  }

  add(point: StoredMetricPoint): void {
    this.#points++;
    const values = point.values;
    if (this.type !== 'distribution' || values === undefined || values.length === 0) {
      this.#sample(point.value, 1);
      return;
    }
    const weights = point.weights;
    for (let i = 0; i < values.length; i++) this.#sample(values[i]!, weights === undefined ? 1 : weights[i]!);
  }

  #sample(value: number, weight: number): void {
    this.#samples += weight;
    this.#sum += value * weight;
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
    this.#last = value;
    if (this.type !== 'distribution') return;
    if (weight !== 1 && this.#weights === undefined) this.#weights = this.#values.map(() => 1);
    this.#values.push(value);
    this.#weights?.push(weight);
  }

  summary(): MetricSummary {
    const [p50, p95, p99] = this.type === 'distribution' ? quantiles(this.#values, this.#weights, [0.5, 0.95, 0.99]) : [null, null, null];
    return {
      name: this.name,
      type: this.type,
      points: this.#points,
      samples: this.#samples,
      sum: this.#sum,
      min: this.#min,
      max: this.#max,
      avg: this.#samples > 0 ? this.#sum / this.#samples : 0,
      last: this.#last,
      p50: p50 ?? null,
      p95: p95 ?? null,
      p99: p99 ?? null,
    };
  }
}

/**
 * Nearest-rank quantiles: the smallest sample whose cumulative weight reaches q of the
 * total. Unweighted samples take a native numeric sort of a typed array.
 */
export function quantiles(values: readonly number[], weights: readonly number[] | undefined, qs: readonly number[]): Array<number | null> {
  if (values.length === 0) return qs.map(() => null);
  if (weights === undefined) {
    const sorted = Float64Array.from(values).sort();
    return qs.map((q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!);
  }
  const order = values.map((_, i) => i).sort((a, b) => values[a]! - values[b]!);
  let total = 0;
  for (const w of weights) total += w;
  return qs.map((q) => {
    const target = q * total;
    let cumulative = 0;
    for (const i of order) {
      cumulative += weights[i]!;
      if (cumulative >= target) return values[i]!;
    }
    return values[order.at(-1)!]!;
  });
}
