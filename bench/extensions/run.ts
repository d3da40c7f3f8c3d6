/**
 * bench/extensions: what Lambda extensions cost a warm invoke on Nimbus, measured in one
 * run against the same function without them (a claim is a ratio, never a timing
 * assertion in a test).
 *
 *   npm run bench:extensions                    # 5 s per measurement, 3 rounds
 *   BENCH_SECONDS=2 BENCH_ROUNDS=1 npm run bench:extensions   # a quick look
 *
 * Three functions on one Nimbus server, same handler (bench/fixtures/handler), same
 * memory, same event:
 *   - none:      no extension;
 *   - noop:      one external extension (a layer's /opt/extensions) registered for INVOKE
 *                and SHUTDOWN that asks for the next event at once (noop-extension.mjs):
 *                every invoke sends it INVOKE and waits for its `next` (post-runtime phase);
 *   - telemetry: one Telemetry API subscriber for platform and function events
 *                (telemetry-subscriber.mjs): every invoke produces events that are
 *                buffered and POSTed to it.
 * Warm invokes at 1 and 10 connections, after a warm-up, in rounds; each round measures
 * the three back to back, in an order that rotates from round to round, and a ratio is
 * taken within the round (so that drift in the machine's load hits both sides of it
 * alike). Reported: per contender the median of the rounds' p50, p99 and req/s, and the
 * median of the per-round ratios. Target: under 10% added p50 latency for each, at 1
 * connection.
 *
 * Env: BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (2), BENCH_ROUNDS (3), BENCH_CONNECTIONS (1,10;
 * 1 is always measured: the targets are there).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CreateFunctionCommand, PublishLayerVersionCommand } from '@aws-sdk/client-lambda';
import yazl from 'yazl';
import { PAYLOAD, probe } from '../invoke/http.ts';
import { runLoad, type LoadResult } from '../invoke/load.ts';
import { fixtureZip, invokeUrl, startNimbus, waitActive, type NimbusServer } from '../invoke/nimbus.ts';
import { installCleanup, leftovers, stopAll } from '../invoke/procs.ts';
import { envNumber } from '../invoke/stats.ts';

const config = {
  seconds: envNumber('BENCH_SECONDS', 5),
  warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 2),
  rounds: Math.round(envNumber('BENCH_ROUNDS', 3)),
  connections: (process.env.BENCH_CONNECTIONS || '1,10').split(',').map((s) => Math.round(envNumber('BENCH_CONNECTIONS', Number(s)))),
};
const CONNECTIONS = config.connections.includes(1) ? config.connections : [1, ...config.connections];
const ROLE = 'arn:aws:iam::000000000000:role/bench';
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

type Contender = 'none' | 'noop' | 'telemetry';
const contenders: Array<{ id: Contender; label: string; extension?: { name: string; file: string; events: string } }> = [
  { id: 'none', label: 'no extension' },
  { id: 'noop', label: 'one no-op extension (INVOKE)', extension: { name: 'noop', file: 'noop-extension.mjs', events: 'INVOKE,SHUTDOWN' } },
  { id: 'telemetry', label: 'a Telemetry API subscriber', extension: { name: 'telemetry', file: 'telemetry-subscriber.mjs', events: 'SHUTDOWN' } },
];

const log = (s: string) => process.stdout.write(`${s}\n`);

/** A layer whose /opt/extensions/<name> is the program (fixed timestamps: same bytes every run). */
function extensionLayerZip(name: string, file: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    zip.addBuffer(readFileSync(new URL(`./${file}`, import.meta.url)), `extensions/${name}`, { mtime: new Date('2026-01-01T00:00:00Z'), mode: 0o100755 });
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
    zip.end();
  });
}

async function createContender(server: NimbusServer, c: (typeof contenders)[number], code: Buffer): Promise<string> {
  const name = `bench-ext-${c.id}`;
  const layers: string[] = [];
  if (c.extension) {
    const zip = await extensionLayerZip(c.extension.name, c.extension.file);
    const out = await server.client.send(new PublishLayerVersionCommand({ LayerName: `bench-${c.extension.name}`, Content: { ZipFile: zip } }));
    layers.push(out.LayerVersionArn!);
  }
  await server.client.send(
    new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs24.x', Handler: 'index.handler', Role: ROLE, MemorySize: 512, Timeout: 30, Layers: layers, Code: { ZipFile: code } }),
  );
  await waitActive(server, name);
  const url = invokeUrl(server, name);
  await probe(url);
  if (c.extension) {
    // The contender is what it claims: its extension registered as asked.
    const res = await fetch(`${server.endpoint}/nimbus/v1/functions/${name}/logs?limit=1000`);
    const lines = ((await res.json()) as { records: Array<{ message: string }> }).records.map((r) => r.message);
    const expected = `EXTENSION\tName: ${c.extension.name}\tState: Ready\tEvents: [${c.extension.events}]`;
    if (!lines.includes(expected)) throw new Error(`${name}: no "${expected}" in its log:\n${lines.join('\n')}`);
  }
  return url;
}

