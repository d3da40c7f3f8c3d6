/**
 * bench/agent: what the Nimbus agent costs a function, measured in one run against the
 * same function without it (a claim is a ratio or a difference, never a timing assertion).
 *
 *   npm run bench:agent
 *   BENCH_SECONDS=2 BENCH_ROUNDS=1 BENCH_COLD_RUNS=5 npm run bench:agent   # a quick look
 *
 * One Nimbus server, the same handler (bench/fixtures/handler) and memory for:
 *   - none:     no agent;
 *   - end:      the agent layer, DD_SERVERLESS_FLUSH_STRATEGY=end (a blocking flush to the
 *               server's telemetry store after every invocation);
 *   - adaptive: the agent layer with its default strategy, which flushes at each end for
 *               the first 20 invocations and then, invocations being frequent, in the
 *               background (steady state).
 * Measured:
 *   - warm latency as the caller sees it (Invoke over HTTP, 1 connection), in rounds whose
 *     order rotates, ratios taken within a round;
 *   - post_runtime_duration as the agent itself reports it (the enhanced metric, read back
 *     from the telemetry store): what an invocation's environment is held after the
 *     handler returned;
 *   - added cold start: Init Duration (REPORT) with the agent minus without, medians;
 *   - the agent process's memory after the load: RSS and its private part (RssAnon; the
 *     rest is the node binary's pages, shared with every other node process).
 * Targets (issue 6): warm latency within 5%; post-runtime p50 < 2 ms with end flushing and
 * < 0.5 ms in steady state; added Init < 60 ms; agent RSS < 40 MB.
 *
 * Env: BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (2), BENCH_ROUNDS (3), BENCH_COLD_RUNS (10),
 * BENCH_AGENT_VARIABLES (JSON of extra variables for the agent functions).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CreateFunctionCommand, ListLayersCommand, UpdateFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { PAYLOAD, post, probe } from '../invoke/http.ts';
import { runLoad, type LoadResult } from '../invoke/load.ts';
import { fixtureZip, invokeUrl, startNimbus, waitActive, type NimbusServer } from '../invoke/nimbus.ts';
import { descendants, installCleanup, leftovers, stopAll } from '../invoke/procs.ts';
import { envNumber } from '../invoke/stats.ts';

const config = {
  seconds: envNumber('BENCH_SECONDS', 5),
  warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 2),
  rounds: Math.round(envNumber('BENCH_ROUNDS', 3)),
  coldRuns: Math.round(envNumber('BENCH_COLD_RUNS', 10)),
};
const ROLE = 'arn:aws:iam::000000000000:role/bench';
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
const log = (s: string) => process.stdout.write(`${s}\n`);
const fmt = (n: number, digits: number) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

type Contender = 'none' | 'end' | 'adaptive';
/** BENCH_AGENT_VARIABLES: JSON of extra variables for both agent functions (to try settings). */
const extra = JSON.parse(process.env.BENCH_AGENT_VARIABLES || '{}') as Record<string, string>;
const contenders: Array<{ id: Contender; label: string; agent: boolean; variables: Record<string, string> }> = [
  { id: 'none', label: 'no agent', agent: false, variables: {} },
  { id: 'end', label: 'agent, flush at each end', agent: true, variables: { ...extra, DD_SERVERLESS_FLUSH_STRATEGY: 'end' } },
  { id: 'adaptive', label: 'agent, default (steady state)', agent: true, variables: { ...extra } },
];

async function agentLayer(server: NimbusServer): Promise<string> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const out = await server.client.send(new ListLayersCommand({}));
    const arn = out.Layers?.find((l) => l.LayerName === 'nimbus-agent')?.LatestMatchingVersion?.LayerVersionArn;
    if (arn) return arn;
    if (Date.now() > deadline) throw new Error('the nimbus-agent layer was not published');
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function create(server: NimbusServer, name: string, layers: string[], variables: Record<string, string>, code: Buffer): Promise<void> {
  await server.client.send(
    new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs24.x', Handler: 'index.handler', Role: ROLE, MemorySize: 512, Timeout: 30, Layers: layers, Environment: { Variables: variables }, Code: { ZipFile: code } }),
  );
  await waitActive(server, name);
}

/** Init Duration of `runs` cold starts: each configuration change retires the environment. */
async function coldInits(server: NimbusServer, name: string, runs: number): Promise<number[]> {
  const inits: number[] = [];
  for (let i = 0; i <= runs; i++) {
    await server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: name, Description: `cold ${i}` }));
    await waitActive(server, name);
    const reply = await post(invokeUrl(server, name), PAYLOAD, { 'X-Amz-Log-Type': 'Tail' });
    const tail = Buffer.from(String(reply.headers['x-amz-log-result'] ?? ''), 'base64').toString('utf8');
    const m = /Init Duration: ([\d.]+) ms/.exec(tail);
    if (!m) throw new Error(`${name}: no Init Duration in ${tail}`);
    if (i > 0) inits.push(Number(m[1])); // the first is a throw-away (server-side first use)
  }
  return inits;
}

