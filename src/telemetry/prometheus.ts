/**
 * The Prometheus scrape of `GET /metrics`: the text exposition format (version 0.0.4) and
 * the in-memory aggregation of every function's enhanced metrics behind it.
 *
 * The aggregation is updated at ingest (a map lookup and two additions per enhanced point)
 * and seeded from the store's retained points at start, so a restart does not zero the
 * counters. Purging old points never lowers it: counters only go up, as Prometheus expects.
 */
import type { DropCounts, MetricPoint } from '../agent/model.ts';
import { enhancedMetricPrefix, sampleTotals, type EnhancedSeriesTotals } from './types.ts';

export type FamilyType = 'counter' | 'gauge' | 'summary';

export interface ExpositionSample {
  /** The sample's full name (`x_total`, `x_sum`, `x_count`). */
  name: string;
  /** Label name and value pairs, in the order they are written. */
  labels: ReadonlyArray<readonly [string, string]>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: FamilyType;
  samples: ExpositionSample[];
}

export const prometheusContentType = 'text/plain; version=0.0.4; charset=utf-8';

/** The families as the text format writes them: `# HELP`, `# TYPE`, then one line per sample. */
export function renderExposition(families: readonly MetricFamily[]): string {
  let out = '';
  for (const f of families) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) out += `${s.name}${renderLabels(s.labels)} ${formatValue(s.value)}\n`;
  }
  return out;
}

