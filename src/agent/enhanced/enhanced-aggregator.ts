/**
 * Enhanced metrics are produced per invocation, but shipping a point per metric per
 * invocation (a dozen a time) costs more than the invocation itself once a function is
 * busy. Like Datadog's extension, which aggregates distributions into one sketch per
 * context and interval, the agent merges them at flush: one distribution per metric and
 * tag set, holding every sample. The invocation of each sample is kept beside it while a
 * flush holds at most `maxAttributed` of them (enough for any end-of-invocation flush);
 * past that the values alone go, as Datadog's do.
 */
import type { MetricPoint, MetricSource } from '../model.ts';

interface Merged {
  point: MetricPoint;
  values: number[];
  requestIds: string[] | undefined;
}

export class EnhancedAggregator implements MetricSource {
  readonly #maxAttributed: number;
  #merged = new Map<string, Merged>();

  constructor(options: { maxAttributed?: number } = {}) {
    this.#maxAttributed = options.maxAttributed ?? 1000;
  }

  add(point: MetricPoint): void {
    const key = `${point.name}\u0000${point.tags.join(',')}`;
    const samples = point.values ?? [point.value];
    let merged = this.#merged.get(key);
    if (!merged) {
      merged = { point: { name: point.name, type: point.type, value: 0, tags: point.tags, timestamp: point.timestamp }, values: [], requestIds: [] };
      this.#merged.set(key, merged);
    }
    for (const v of samples) {
      merged.values.push(v);
      merged.point.value += v;
      if (merged.requestIds) {
        if (point.requestId === undefined || merged.requestIds.length >= this.#maxAttributed) merged.requestIds = undefined;
        else merged.requestIds.push(point.requestId);
      }
    }
  }

  collect(): MetricPoint[] {
    const out: MetricPoint[] = [];
    for (const { point, values, requestIds } of this.#merged.values()) {
      point.values = values;
      if (requestIds && requestIds.length === values.length) {
        if (values.length === 1) point.requestId = requestIds[0];
        else point.requestIds = requestIds;
      }
      out.push(point);
    }
    this.#merged = new Map();
    return out;
  }
}
