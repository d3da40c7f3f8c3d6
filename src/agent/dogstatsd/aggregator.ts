/**
 * Aggregates DogStatsD samples per context (name + metric type + sorted tags) between flushes,
 * the way the Datadog agent does: counts are summed (scaled by 1/rate), gauges keep the last
 * value, sets count distinct members, and `d`/`h`/`ms` become distributions that keep every
 * sample. The number of contexts is bounded so that a client with unbounded tag values cannot
 * grow the agent's memory inside the function's sandbox.
 */
import type { MetricPoint, MetricSource, MetricType } from '../model.ts';
import type { DogStatsDSample, DogStatsDType } from './parser.ts';

export interface DogStatsDAggregatorOptions {
  /** Contexts kept per interval (10,240, as Datadog's); samples of further contexts are dropped and counted. */
  maxContexts?: number;
  /** Tag keys stripped before aggregation (`DD_LAMBDA_CUSTOMER_METRICS_EXCLUDE_TAGS`). */
  excludeTagKeys?: string[];
}

interface Context {
  name: string;
  type: MetricType;
  tags: string[];
  /** count: running sum; gauge: last value; distribution: sum of values. */
  value: number;
  timestamp: number;
  values?: number[];
  weights?: number[];
  /** distribution: whether some weight differs from 1, so that `weights` must be sent. */
  weighted?: boolean;
  members?: Set<string>;
}

const METRIC_TYPE: Record<DogStatsDType, MetricType> = {
  c: 'count',
  g: 'gauge',
  s: 'set',
  d: 'distribution',
  h: 'distribution',
  ms: 'distribution',
};

export class DogStatsDAggregator implements MetricSource {
  readonly #maxContexts: number;
  readonly #excludeTagKeys: Set<string>;
  #contexts = new Map<string, Context>();
  /**
   * Last value of each gauge, kept across flushes so that a relative change (`+3|g`) in a later
   * interval applies to the value the client last set, as statsd defines it. Bounded like contexts.
   */
  readonly #lastGauges = new Map<string, number>();
  /** Samples refused because `maxContexts` contexts were already open. */
  droppedContexts = 0;
  /** Lines that did not parse, as reported by the intake. */
  parseErrors = 0;

  constructor(options: DogStatsDAggregatorOptions = {}) {
    this.#maxContexts = options.maxContexts ?? 10_240;
    this.#excludeTagKeys = new Set(options.excludeTagKeys ?? []);
  }

  recordParseErrors(count: number): void {
    this.parseErrors += count;
  }

  /** Number of contexts open in the current interval. */
  get contextCount(): number {
    return this.#contexts.size;
  }

  add(samples: DogStatsDSample[], nowMs: number = Date.now()): void {
    for (const sample of samples) this.#addOne(sample, nowMs);
  }

  /** Hands over the interval's points and starts a new interval. */
  collect(_nowMs: number): MetricPoint[] {
    const points: MetricPoint[] = [];
    for (const context of this.#contexts.values()) points.push(toPoint(context));
    this.#contexts = new Map();
    return points;
  }

  #addOne(sample: DogStatsDSample, nowMs: number): void {
    const type = METRIC_TYPE[sample.type];
    const tags = this.#normalizeTags(sample.tags);
    const timestamp = sample.timestampMs ?? nowMs;
    // A timestamped sample describes its own moment; it must not be merged into "now".
    const key = `${sample.name}\u0000${type}\u0000${tags.join(',')}${sample.timestampMs === undefined ? '' : `\u0000${sample.timestampMs}`}`;
    let context = this.#contexts.get(key);
    if (!context) {
      if (this.#contexts.size >= this.#maxContexts) {
        this.droppedContexts++;
        return;
      }
      context = { name: sample.name, type, tags, value: 0, timestamp };
      if (type === 'distribution') {
        context.values = [];
        context.weights = [];
        context.weighted = false;
      } else if (type === 'set') {
        context.members = new Set();
      }
      this.#contexts.set(key, context);
    }

    switch (type) {
      case 'count':
        for (const value of sample.values) context.value += value / sample.sampleRate;
        break;
      case 'gauge':
        this.#applyGauge(key, context, sample, timestamp);
        break;
      case 'set':
        if (sample.setValue !== undefined) context.members!.add(sample.setValue);
        break;
      case 'distribution': {
        const weight = 1 / sample.sampleRate;
        if (weight !== 1) context.weighted = true;
        for (const value of sample.values) {
          context.values!.push(value);
          context.weights!.push(weight);
          context.value += value;
        }
        break;
      }
    }
  }

  #applyGauge(key: string, context: Context, sample: DogStatsDSample, timestamp: number): void {
    let current = this.#lastGauges.get(key) ?? 0;
    for (let i = 0; i < sample.values.length; i++) {
      current = sample.relative?.[i] ? current + sample.values[i] : sample.values[i];
    }
    context.value = current;
    context.timestamp = timestamp;
    if (!this.#lastGauges.has(key) && this.#lastGauges.size >= this.#maxContexts) {
      // Forget the gauge set longest ago; Map iterates in insertion order.
      this.#lastGauges.delete(this.#lastGauges.keys().next().value!);
    }
    this.#lastGauges.set(key, current);
  }

  #normalizeTags(tags: string[]): string[] {
    if (tags.length === 0) return tags;
    const kept = this.#excludeTagKeys.size === 0 ? tags.slice() : tags.filter((tag) => !this.#excludeTagKeys.has(tagKey(tag)));
    kept.sort();
    // `#a,#a` is one tag to Datadog; duplicates would also split one context into two.
    let write = 1;
    for (let read = 1; read < kept.length; read++) {
      if (kept[read] !== kept[write - 1]) kept[write++] = kept[read];
    }
    kept.length = Math.min(write, kept.length);
    return kept;
  }
}

function tagKey(tag: string): string {
  const colon = tag.indexOf(':');
  return colon === -1 ? tag : tag.slice(0, colon);
}

function toPoint(context: Context): MetricPoint {
  const point: MetricPoint = { name: context.name, type: context.type, value: context.value, tags: context.tags, timestamp: context.timestamp };
  if (context.type === 'set') {
    point.value = context.members!.size;
  } else if (context.type === 'distribution') {
    point.values = context.values;
    if (context.weighted) point.weights = context.weights;
  }
  return point;
}
