/**
 * bench/front-doors: requests per second and p50/p99 latency through a function URL,
 * beside the same function through the plain Invoke endpoint, and beside serverless-
 * offline's HTTP event, all in this one run (a claim is a ratio against a peer measured
 * in the same run). Targets of issue 5: the function URL adds under 15% to Invoke's
 * latency, and serves at least 2x serverless-offline's HTTP event at 10 connections.
 *
 *   npm run bench:front-doors
 *   BENCH_SECONDS=2 BENCH_WARMUP_SECONDS=1 npm run bench:front-doors   # a quick look
 *   BENCH_ONLY=nimbus npm run bench:front-doors                         # skip the peer
 *
 * Every contender runs bench/front-doors/fixture/index.js (a constant 200 `{"ok":true}`)
 * and gets the same 32-byte JSON POST over keep-alive HTTP/1.1 from autocannon in a
 * process of its own (bench/invoke/load-worker.ts). Each is checked once before load.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yazl from 'yazl';
import { CreateFunctionCommand, CreateFunctionUrlConfigCommand } from '@aws-sdk/client-lambda';
import { post, PAYLOAD } from '../invoke/http.ts';
import { runLoad, type LoadResult } from '../invoke/load.ts';
import { startNimbus, waitActive, invokeUrl } from '../invoke/nimbus.ts';
import { ensurePeers, peersVersions } from '../invoke/peers.ts';
import { installCleanup, leftovers, stopAll } from '../invoke/procs.ts';
import { FIXTURE, startServerlessOfflineHttp } from './sls-http.ts';
import { envNumber } from '../invoke/stats.ts';

type Contender = 'invoke' | 'function-url' | 'sls-http';
interface Row {
  contender: Contender;
  label: string;
  connections: number;
  result?: LoadResult;
  skipped?: string;
}

const config = {
  seconds: envNumber('BENCH_SECONDS', 5),
  warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 2),
  only: (process.env.BENCH_ONLY || 'nimbus,sls').split(',').map((s) => s.trim()),
};
const CONNECTIONS = [1, 10] as const;
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
const rows: Row[] = [];
const notes: string[] = [];
const log = (s: string) => process.stdout.write(`${s}\n`);
const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

function fixtureZip(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    const mtime = new Date('2026-01-01T00:00:00Z');
    for (const f of ['index.js', 'package.json']) zip.addBuffer(readFileSync(path.join(FIXTURE, f)), f, { mtime, mode: 0o100644 });
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
    zip.end();
  });
}

/** One request end to end before any load: the right answer, not just a 200. */
async function check(url: string, headers: Record<string, string>, expected: (body: string) => boolean): Promise<void> {
  const reply = await post(url, PAYLOAD, headers);
  if (reply.status !== 200 || !expected(reply.body)) throw new Error(`check of ${url}: status ${reply.status}, body ${reply.body.slice(0, 300)}`);
}

async function measure(contender: Contender, label: string, url: string, headers: Record<string, string>, connections: number): Promise<void> {
  const result = await runLoad({ url, body: PAYLOAD, headers, connections, warmupSeconds: config.warmupSeconds, durationSeconds: config.seconds });
  rows.push({ contender, label, connections, result });
  log(`  ${label} x${connections}: ${Math.round(result.reqPerSec)} req/s, p50 ${result.p50Ms.toFixed(3)} ms, p99 ${result.p99Ms.toFixed(3)} ms, errors ${result.non2xx + result.errors + result.timeouts}`);
}

async function benchNimbus(): Promise<void> {
  log('nimbus: starting `node src/cli/main.ts serve`...');
  const server = await startNimbus();
  log(`  ${server.banner}`);
  try {
    await server.client.send(
      new CreateFunctionCommand({ FunctionName: 'front', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/bench', MemorySize: 128, Timeout: 30, Code: { ZipFile: await fixtureZip() } }),
    );
    await waitActive(server, 'front');
    const url = await server.client.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'front', AuthType: 'NONE' }));
    const host = new URL(url.FunctionUrl!).host;
    const invoke = invokeUrl(server, 'front');
    await check(invoke, {}, (b) => JSON.parse(b).body === '{"ok":true}');
    await check(`${server.endpoint}/`, { host }, (b) => b === '{"ok":true}');
    // Alternating per connection count keeps drift on a shared machine from favouring one.
    for (const connections of CONNECTIONS) {
      await measure('invoke', 'nimbus Invoke (POST /2015-03-31/.../invocations)', invoke, {}, connections);
      await measure('function-url', 'nimbus function URL (Host: <url-id>.lambda-url...)', `${server.endpoint}/`, { host }, connections);
    }
  } finally {
    await server.stop();
  }
}

