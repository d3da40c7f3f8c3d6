/**
 * `nimbus traces <fn>`: the traces the Nimbus agent sent for a function, newest first;
 * `--trace-id` prints one trace as an indented tree of its spans with their offsets and
 * durations. `--json` prints the server's JSON.
 */
import type { Command } from 'commander';
import type { Span } from '../../agent/model.ts';
import { fetchNimbus, printJson, withClientOptions, type ClientOptions } from '../client.ts';
import type { TraceSummary } from '../../telemetry/types.ts';
import { parseCount, parseSince } from './logs.ts';
import { formatNumber, printTable } from './metrics.ts';

interface TracesOptions extends ClientOptions {
  traceId?: string;
  since?: string;
  limit?: string;
}

export function registerTraces(program: Command): void {
  withClientOptions(
    program
      .command('traces <function>')
      .description("List a function's traces as its Nimbus agent reported them, or show one as a tree of spans.")
      .option('--trace-id <id>', 'show this trace (32 hex digits) as a tree')
      .option('--since <when>', 'only traces since 15m, 2h, 1d, or a date')
      .option('--limit <n>', 'at most this many traces (the newest)', '50'),
  ).action(async (functionName: string, options: TracesOptions) => {
    const path = `/nimbus/v1/functions/${encodeURIComponent(functionName)}/traces`;
    if (options.traceId !== undefined) {
      const body = (await fetchNimbus(options, `${path}/${encodeURIComponent(options.traceId)}`)) as { traceId: string; spans: Span[] };
      if (options.json) printJson(body);
      else printTree(body.traceId, body.spans);
      return;
    }
    const query = new URLSearchParams({ limit: String(parseCount('--limit', options.limit) ?? 50) });
    const since = parseSince(options.since);
    if (since !== undefined) query.set('since', String(since));
    const body = (await fetchNimbus(options, `${path}?${query}`)) as { traces: TraceSummary[] };
    if (options.json) printJson(body);
    else printList(functionName, body.traces);
  });
}

function printList(functionName: string, traces: TraceSummary[]): void {
  if (traces.length === 0) {
    process.stdout.write(`No traces for ${functionName} in this window.\n`);
    return;
  }
  printTable(
    ['START', 'TRACE ID', 'DURATION', 'SPANS', 'ERROR', 'REQUEST ID', 'ROOT'],
    traces.map((t) => [
      new Date(t.startMicros / 1000).toISOString(),
      t.traceId,
      millis(t.durationMicros),
      String(t.spanCount),
      t.error ? 'error' : '-',
      t.requestId ?? '-',
      t.rootResource && t.rootResource !== t.rootName ? `${t.rootName} ${t.rootResource}` : t.rootName,
    ]),
  );
}

/** Children under their parent, in start order; spans whose parent is not in the trace are roots. */
function printTree(traceId: string, spans: Span[]): void {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string | undefined, Span[]>();
  for (const s of spans) {
    const parent = s.parentId !== undefined && ids.has(s.parentId) ? s.parentId : undefined;
    const list = children.get(parent) ?? [];
    list.push(s);
    children.set(parent, list);
  }
  let start = Infinity;
  let end = -Infinity;
  for (const s of spans) {
    start = Math.min(start, s.startMicros);
    end = Math.max(end, s.startMicros + s.durationMicros);
  }
  process.stdout.write(`trace ${traceId}  ${spans.length} span(s)  ${millis(end - start)}\n`);
  // Iterative, with a visited set: a malformed trace (a cycle of parent ids) cannot loop.
  const visited = new Set<Span>();
  const stack: Array<{ span: Span; depth: number }> = (children.get(undefined) ?? []).map((span) => ({ span, depth: 0 })).reverse();
  while (stack.length > 0) {
    const { span, depth } = stack.pop()!;
    if (visited.has(span)) continue;
    visited.add(span);
    const label = span.resource && span.resource !== span.name ? `${span.name}  ${span.resource}` : span.name;
    const flags = `${span.error ? '  ERROR' : ''}${span.requestId ? `  [${span.requestId}]` : ''}`;
    process.stdout.write(`${'  '.repeat(depth)}${label}  +${millis(span.startMicros - start)}  ${millis(span.durationMicros)}${flags}\n`);
    const kids = children.get(span.spanId) ?? [];
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ span: kids[i]!, depth: depth + 1 });
  }
  // Spans only reachable through a cycle have no root: show them rather than hide them.
  for (const span of spans) if (!visited.has(span)) process.stdout.write(`(unrooted) ${span.name}  ${millis(span.durationMicros)}\n`);
}

function millis(micros: number): string {
  return `${formatNumber(micros / 1000)} ms`;
}
