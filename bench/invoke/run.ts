/**
 * bench/invoke: warm invoke throughput and latency, cold start, and server RSS, for Nimbus
 * beside its floor and its peer, all measured in this one run (DEVELOPERS rule 5: a claim
 * is a ratio against a peer measured in the same run, never a timing assertion in tests).
 *
 *   npm run bench                       # defaults: 5 s per measurement, 100,000 RSS invokes
 *   BENCH_SECONDS=2 BENCH_RSS_INVOKES=2000 npm run bench   # a quick look
 *
 * Env: BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (2), BENCH_RSS_INVOKES (100000),
 * BENCH_COLD_RUNS (5, Nimbus first invokes; the spawn floors take 10),
 * BENCH_FLOOR_RUNTIME (auto | nimbus | inline),
 * BENCH_ONLY (comma list of: cold, floor, nimbus, sls; default all).
 * See bench/README.md for what each contender is and how to read the output.
 */
import { existsSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { nodeBare, runtimeStart } from './cold.ts';
import { chooseFloorRuntime, INLINE_RUNTIME, NIMBUS_NODE_CLIENT, startFloor, type RuntimeChoice } from './floor.ts';
import { PAYLOAD, probe } from './http.ts';
import { runLoad } from './load.ts';
import { fixtureZip, measureCold, nimbusMissing, startNimbus, warmTarget, type NimbusServer } from './nimbus.ts';
import { ensurePeers, peersVersions, SLS_RUNTIME, startServerlessOffline } from './peers.ts';
import { installCleanup, leftovers, stopAll } from './procs.ts';
import { coldTable, evaluateTargets, resultLines, rssTable, warmTable, writeJson } from './report.ts';
import { measureRss } from './rss.ts';
import type { ColdResults, ContenderId, RssResult, Target, WarmRow } from './types.ts';
import { envNumber } from './stats.ts';

const config = {
  seconds: envNumber('BENCH_SECONDS', 5),
  warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 2),
  rssInvokes: Math.round(envNumber('BENCH_RSS_INVOKES', 100_000)),
  coldRuns: Math.round(envNumber('BENCH_COLD_RUNS', 5)),
  spawnRuns: 10,
  floorRuntime: process.env.BENCH_FLOOR_RUNTIME || 'auto',
  only: (process.env.BENCH_ONLY || 'cold,floor,nimbus,sls').split(',').map((s) => s.trim()),
};
const CONNECTIONS = [1, 10] as const;

const rows: WarmRow[] = [];
const cold: ColdResults = {};
const rss: RssResult[] = [];
const notes: string[] = [];

const log = (s: string) => process.stdout.write(`${s}\n`);
const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

function skipRows(contender: ContenderId, label: string, why: string): void {
  for (const connections of CONNECTIONS) rows.push({ contender, label, connections, skipped: why });
}

async function warm(contender: ContenderId, label: string, target: Target, connections: number): Promise<void> {
  const result = await runLoad({
    url: target.url,
    body: PAYLOAD,
    connections,
    warmupSeconds: config.warmupSeconds,
    durationSeconds: config.seconds,
  });
  rows.push({ contender, label, connections, result });
  log(`  ${label} x${connections}: ${Math.round(result.reqPerSec)} req/s, p50 ${result.p50Ms.toFixed(3)} ms, p99 ${result.p99Ms.toFixed(3)} ms, errors ${result.non2xx + result.errors + result.timeouts}`);
}

async function benchCold(): Promise<void> {
  log('cold-start floors...');
  cold.nodeBare = await nodeBare(config.spawnRuns);
  cold.inlineRuntimeStart = await runtimeStart(INLINE_RUNTIME, config.spawnRuns);
  if (existsSync(NIMBUS_NODE_CLIENT)) {
    try {
      cold.nimbusClientStart = await runtimeStart(NIMBUS_NODE_CLIENT, config.spawnRuns);
    } catch (err) {
      cold.nimbusClientStart = { skipped: `failed: ${firstLine(err)}` };
    }
  } else {
    cold.nimbusClientStart = { skipped: 'not available (src/runtimes/clients/node/index.mjs missing)' };
  }
}

