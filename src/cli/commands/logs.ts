/**
 * `nimbus logs <fn> [--follow] [--source agent|platform]`: a function's log lines. Two
 * sources: the platform's lines as the server keeps them (START, END, REPORT and the
 * function's output), and the records the Nimbus agent sent (with request id and level).
 * Without --source, the agent's records when the function has any, else the platform's.
 */
import type { Command } from 'commander';
import { fetchNimbus, withClientOptions, type ClientOptions } from '../client.ts';
import type { StoredLogRecord as PlatformRecord } from '../../store/types.ts';
import type { StoredLogRecord as AgentRecord } from '../../telemetry/types.ts';

type LogSourceChoice = 'agent' | 'platform';

interface LogsOptions extends ClientOptions {
  follow?: boolean;
  limit?: string;
  since?: string;
  source?: string;
}

/** `10m`, `2h`, `30s`, `1d` or a date -> epoch ms. */
export function parseSince(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const m = /^(\d+)([smhd])$/.exec(value);
  if (m) return Date.now() - Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const at = Date.parse(value);
  if (Number.isNaN(at)) throw new Error(`--since takes 10m, 2h, 30s or a date, got ${value}`);
  return at;
}

/** A positive integer flag, or a clear error naming it. */
export function parseCount(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} takes a positive integer, got ${value}`);
  return n;
}

function sourceChoice(value: string | undefined): LogSourceChoice | undefined {
  if (value === undefined) return undefined;
  if (value === 'agent' || value === 'platform') return value;
  throw new Error(`--source takes agent or platform, got ${value}`);
}

export function registerLogs(program: Command): void {
  withClientOptions(
    program
      .command('logs <function>')
      .description("Print a function's log lines: the Nimbus agent's records when it sends any, else the platform's.")
      .option('-f, --follow', 'keep printing new lines as they arrive')
      .option('--since <when>', 'only lines since 10m, 2h, or a date')
      .option('--limit <n>', 'at most this many lines (the newest)', '1000')
      .option('--source <source>', 'agent (records the agent sent) or platform (lines the server captured)'),
  ).action(async (functionName: string, options: LogsOptions) => {
    const name = encodeURIComponent(functionName);
    const limit = parseCount('--limit', options.limit) ?? 1000;
    const since = parseSince(options.since);
    const source = sourceChoice(options.source) ?? (await defaultSource(name, options));
    if (source === 'agent') await agentLogs(name, options, limit, since);
    else await platformLogs(name, options, limit, since);
  });
}

/** The agent's records when the function has any (still retained), else the platform's lines. */
async function defaultSource(name: string, options: LogsOptions): Promise<LogSourceChoice> {
  const probe = (await fetchNimbus(options, `/nimbus/v1/functions/${name}/telemetry-logs?limit=1`)) as { records: AgentRecord[] };
  return probe.records.length > 0 ? 'agent' : 'platform';
}

async function platformLogs(name: string, options: LogsOptions, limit: number, since: number | undefined): Promise<void> {
  const print = (records: PlatformRecord[]): void => {
    for (const r of records) {
      if (options.json) process.stdout.write(JSON.stringify({ ...r, source: 'platform' }) + '\n');
      else process.stdout.write(`${r.message}\n`);
    }
  };
  const first = (await fetchNimbus(options, `/nimbus/v1/functions/${name}/logs?limit=${limit}${since ? `&sinceMs=${since}` : ''}`)) as {
    records: PlatformRecord[];
  };
  print(first.records);
  if (!options.follow) return;
  let after = first.records.at(-1)?.seq ?? 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const next = (await fetchNimbus(options, `/nimbus/v1/functions/${name}/logs?afterSeq=${after}&limit=10000`)) as { records: PlatformRecord[] };
    print(next.records);
    after = next.records.at(-1)?.seq ?? after;
  }
}

async function agentLogs(name: string, options: LogsOptions, limit: number, since: number | undefined): Promise<void> {
  // The agent record's own `source` (function, platform, extension) moves to `origin`, so
  // that `source` says the same thing in both sources' JSON: where the line came from.
  const print = (records: AgentRecord[]): void => {
    for (const r of records) {
      if (options.json) {
        const { source: origin, ...rest } = r;
        process.stdout.write(JSON.stringify({ ...rest, origin, source: 'agent' }) + '\n');
      } else {
        const level = (r.level ?? '-').toUpperCase();
        process.stdout.write(`${new Date(r.timestamp).toISOString()}\t${r.requestId ?? '-'}\t${level}\t${r.message}\n`);
      }
    }
  };
  const first = (await fetchNimbus(options, `/nimbus/v1/functions/${name}/telemetry-logs?limit=${limit}${since ? `&since=${since}` : ''}`)) as {
    records: AgentRecord[];
  };
  print(first.records);
  if (!options.follow) return;
  let after = maxSeq(first.records, 0);
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const next = (await fetchNimbus(options, `/nimbus/v1/functions/${name}/telemetry-logs?afterSeq=${after}&limit=10000`)) as { records: AgentRecord[] };
    print(next.records);
    after = maxSeq(next.records, after);
  }
}

/** Agent records come in timestamp order, which need not be arrival (seq) order. */
function maxSeq(records: AgentRecord[], floor: number): number {
  let max = floor;
  for (const r of records) if (r.seq > max) max = r.seq;
  return max;
}