async function benchSls(): Promise<void> {
  const label = 'serverless-offline httpApi event (default)';
  const installFailed = await ensurePeers(log);
  if (installFailed) {
    for (const connections of CONNECTIONS) rows.push({ contender: 'sls-http', label, connections, skipped: `not available: ${installFailed}` });
    return;
  }
  log('serverless-offline: starting with an httpApi event...');
  const target = await startServerlessOfflineHttp();
  try {
    await check(target.url, {}, (b) => b === '{"ok":true}');
    for (const connections of CONNECTIONS) await measure('sls-http', label, target.url, {}, connections);
  } finally {
    await target.stop();
  }
}

const find = (c: Contender, n: number) => rows.find((r) => r.contender === c && r.connections === n)?.result;
const fmt = (n: number | undefined, d: number) => (n === undefined || Number.isNaN(n) ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));

function table(): string {
  const lines = [`${'contender'.padEnd(54)}${'conns'.padStart(6)}${'req/s'.padStart(10)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}`];
  for (const r of [...rows].sort((a, b) => a.connections - b.connections)) {
    if (!r.result) {
      lines.push(`${r.label.padEnd(54)}${String(r.connections).padStart(6)}    ${r.skipped}`);
      continue;
    }
    const x = r.result;
    lines.push(`${r.label.padEnd(54)}${String(r.connections).padStart(6)}${fmt(x.reqPerSec, 0).padStart(10)}${fmt(x.p50Ms, 3).padStart(9)}${fmt(x.p99Ms, 3).padStart(9)}${String(x.non2xx + x.errors + x.timeouts).padStart(8)}`);
  }
  return lines.join('\n');
}

interface TargetResult {
  id: string;
  description: string;
  value?: number;
  unit: string;
  target: string;
  verdict: 'PASS' | 'FAIL' | 'SKIP';
}

function verdict(value: number | undefined, ok: (v: number) => boolean): TargetResult['verdict'] {
  return value === undefined || Number.isNaN(value) ? 'SKIP' : ok(value) ? 'PASS' : 'FAIL';
}

function targets(): TargetResult[] {
  const out: TargetResult[] = [];
  for (const n of CONNECTIONS) {
    const inv = find('invoke', n);
    const url = find('function-url', n);
    const added = inv && url ? (url.p50Ms / inv.p50Ms - 1) * 100 : undefined;
    out.push({ id: `url-p50-added-${n}conn`, description: `function URL p50 latency over Invoke's at ${n} connection${n > 1 ? 's' : ''}`, value: added, unit: '%', target: '< 15%', verdict: verdict(added, (v) => v < 15) });
  }
  const url10 = find('function-url', 10);
  const sls10 = find('sls-http', 10);
  const vsSls = url10 && sls10 ? url10.reqPerSec / sls10.reqPerSec : undefined;
  out.push({ id: 'url-vs-sls-http-10conn', description: 'function URL req/s over serverless-offline httpApi req/s at 10 connections', value: vsSls, unit: 'x', target: '>= 2.00x', verdict: verdict(vsSls, (v) => v >= 2) });
  return out;
}

async function main(): Promise<void> {
  installCleanup();
  const started = new Date();
  const loadAtStart = loadavg()[0];
  log(`bench/front-doors: ${config.seconds}s per measurement after ${config.warmupSeconds}s warm-up; ${cpus().length} CPUs, load ${fmt(loadAtStart, 2)}`);
  if (config.only.includes('nimbus')) {
    try {
      await benchNimbus();
    } catch (err) {
      process.stderr.write(`nimbus: ${err instanceof Error ? err.stack : String(err)}\n`);
      notes.push(`nimbus failed: ${firstLine(err)}`);
    }
  }
  if (config.only.includes('sls')) {
    try {
      await benchSls();
    } catch (err) {
      process.stderr.write(`serverless-offline: ${err instanceof Error ? err.stack : String(err)}\n`);
      for (const connections of CONNECTIONS) {
        if (!find('sls-http', connections)) rows.push({ contender: 'sls-http', label: 'serverless-offline httpApi event (default)', connections, skipped: `failed: ${firstLine(err)}` });
      }
    }
  }
  await stopAll();
  const left = leftovers();
  const results = targets();
  log('');
  log('== front doors: warm requests ==');
  log(table());
  for (const n of notes) log(`note: ${n}`);
  log('');
  for (const t of results) {
    const value = t.value === undefined ? 'n/a' : `${fmt(t.value, 2)}${t.unit}`;
    log(`RESULT ${t.verdict.padEnd(4)} ${t.id.padEnd(28)} ${value.padEnd(10)} target ${t.target.padEnd(9)} ${t.description}`);
  }
  log('');
  log(left.length === 0 ? 'child processes left: none' : `child processes left: ${left.join(', ')}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}front-doors-${started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`;
  writeFileSync(
    file,
    JSON.stringify(
      {
        bench: 'front-doors',
        started: started.toISOString(),
        finished: new Date().toISOString(),
        machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, kernel: release(), node: process.version, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg()[0] },
        config,
        peers: peersVersions(),
        payload: PAYLOAD,
        rows,
        targets: results,
        notes,
        leftovers: left,
      },
      null,
      2,
    ) + '\n',
  );
  log(`results written to ${file}`);
}

await main();