async function benchFloor(): Promise<RuntimeChoice> {
  let runtime = chooseFloorRuntime(config.floorRuntime);
  log(`floor: runtime processes run ${runtime.kind === 'inline' ? 'bench/invoke/floor-runtime.mjs' : 'src/runtimes/clients/node/index.mjs'} (${runtime.why})`);
  for (const connections of CONNECTIONS) {
    let target: Target | undefined;
    try {
      target = await startFloor(connections, runtime);
      await probe(target.url);
    } catch (err) {
      await target?.stop();
      if (runtime.kind !== 'nimbus-client' || config.floorRuntime !== 'auto') throw err;
      // Nimbus's client is being written; a half-done one must not take the floor down.
      notes.push(`floor: Nimbus's runtime client failed (${firstLine(err)}); fell back to the inline runtime loop`);
      log(`  ${notes.at(-1)}`);
      runtime = chooseFloorRuntime('inline');
      target = await startFloor(connections, runtime);
      await probe(target.url);
    }
    const label = `floor (${runtime.kind === 'inline' ? 'inline runtime' : 'nimbus client'})`;
    try {
      await warm('floor', label, target, connections);
      // For reference beside Nimbus's: the floor server's own RSS over the same invokes.
      if (connections === 10) rss.push(await measureRss('floor', target, config.rssInvokes, 10));
    } finally {
      await target.stop();
    }
  }
  return runtime;
}

async function benchNimbus(): Promise<void> {
  const label = 'nimbus';
  const missing = nimbusMissing();
  if (missing) {
    log(`nimbus: not available (${missing})`);
    skipRows('nimbus', label, `not available: ${missing}`);
    cold.nimbusFirstInvoke = cold.nimbusInitDuration = { skipped: 'nimbus not available' };
    return;
  }
  log('nimbus: starting `node src/cli/main.ts serve`...');
  let server: NimbusServer;
  try {
    server = await startNimbus();
  } catch (err) {
    log(`nimbus: not available (failed to start: ${firstLine(err)})`);
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    skipRows('nimbus', label, `failed to start: ${firstLine(err)}`);
    cold.nimbusFirstInvoke = cold.nimbusInitDuration = { skipped: 'nimbus failed to start' };
    return;
  }
  log(`  ${server.banner}`);
  try {
    const zip = await fixtureZip();
    try {
      const c = await measureCold(server, zip, config.coldRuns);
      cold.nimbusFirstInvoke = c.firstInvoke;
      cold.nimbusInitDuration = c.initDuration ?? { skipped: 'no Init Duration in the Tail log nor in `nimbus logs`' };
      if (c.initDurationSource) notes.push(`nimbus Init Duration read from ${c.initDurationSource}`);
    } catch (err) {
      cold.nimbusFirstInvoke = cold.nimbusInitDuration = { skipped: `failed: ${firstLine(err)}` };
      process.stderr.write(`nimbus cold start: ${err instanceof Error ? err.stack : String(err)}\n`);
    }
    const target = await warmTarget(server, zip);
    for (const connections of CONNECTIONS) await warm('nimbus', label, target, connections);
    log(`  nimbus RSS over ${config.rssInvokes} invokes at 10 connections...`);
    rss.push(await measureRss('nimbus', target, config.rssInvokes, 10));
  } catch (err) {
    process.stderr.write(`nimbus: ${err instanceof Error ? err.stack : String(err)}\n`);
    for (const connections of CONNECTIONS) {
      if (!rows.some((r) => r.contender === 'nimbus' && r.connections === connections)) {
        rows.push({ contender: 'nimbus', label, connections, skipped: `failed: ${firstLine(err)}` });
      }
    }
  } finally {
    await server.stop();
  }
}

