/** `nimbus logs <fn> [--follow]`: a function's log lines, as kept by the server. */
import type { Command } from 'commander';
import { fetchNimbus, withClientOptions, type ClientOptions } from '../client.ts';
import type { StoredLogRecord } from '../../store/types.ts';

interface LogsOptions extends ClientOptions {
  follow?: boolean;
  limit?: string;
  since?: string;
}

/** `10m`, `2h`, `30s` or an ISO date -> epoch ms. */
function sinceMs(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const m = /^(\d+)([smhd])$/.exec(value);
  if (m) return Date.now() - Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const at = Date.parse(value);
  if (Number.isNaN(at)) throw new Error(`--since takes 10m, 2h, 30s or a date, got ${value}`);
  return at;
}

export function registerLogs(program: Command): void {
  withClientOptions(
    program
      .command('logs <function>')
      .description("Print a function's log lines (START, END, REPORT and its own output).")
      .option('-f, --follow', 'keep printing new lines as they arrive')
      .option('--since <when>', 'only lines since 10m, 2h, or a date')
      .option('--limit <n>', 'at most this many lines (the newest)', '1000'),
  ).action(async (functionName: string, options: LogsOptions) => {
    const name = encodeURIComponent(functionName);
    const print = (records: StoredLogRecord[]): void => {
      for (const r of records) {
        if (options.json) process.stdout.write(JSON.stringify(r) + '\n');
        else process.stdout.write(`${r.message}\n`);
      }
    };
    const since = sinceMs(options.since);
    const first = (await fetchNimbus(options, `/nimbus/v1/functions/${name}/logs?limit=${Number(options.limit)}${since ? `&sinceMs=${since}` : ''}`)) as {
      records: StoredLogRecord[];
    };
    print(first.records);
    if (!options.follow) return;
    let after = first.records.at(-1)?.seq ?? 0;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const next = (await fetchNimbus(options, `/nimbus/v1/functions/${name}/logs?afterSeq=${after}&limit=10000`)) as { records: StoredLogRecord[] };
      print(next.records);
      after = next.records.at(-1)?.seq ?? after;
    }
  });
}
