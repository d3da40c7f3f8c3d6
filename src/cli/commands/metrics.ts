/**
 * `nimbus metrics <fn>`: what the Nimbus agent reported for a function, from the server's
 * telemetry store. By default one line per metric (points, avg, min, max, p99, last over
 * the window); `--points` lists the points themselves; `--json` prints the server's JSON.
 */
import type { Command } from 'commander';
import { fetchNimbus, printJson, withClientOptions, type ClientOptions } from '../client.ts';
import type { MetricSummary, StoredMetricPoint } from '../../telemetry/types.ts';
import { parseCount, parseSince } from './logs.ts';

interface MetricsOptions extends ClientOptions {
  name?: string;
  since?: string;
  until?: string;
  points?: boolean;
  limit?: string;
}

export function registerMetrics(program: Command): void {
  withClientOptions(
    program
      .command('metrics <function>')
      .description("Summarise a function's metrics as its Nimbus agent reported them (enhanced and custom).")
      .option('--name <metric>', 'only this metric (e.g. aws.lambda.enhanced.duration)')
      .option('--since <when>', 'only points since 15m, 2h, 1d, or a date')
      .option('--until <when>', 'only points until 5m (ago) or a date')
      .option('--points', 'list the points instead of a summary')
      .option('--limit <n>', 'with --points: at most this many (the newest)', '1000'),
  ).action(async (functionName: string, options: MetricsOptions) => {
    const query = new URLSearchParams();
    if (options.name) query.set('name', options.name);
    const since = parseSince(options.since);
    const until = parseSince(options.until);
    if (since !== undefined) query.set('since', String(since));
    if (until !== undefined) query.set('until', String(until));
    const path = `/nimbus/v1/functions/${encodeURIComponent(functionName)}/metrics`;
    if (options.points) {
      query.set('limit', String(parseCount('--limit', options.limit) ?? 1000));
      const body = (await fetchNimbus(options, `${path}?${query}`)) as { points: StoredMetricPoint[] };
      if (options.json) printJson(body);
      else printPoints(functionName, body.points);
      return;
    }
    query.set('summary', 'true');
    const body = (await fetchNimbus(options, `${path}?${query}`)) as { metrics: MetricSummary[] };
    if (options.json) printJson(body);
    else printSummary(functionName, body.metrics);
  });
}

function printSummary(functionName: string, metrics: MetricSummary[]): void {
  if (metrics.length === 0) {
    process.stdout.write(`No metrics for ${functionName} in this window.\n`);
    return;
  }
  const rows = metrics.map((m) => [
    m.name,
    m.type,
    String(m.points),
    formatNumber(m.avg),
    formatNumber(m.min),
    formatNumber(m.max),
    m.p99 === null ? '-' : formatNumber(m.p99),
    formatNumber(m.last),
  ]);
  printTable(['NAME', 'TYPE', 'POINTS', 'AVG', 'MIN', 'MAX', 'P99', 'LAST'], rows);
}

function printPoints(functionName: string, points: StoredMetricPoint[]): void {
  if (points.length === 0) {
    process.stdout.write(`No metric points for ${functionName} in this window.\n`);
    return;
  }
  for (const p of points) {
    process.stdout.write(`${new Date(p.timestamp).toISOString()}  ${p.name}  ${p.type}  ${formatNumber(p.value)}  ${p.tags.join(',')}\n`);
  }
}

/** Six significant digits, without trailing zeros: enough to read, short enough to align. */
export function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(6)));
}

/** Left-aligned columns separated by two spaces. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ') + '\n';
  process.stdout.write(line(header));
  for (const r of rows) process.stdout.write(line(r));
}