async function benchServerlessOffline(): Promise<void> {
  const modes = [
    { contender: 'sls-default', mode: 'default', label: 'serverless-offline (default)' },
    { contender: 'sls-in-process', mode: 'in-process', label: 'serverless-offline --useInProcess' },
  ] as const;
  const installFailed = await ensurePeers(log);
  if (installFailed) {
    log(`serverless-offline: not available (${installFailed})`);
    for (const m of modes) skipRows(m.contender, m.label, 'not available: bench/peers install failed');
    return;
  }
  const v = peersVersions();
  log(`serverless-offline ${v.serverlessOffline} on serverless ${v.serverless} (provider.runtime ${SLS_RUNTIME}; handler runs on ${process.version})`);
  for (const m of modes) {
    let target: Target;
    try {
      target = await startServerlessOffline(m.mode);
      await probe(target.url);
    } catch (err) {
      log(`  ${m.label}: failed to start: ${firstLine(err)}`);
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      skipRows(m.contender, m.label, `failed: ${firstLine(err)}`);
      continue;
    }
    try {
      for (const connections of CONNECTIONS) await warm(m.contender, m.label, target, connections);
    } finally {
      await target.stop();
    }
  }
}

async function main(): Promise<void> {
  installCleanup();
  const cpu = cpus();
  log(`bench/invoke on ${cpu.length} x ${cpu[0]?.model ?? 'cpu'}, Linux ${release()}, Node ${process.version}`);
  log(`${config.seconds} s per measurement after ${config.warmupSeconds} s warm-up; connections ${CONNECTIONS.join(' and ')}; RSS over ${config.rssInvokes} invokes`);
  log('load: autocannon in a separate process, sharing the CPUs with the contender under test');
  const loadAtStart = loadavg()[0];
  log(`load average (1 min) at start: ${loadAtStart.toFixed(2)}`);
  if (loadAtStart > cpu.length * 0.25) {
    notes.push(`load average was ${loadAtStart.toFixed(2)} on ${cpu.length} CPUs at start: other processes are using the machine, so absolute figures are low and noisy; the ratios hold only as far as that load stayed steady`);
  }
  log('');
  const started = new Date();
  let floorRuntime: RuntimeChoice | undefined;
  try {
    if (config.only.includes('cold')) await benchCold();
    if (config.only.includes('floor')) floorRuntime = await benchFloor();
    if (config.only.includes('nimbus')) await benchNimbus();
    if (config.only.includes('sls')) await benchServerlessOffline();
  } finally {
    await stopAll();
  }
  const left = leftovers();

  const inlineLabel = 'inline runtime loop (floor-runtime.mjs)';
  log('');
  log(`== warm invoke: POST /2015-03-31/functions/<fn>/invocations, ${PAYLOAD.length}-byte event; latency per request (client side) ==`);
  log(warmTable(rows));
  log('');
  log('== cold start ==');
  log(coldTable(cold, inlineLabel));
  log('');
  log('== server RSS, 10 connections (floor for reference; target applies to nimbus) ==');
  log(rss.length > 0 ? rssTable(rss) : '(not measured)');
  if (notes.length > 0) {
    log('');
    for (const n of notes) log(`note: ${n}`);
  }
  const targets = evaluateTargets(rows, cold, rss);
  log('');
  log(resultLines(targets));
  log('');
  log(left.length === 0 ? 'child processes left: none' : `child processes left: ${left.join(', ')}`);
  const file = writeJson({
    bench: 'invoke',
    started: started.toISOString(),
    finished: new Date().toISOString(),
    machine: { cpus: cpu.length, cpuModel: cpu[0]?.model, kernel: release(), node: process.version, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg()[0] },
    config,
    floorRuntime: floorRuntime ? { kind: floorRuntime.kind, why: floorRuntime.why } : undefined,
    peers: peersVersions(),
    payload: PAYLOAD,
    warm: rows,
    cold,
    rss,
    targets,
    notes,
    leftovers: left,
  });
  log(`results written to ${file}`);
}

await main();