/** `{a="1",b="2"}`, or nothing without labels. */
export function renderLabels(labels: ReadonlyArray<readonly [string, string]>): string {
  if (labels.length === 0) return '';
  return `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/** Label values escape backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** HELP text escapes backslash and line feed (not quotes). */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/** Go's ParseFloat spellings for the values JavaScript prints differently. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** A valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, other characters as `_`. */
export function metricName(raw: string): string {
  const name = raw.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

/** Enhanced metrics that count events: exposed as counters, the others as summaries. */
const counterMetrics = new Set(['invocations', 'errors', 'timeouts', 'out_of_memory', 'shutdowns', 'unused_init']);

const helps: Record<string, string> = {
  invocations: 'Invocations, from the Nimbus agent (aws.lambda.enhanced.invocations).',
  errors: 'Invocations that ended in an error (aws.lambda.enhanced.errors).',
  timeouts: 'Invocations that timed out (aws.lambda.enhanced.timeouts).',
  out_of_memory: 'Invocations that ran out of memory (aws.lambda.enhanced.out_of_memory).',
  shutdowns: 'Execution environments shut down (aws.lambda.enhanced.shutdowns).',
  unused_init: 'Environments shut down without an invocation (aws.lambda.enhanced.unused_init).',
  duration: 'Invocation duration in seconds (aws.lambda.enhanced.duration).',
  billed_duration: 'Billed duration in seconds (aws.lambda.enhanced.billed_duration).',
  init_duration: 'Init phase duration in seconds (aws.lambda.enhanced.init_duration).',
  runtime_duration: 'Time until the runtime responded, in milliseconds (aws.lambda.enhanced.runtime_duration).',
  post_runtime_duration: 'Time after the response until the environment was ready, in milliseconds (aws.lambda.enhanced.post_runtime_duration).',
  max_memory_used: 'Peak memory used in MB (aws.lambda.enhanced.max_memory_used).',
  memorysize: 'Configured memory in MB (aws.lambda.enhanced.memorysize).',
  estimated_cost: 'Estimated cost in US dollars (aws.lambda.enhanced.estimated_cost).',
  produced_bytes: 'Response bytes produced (aws.lambda.enhanced.produced_bytes).',
};

/** Tag keys copied to labels, in label order; `functionname` is always the function the batch came from. */
const tagLabels = ['executedversion', 'region', 'runtime', 'memorysize', 'cold_start'] as const;

interface Series {
  family: string;
  kind: 'counter' | 'summary';
  help: string;
  labels: Array<readonly [string, string]>;
  /** Sorting key within the family. */
  labelText: string;
  sum: number;
  count: number;
}

interface FunctionSeries {
  /** By name, version and raw tags: the ingest path's lookup, skipping label extraction. */
  byRaw: Map<string, Series>;
  /** By family and rendered labels: tag sets that differ only in unexposed tags share a series. */
  byLabels: Map<string, Series>;
  dropped?: { counts: DropCounts; sentAt: number };
}

/** Raw keys kept per function before the lookup cache is reset (series themselves stay). */
const RAW_KEY_LIMIT = 10_000;

export class EnhancedMetricsAggregation {
  readonly #functions = new Map<string, FunctionSeries>();

  /** Adds an ingested point; points that are not `aws.lambda.enhanced.*` are ignored. */
  add(functionName: string, version: string, point: MetricPoint): void {
    if (!point.name.startsWith(enhancedMetricPrefix)) return;
    const series = this.#series(functionName, point.name, version, point.tags);
    const totals = sampleTotals(point);
    series.sum += totals.sum;
    series.count += totals.count;
  }

  /** Adds the totals of retained points (seeding at start). */
  addTotals(t: EnhancedSeriesTotals): void {
    if (!t.name.startsWith(enhancedMetricPrefix)) return;
    const series = this.#series(t.functionName, t.name, t.version, t.tags);
    series.sum += t.sampleSum;
    series.count += t.sampleCount;
  }

  /** Records an agent's drop counts unless a newer report is already known. */
  setDropped(functionName: string, counts: DropCounts, sentAt: number): void {
    const f = this.#function(functionName);
    if (f.dropped !== undefined && f.dropped.sentAt > sentAt) return;
    f.dropped = { counts: { metrics: counts.metrics, spans: counts.spans, logs: counts.logs, security: counts.security }, sentAt };
  }

  deleteFunction(functionName: string): void {
    this.#functions.delete(functionName);
  }

  /** Every family, sorted by name, each series sorted by labels. */
  families(): MetricFamily[] {
    const byName = new Map<string, { kind: Series['kind']; help: string; series: Series[] }>();
    for (const f of this.#functions.values()) {
      for (const s of f.byLabels.values()) {
        const family = byName.get(s.family);
        // Two metric names can map to one family name (`x_total` as a summary beside the
        // counter `x`); writing both would break the scrape, so the first kind wins.
        if (family === undefined) byName.set(s.family, { kind: s.kind, help: s.help, series: [s] });
        else if (family.kind === s.kind) family.series.push(s);
      }
    }
    const families: MetricFamily[] = [];
    for (const name of [...byName.keys()].sort()) {
      const { kind, help, series } = byName.get(name)!;
      series.sort((a, b) => (a.labelText < b.labelText ? -1 : a.labelText > b.labelText ? 1 : 0));
      const samples: ExpositionSample[] = [];
      for (const s of series) {
        if (kind === 'counter') samples.push({ name, labels: s.labels, value: s.sum });
        else samples.push({ name: `${name}_sum`, labels: s.labels, value: s.sum }, { name: `${name}_count`, labels: s.labels, value: s.count });
      }
      families.push({ name, help, type: kind, samples });
    }
    const dropped = this.#droppedFamily();
    if (dropped.samples.length > 0) families.push(dropped);
    return families;
  }

  #droppedFamily(): MetricFamily {
    const samples: ExpositionSample[] = [];
    for (const functionName of [...this.#functions.keys()].sort()) {
      const d = this.#functions.get(functionName)!.dropped;
      if (d === undefined) continue;
      for (const kind of ['logs', 'metrics', 'security', 'spans'] as const) {
        samples.push({ name: 'nimbus_telemetry_dropped', labels: [['functionname', functionName], ['kind', kind]], value: d.counts[kind] });
      }
    }
    return {
      name: 'nimbus_telemetry_dropped',
      help: "Items a function's Nimbus agent dropped since it started (its latest report), by kind.",
      type: 'gauge',
      samples,
    };
  }

  #function(functionName: string): FunctionSeries {
    let f = this.#functions.get(functionName);
    if (f === undefined) {
      f = { byRaw: new Map(), byLabels: new Map() };
      this.#functions.set(functionName, f);
    }
    return f;
  }

  #series(functionName: string, name: string, version: string, tags: readonly string[]): Series {
    const f = this.#function(functionName);
    const raw = `${name}\u0000${version}\u0000${tags.join('\u0000')}`;
    const cached = f.byRaw.get(raw);
    if (cached !== undefined) return cached;
    const suffix = name.slice(enhancedMetricPrefix.length);
    const labels = labelsOf(functionName, version, tags);
    const series = seriesIn(f, suffix, labels);
    // Outcome counters exist from the first invocation, at 0, so that rate() and ratios
    // over them work before the first error rather than from it.
    if (suffix === 'invocations') for (const outcome of outcomeCounters) seriesIn(f, outcome, labels);
    if (f.byRaw.size >= RAW_KEY_LIMIT) f.byRaw.clear();
    f.byRaw.set(raw, series);
    return series;
  }
}

const outcomeCounters = ['errors', 'timeouts', 'out_of_memory'] as const;

/** The series of an enhanced metric (by its name after the prefix) with these labels, created at 0. */
function seriesIn(f: FunctionSeries, suffix: string, labels: Array<readonly [string, string]>): Series {
  const kind = counterMetrics.has(suffix) ? 'counter' : 'summary';
  const family = metricName(`aws_lambda_enhanced_${suffix}`) + (kind === 'counter' ? '_total' : '');
  const labelText = renderLabels(labels);
  // The kind is part of the key: a summary named like a counter stays apart, and families() drops it.
  const key = `${kind} ${family}${labelText}`;
  let series = f.byLabels.get(key);
  if (series === undefined) {
    const help = helps[suffix] ?? `${enhancedMetricPrefix}${suffix} as sent by the Nimbus agent.`;
    series = { family, kind, help, labels, labelText, sum: 0, count: 0 };
    f.byLabels.set(key, series);
  }
  return series;
}

function labelsOf(functionName: string, version: string, tags: readonly string[]): Array<readonly [string, string]> {
  const found: Partial<Record<(typeof tagLabels)[number], string>> = {};
  for (const tag of tags) {
    const colon = tag.indexOf(':');
    if (colon <= 0) continue;
    const key = tag.slice(0, colon) as (typeof tagLabels)[number];
    if ((tagLabels as readonly string[]).includes(key) && found[key] === undefined) found[key] = tag.slice(colon + 1);
  }
  found.executedversion ??= version;
  const labels: Array<readonly [string, string]> = [['functionname', functionName]];
  // An empty label value means "no label" to Prometheus; leaving it out says the same.
  for (const key of tagLabels) if (found[key]) labels.push([key, found[key]!]);
  return labels;
}