interface Row {
  contender: Contender;
  connections: number;
  rounds: LoadResult[];
  p50Ms: number;
  p99Ms: number;
  reqPerSec: number;
  /** Medians of the per-round ratios against `none`. */
  p50VsNone: number;
  p99VsNone: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (n: number, digits: number) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  installCleanup();
  const cpu = cpus();
  log(`bench/extensions on ${cpu.length} x ${cpu[0]?.model ?? 'cpu'}, Linux ${release()}, Node ${process.version}`);
  log(`${config.seconds} s per measurement after ${config.warmupSeconds} s warm-up; ${config.rounds} rounds; connections ${CONNECTIONS.join(' and ')}`);
  const loadAtStart = loadavg()[0];
  log(`load average (1 min) at start: ${loadAtStart.toFixed(2)}`);
  const started = new Date();
  const results = new Map<string, LoadResult[]>();
  let server: NimbusServer | undefined;
  try {
    server = await startNimbus();
    log(server.banner);
    const code = await fixtureZip();
    const urls = new Map<Contender, string>();
    for (const c of contenders) urls.set(c.id, await createContender(server, c, code));
    for (let round = 1; round <= config.rounds; round++) {
      for (const connections of CONNECTIONS) {
        const order = contenders.map((_, i) => contenders[(i + round - 1) % contenders.length]!);
        for (const c of order) {
          const r = await runLoad({ url: urls.get(c.id)!, body: PAYLOAD, connections, warmupSeconds: config.warmupSeconds, durationSeconds: config.seconds });
          const errors = r.non2xx + r.errors + r.timeouts;
          if (errors > 0) throw new Error(`${c.id} x${connections}: ${errors} failed requests`);
          const key = `${c.id}/${connections}`;
          results.set(key, [...(results.get(key) ?? []), r]);
          log(`  round ${round} ${c.label} x${connections}: ${Math.round(r.reqPerSec)} req/s, p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms`);
        }
      }
    }
  } finally {
    await server?.stop();
    await stopAll();
  }

  const rows: Row[] = [];
  for (const connections of CONNECTIONS) {
    for (const c of contenders) {
      const rounds = results.get(`${c.id}/${connections}`)!;
      const base = results.get(`none/${connections}`)!;
      rows.push({
        contender: c.id,
        connections,
        rounds,
        p50Ms: median(rounds.map((r) => r.p50Ms)),
        p99Ms: median(rounds.map((r) => r.p99Ms)),
        reqPerSec: median(rounds.map((r) => r.reqPerSec)),
        p50VsNone: median(rounds.map((r, i) => r.p50Ms / base[i]!.p50Ms)),
        p99VsNone: median(rounds.map((r, i) => r.p99Ms / base[i]!.p99Ms)),
      });
    }
  }
  const row = (c: Contender, n: number) => rows.find((r) => r.contender === c && r.connections === n)!;
  log('');
  log('== warm invoke latency, medians of the rounds (client side); ratios: medians of the per-round ratios ==');
  log(`${'contender'.padEnd(36)}${'conns'.padStart(6)}${'req/s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'p50 vs none'.padStart(13)}${'p99 vs none'.padStart(13)}`);
  for (const r of rows) {
    const label = contenders.find((c) => c.id === r.contender)!.label;
    log(
      label.padEnd(36) +
        String(r.connections).padStart(6) +
        fmt(r.reqPerSec, 0).padStart(9) +
        fmt(r.p50Ms, 3).padStart(9) +
        fmt(r.p99Ms, 3).padStart(9) +
        `${fmt(r.p50VsNone, 2)}x`.padStart(13) +
        `${fmt(r.p99VsNone, 2)}x`.padStart(13),
    );
  }
  const targets = (['noop', 'telemetry'] as const).map((id) => {
    const added = (row(id, 1).p50VsNone - 1) * 100;
    return {
      id: `${id}-added-p50-1conn`,
      description: `warm p50 added by ${contenders.find((c) => c.id === id)!.label}, 1 connection, vs the same function without`,
      value: added,
      target: '< 10%',
      verdict: added < 10 ? 'PASS' : 'FAIL',
    };
  });
  log('');
  for (const t of targets) log(`RESULT ${t.verdict.padEnd(4)} ${t.id.padEnd(34)} ${`${fmt(t.value, 2)}%`.padEnd(10)} target ${t.target.padEnd(9)} ${t.description}`);
  const loadAtEnd = loadavg()[0];
  if (Math.max(loadAtStart, loadAtEnd) > cpu.length * 0.5) {
    log('');
    log(`note: load average ${loadAtStart.toFixed(2)} at start, ${loadAtEnd.toFixed(2)} at end, on ${cpu.length} CPUs: other processes share the machine; the figures are noisy, the within-round ratios less so`);
  }
  const left = leftovers();
  log('');
  log(left.length === 0 ? 'child processes left: none' : `child processes left: ${left.join(', ')}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}extensions-${started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`;
  writeFileSync(
    file,
    JSON.stringify({ bench: 'extensions', started: started.toISOString(), finished: new Date().toISOString(), machine: { cpus: cpu.length, cpuModel: cpu[0]?.model, kernel: release(), node: process.version, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAtEnd }, config, rows, targets, leftovers: left }, null, 2) + '\n',
  );
  log(`results written to ${file}`);
}

await main();