interface Summary {
  name: string;
  points: number;
  p50: number | null;
  p99: number | null;
  avg: number;
}

/** The agent's own figure, from the telemetry store. */
async function postRuntime(server: NimbusServer, fn: string, sinceMs: number): Promise<Summary | undefined> {
  const res = await fetch(`${server.endpoint}/nimbus/v1/functions/${fn}/metrics?summary=true&name=aws.lambda.enhanced.post_runtime_duration&since=${sinceMs}`);
  if (!res.ok) throw new Error(`metrics of ${fn}: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { metrics: Summary[] };
  return body.metrics.find((m) => m.name === 'aws.lambda.enhanced.post_runtime_duration');
}

/** RSS and RssAnon (KiB) of the agent processes under this bench's server. */
function agentMemory(serverPid: number): Array<{ pid: number; rssKb: number; anonKb: number; pssKb: number }> {
  const out: Array<{ pid: number; rssKb: number; anonKb: number; pssKb: number }> = [];
  for (const pid of descendants(serverPid)) {
    const entry = String(pid);
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmd.includes('nimbus-agent/agent.mjs')) continue;
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const kb = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
      // PSS shares the node binary's pages with the runtime's node (the same file): the agent's fair share.
      const rollup = readFileSync(`/proc/${entry}/smaps_rollup`, 'utf8');
      out.push({ pid: Number(entry), rssKb: kb(status, 'VmRSS'), anonKb: kb(status, 'RssAnon'), pssKb: kb(rollup, 'Pss') });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function main(): Promise<void> {
  installCleanup();
  const cpu = cpus();
  log(`bench/agent on ${cpu.length} x ${cpu[0]?.model ?? 'cpu'}, Linux ${release()}, Node ${process.version}`);
  log(`${config.seconds} s per measurement after ${config.warmupSeconds} s warm-up; ${config.rounds} rounds; ${config.coldRuns} cold starts each`);
  const loadAtStart = loadavg()[0];
  const started = new Date();
  const results = new Map<Contender, LoadResult[]>();
  const post_: Partial<Record<Contender, Summary>> = {};
  let inits: Record<'none' | 'agent', number[]> = { none: [], agent: [] };
  let memory: Array<{ pid: number; rssKb: number; anonKb: number; pssKb: number }> = [];
  let server: NimbusServer | undefined;
  try {
    server = await startNimbus();
    log(server.banner);
    const layer = await agentLayer(server);
    log(`agent layer ${layer}`);
    const code = await fixtureZip();
    const urls = new Map<Contender, string>();
    for (const c of contenders) {
      const name = `bench-agent-${c.id}`;
      await create(server, name, c.agent ? [layer] : [], c.variables, code);
      urls.set(c.id, invokeUrl(server, name));
      await probe(invokeUrl(server, name));
    }
    const loadStart = Date.now();
    for (let round = 1; round <= config.rounds; round++) {
      const order = contenders.map((_, i) => contenders[(i + round - 1) % contenders.length]!);
      for (const c of order) {
        const r = await runLoad({ url: urls.get(c.id)!, body: PAYLOAD, connections: 1, warmupSeconds: config.warmupSeconds, durationSeconds: config.seconds });
        if (r.non2xx + r.errors + r.timeouts > 0) throw new Error(`${c.id}: ${r.non2xx + r.errors + r.timeouts} failed requests`);
        results.set(c.id, [...(results.get(c.id) ?? []), r]);
        log(`  round ${round} ${c.label}: ${Math.round(r.reqPerSec)} req/s, p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms`);
      }
    }
    memory = agentMemory(server.pid);
    // Retire the environments: the agents' SHUTDOWN flush sends their last points.
    for (const c of contenders) if (c.agent) await server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: `bench-agent-${c.id}`, Description: 'flushed' }));
    await new Promise((r) => setTimeout(r, 2000));
    for (const c of contenders) if (c.agent) post_[c.id] = await postRuntime(server, `bench-agent-${c.id}`, loadStart);

    await create(server, 'bench-agent-cold-none', [], {}, code);
    await create(server, 'bench-agent-cold-agent', [layer], {}, code);
    inits = { none: await coldInits(server, 'bench-agent-cold-none', config.coldRuns), agent: await coldInits(server, 'bench-agent-cold-agent', config.coldRuns) };
  } finally {
    await server?.stop();
    await stopAll();
  }

  const base = results.get('none')!;
  const rows = contenders.map((c) => {
    const rounds = results.get(c.id)!;
    return {
      contender: c.id,
      label: c.label,
      reqPerSec: median(rounds.map((r) => r.reqPerSec)),
      p50Ms: median(rounds.map((r) => r.p50Ms)),
      p99Ms: median(rounds.map((r) => r.p99Ms)),
      p50VsNone: median(rounds.map((r, i) => r.p50Ms / base[i]!.p50Ms)),
      p99VsNone: median(rounds.map((r, i) => r.p99Ms / base[i]!.p99Ms)),
      postRuntime: post_[c.id],
    };
  });
  log('');
  log('== warm invoke latency at 1 connection (client side); medians of the rounds and of the per-round ratios ==');
  log(`${'contender'.padEnd(32)}${'req/s'.padStart(8)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'p50 vs none'.padStart(13)}${'p99 vs none'.padStart(13)}${'post-runtime p50/p99 ms'.padStart(26)}`);
  for (const r of rows) {
    const pr = r.postRuntime ? `${fmt(r.postRuntime.p50 ?? NaN, 3)} / ${fmt(r.postRuntime.p99 ?? NaN, 3)} (${r.postRuntime.points})` : '';
    log(r.label.padEnd(32) + fmt(r.reqPerSec, 0).padStart(8) + fmt(r.p50Ms, 3).padStart(9) + fmt(r.p99Ms, 3).padStart(9) + `${fmt(r.p50VsNone, 3)}x`.padStart(13) + `${fmt(r.p99VsNone, 3)}x`.padStart(13) + pr.padStart(26));
  }
  const initNone = median(inits.none);
  const initAgent = median(inits.agent);
  log('');
  log(`cold start: Init Duration median ${fmt(initNone, 1)} ms without the agent, ${fmt(initAgent, 1)} ms with it (${inits.agent.length} runs each)`);
  for (const m of memory) log(`agent process ${m.pid}: RSS ${fmt(m.rssKb / 1024, 1)} MB, PSS ${fmt(m.pssKb / 1024, 1)} MB, private (RssAnon) ${fmt(m.anonKb / 1024, 1)} MB`);

  const row = (id: Contender) => rows.find((r) => r.contender === id)!;
  const maxRss = Math.max(...memory.map((m) => m.rssKb / 1024));
  const maxAnon = Math.max(...memory.map((m) => m.anonKb / 1024));
  const maxPss = Math.max(...memory.map((m) => m.pssKb / 1024));
  const targets = [
    { id: 'warm-p50-end', value: (row('end').p50VsNone - 1) * 100, unit: '%', target: '< 5%', pass: (v: number) => v < 5, description: 'caller-visible warm p50 added, flush at each end' },
    { id: 'warm-p50-steady', value: (row('adaptive').p50VsNone - 1) * 100, unit: '%', target: '< 5%', pass: (v: number) => v < 5, description: 'caller-visible warm p50 added, default strategy (steady state)' },
    { id: 'post-runtime-p50-end', value: row('end').postRuntime?.p50 ?? NaN, unit: ' ms', target: '< 2 ms', pass: (v: number) => v < 2, description: 'post_runtime_duration p50 with end-of-invocation flushing' },
    { id: 'post-runtime-p50-steady', value: row('adaptive').postRuntime?.p50 ?? NaN, unit: ' ms', target: '< 0.5 ms', pass: (v: number) => v < 0.5, description: 'post_runtime_duration p50 in steady state' },
    { id: 'added-init', value: initAgent - initNone, unit: ' ms', target: '< 60 ms', pass: (v: number) => v < 60, description: 'Init Duration added by the agent (median)' },
    { id: 'agent-rss', value: maxRss, unit: ' MB', target: '< 40 MB', pass: (v: number) => v < 40, description: `agent RSS after the load (PSS ${fmt(maxPss, 1)} MB, private ${fmt(maxAnon, 1)} MB)` },
  ].map((t) => ({ id: t.id, description: t.description, value: t.value, target: t.target, verdict: t.pass(t.value) ? 'PASS' : 'FAIL', unit: t.unit }));
  log('');
  for (const t of targets) log(`RESULT ${t.verdict.padEnd(4)} ${t.id.padEnd(24)} ${`${fmt(t.value, 3)}${t.unit}`.padEnd(12)} target ${t.target.padEnd(9)} ${t.description}`);
  const loadAtEnd = loadavg()[0];
  if (Math.max(loadAtStart, loadAtEnd) > cpu.length * 0.5) log(`\nnote: load average ${loadAtStart.toFixed(2)} at start, ${loadAtEnd.toFixed(2)} at end, on ${cpu.length} CPUs: the figures are noisy`);
  const left = leftovers();
  log(left.length === 0 ? '\nchild processes left: none' : `\nchild processes left: ${left.join(', ')}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}agent-${started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`;
  writeFileSync(
    file,
    JSON.stringify({ bench: 'agent', started: started.toISOString(), finished: new Date().toISOString(), machine: { cpus: cpu.length, cpuModel: cpu[0]?.model, kernel: release(), node: process.version, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAtEnd }, config, rows, inits, memory, targets }, null, 2) + '\n',
  );
  log(`results written to ${file}`);
}

await main();
