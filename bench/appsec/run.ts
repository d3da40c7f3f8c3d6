/**
 * bench/appsec: what threat detection adds to an HTTP invoke, measured in one run beside the
 * same function with detection off (a claim is a difference against a contender measured in
 * the same run, never a timing assertion in a test).
 *
 *   npm run bench:appsec
 *   BENCH_SECONDS=2 BENCH_WARMUP_SECONDS=1 BENCH_ROUNDS=1 npm run bench:appsec   # a quick look
 *
 * Three functions on one Nimbus server, same handler (a constant 200 `{"ok":true}`), same
 * memory, same agent layer and exec wrapper, so the Runtime API proxy is in the path of all
 * three; only threat detection differs:
 *   - off:     DD_SERVERLESS_APPSEC_ENABLED unset;
 *   - monitor: detection on, monitor mode (the default);
 *   - block:   detection on, NIMBUS_APPSEC_MODE=block (the WAF runs before the handler).
 * Each gets two kinds of traffic through its function URL, as autocannon POSTs over keep-alive
 * HTTP/1.1 from a process of its own (bench/invoke/load-worker.ts):
 *   - benign: an ordinary JSON order from a browser (query string, cookies, JSON body);
 *   - attack: SQL injection in the query and XSS in the JSON body. Block mode answers these
 *     403 itself (the handler never runs), so its attack row prices a refusal.
 * Every (function, traffic) pair is checked once before load (status and body), and after the
 * run the store must hold signals from the attacked functions (detection really ran).
 * Rounds measure the six cases back to back in an order that rotates; the figures are the
 * medians of the rounds, and the added latency the median of the per-round differences.
 * Target (issue 7): under 1 ms added at p99 for benign traffic, at 1 connection.
 *
 * Env: BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (2), BENCH_ROUNDS (3), BENCH_CONNECTIONS (1).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CreateFunctionCommand, CreateFunctionUrlConfigCommand, ListLayersCommand, UpdateFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import yazl from 'yazl';
import { post } from '../invoke/http.ts';
import { runLoad, type LoadResult } from '../invoke/load.ts';
import { startNimbus, waitActive, type NimbusServer } from '../invoke/nimbus.ts';
import { installCleanup, leftovers, stopAll } from '../invoke/procs.ts';
import { envNumber } from '../invoke/stats.ts';

const config = {
  seconds: envNumber('BENCH_SECONDS', 5),
  warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 2),
  rounds: Math.round(envNumber('BENCH_ROUNDS', 3)),
  connections: Math.round(envNumber('BENCH_CONNECTIONS', 1)),
};
const ROLE = 'arn:aws:iam::000000000000:role/bench';
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
/** The agent and its WAF sit at about 130 MB: 128 MB functions run out of memory under load. */
const MEMORY_MB = 512;

type Mode = 'off' | 'monitor' | 'block';
type Traffic = 'benign' | 'attack';
const modes: Array<{ id: Mode; label: string; variables: Record<string, string> }> = [
  { id: 'off', label: 'detection off (proxy only)', variables: {} },
  { id: 'monitor', label: 'detection on, monitor', variables: { DD_SERVERLESS_APPSEC_ENABLED: 'true' } },
  { id: 'block', label: 'detection on, block', variables: { DD_SERVERLESS_APPSEC_ENABLED: 'true', NIMBUS_APPSEC_MODE: 'block' } },
];
const traffics: Traffic[] = ['benign', 'attack'];

const browser = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15';
const requests: Record<Traffic, { path: string; body: string; headers: Record<string, string> }> = {
  benign: {
    path: '/orders?page=2&sort=-createdAt&q=O%27Reilly%20%26%20Sons',
    body: JSON.stringify({ items: [{ sku: 'SKU-1042', qty: 2, note: "Size 10\" x 12\", gift wrap <please>" }], customer: { name: "Siobhán O'Brien", email: 'siobhan@example.ie', city: 'Zürich' }, coupon: 'SPRING-24' }),
    headers: { 'user-agent': browser, accept: 'application/json', cookie: 'session=8f14e45fceea167a5a36dedd4bea2543; theme=dark' },
  },
  attack: {
    path: `/orders?q=${encodeURIComponent("1' OR '1'='1' --")}`,
    body: JSON.stringify({ items: [{ sku: 'SKU-1042', qty: 2 }], customer: { name: '<script>alert(document.cookie)</script>' } }),
    headers: { 'user-agent': browser, accept: 'application/json', cookie: 'session=8f14e45fceea167a5a36dedd4bea2543; theme=dark' },
  },
};

const HANDLER = `exports.handler = async () => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' });\n`;
const BLOCKED = /You've been blocked/;

const log = (s: string) => process.stdout.write(`${s}\n`);

function handlerZip(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    zip.addBuffer(Buffer.from(HANDLER), 'index.js', { mtime: new Date('2026-01-01T00:00:00Z'), mode: 0o100644 });
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
    zip.end();
  });
}

/** The built-in layer is published in the background when the server starts. */
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

interface Target {
  mode: Mode;
  name: string;
  /** The function URL's Host header. */
  host: string;
}

async function createTarget(server: NimbusServer, mode: (typeof modes)[number], layer: string, code: Buffer): Promise<Target> {
  const name = `bench-appsec-${mode.id}`;
  await server.client.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'nodejs24.x',
      Handler: 'index.handler',
      Role: ROLE,
      MemorySize: MEMORY_MB,
      Timeout: 30,
      Layers: [layer],
      Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/nimbus-wrapper', ...mode.variables } },
      Code: { ZipFile: code },
    }),
  );
  await waitActive(server, name);
  const url = await server.client.send(new CreateFunctionUrlConfigCommand({ FunctionName: name, AuthType: 'NONE' }));
  return { mode: mode.id, name, host: new URL(url.FunctionUrl!).host };
}

/** What each case must answer: a contender that answers fast but wrong is not measured. */
const expectedStatus = (mode: Mode, traffic: Traffic): number => (mode === 'block' && traffic === 'attack' ? 403 : 200);

async function check(server: NimbusServer, target: Target, traffic: Traffic): Promise<void> {
  const r = requests[traffic];
  const reply = await post(`${server.endpoint}${r.path}`, r.body, { ...r.headers, host: target.host });
  const status = expectedStatus(target.mode, traffic);
  const ok = reply.status === status && (status === 200 ? reply.body === '{"ok":true}' : BLOCKED.test(reply.body));
  if (!ok) throw new Error(`check of ${target.name} with ${traffic} traffic: status ${reply.status} (expected ${status}), body ${reply.body.slice(0, 300)}`);
}

/** Agent log lines that say detection is not what the contender claims. */
async function assertDetectionState(server: NimbusServer, target: Target): Promise<void> {
  const res = await fetch(`${server.endpoint}/nimbus/v1/functions/${target.name}/logs?limit=1000`);
  const lines = ((await res.json()) as { records: Array<{ message: string }> }).records.map((r) => r.message);
  const said = lines.find((l) => l.includes('threat detection:') && l.includes(' mode'));
  if (target.mode === 'off') {
    if (said) throw new Error(`${target.name}: detection is on (${said})`);
    return;
  }
  if (!said || !said.includes(`${target.mode} mode`) || said.includes('WAF is off')) throw new Error(`${target.name}: not detecting in ${target.mode} mode; its log says: ${lines.filter((l) => l.includes('nimbus-agent')).join(' | ')}`);
}

async function agentLines(server: NimbusServer, name: string, containing: string): Promise<string[]> {
  const res = await fetch(`${server.endpoint}/nimbus/v1/functions/${name}/logs?limit=10000`);
  return ((await res.json()) as { records: Array<{ message: string }> }).records.map((r) => r.message).filter((l) => l.includes('[nimbus-agent]') && l.includes(containing));
}

async function signalCount(server: NimbusServer, name: string): Promise<number> {
  const res = await fetch(`${server.endpoint}/nimbus/v1/security/events?function=${name}&limit=10000`);
  return ((await res.json()) as { events: unknown[] }).events.length;
}

/**
 * The count once the environments' shutdown flushes have landed: the agent sends its
 * `shutdowns` metric in the same batch as what it still held, so after that metric appears
 * the count is final once it stops growing. Within 30 s.
 */
async function settledSignalCount(server: NimbusServer, name: string): Promise<number> {
  const deadline = Date.now() + 30_000;
  const shutdowns = async (): Promise<number> => {
    const res = await fetch(`${server.endpoint}/nimbus/v1/functions/${name}/metrics?name=aws.lambda.enhanced.shutdowns&limit=1000`);
    return ((await res.json()) as { points: Array<{ value: number }> }).points.reduce((n, p) => n + p.value, 0);
  };
  while ((await shutdowns()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  let last = -1;
  for (;;) {
    const n = await signalCount(server, name);
    if (n === last || Date.now() > deadline) return n;
    last = n;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (n: number, digits: number) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits, signDisplay: 'auto' });
const signed = (n: number, digits: number) => `${n >= 0 ? '+' : ''}${fmt(n, digits)}`;

interface Row {
  mode: Mode;
  traffic: Traffic;
  rounds: LoadResult[];
  p50Ms: number;
  p99Ms: number;
  reqPerSec: number;
  /** Medians of the per-round differences against `off` with the same traffic. */
  addedP50Ms: number;
  addedP99Ms: number;
}

async function main(): Promise<void> {
  installCleanup();
  const cpu = cpus();
  log(`bench/appsec on ${cpu.length} x ${cpu[0]?.model ?? 'cpu'}, Linux ${release()}, Node ${process.version}`);
  log(`${config.seconds} s per measurement after ${config.warmupSeconds} s warm-up; ${config.rounds} rounds; ${config.connections} connection(s); function URL, ${MEMORY_MB} MB`);
  const loadAtStart = loadavg()[0]!;
  log(`load average (1 min) at start: ${loadAtStart.toFixed(2)}`);
  const started = new Date();
  const results = new Map<string, LoadResult[]>();
  const signals: Record<string, number> = {};
  /** Attack requests block mode let through (measured phases only). */
  let notRefused = 0;
  /** The agents' own word on flushes the server refused (their telemetry is lost). */
  const refusedBatches: Record<string, string[]> = {};
  let server: NimbusServer | undefined;
  try {
    server = await startNimbus();
    log(server.banner);
    const layer = await agentLayer(server);
    const code = await handlerZip();
    const targets: Target[] = [];
    for (const mode of modes) targets.push(await createTarget(server, mode, layer, code));
    // Benign first: it starts each environment, whose agent then says how detection came up.
    for (const t of targets) await check(server, t, 'benign');
    for (const t of targets) await assertDetectionState(server, t);
    for (const t of targets) await check(server, t, 'attack');

    const cases = targets.flatMap((t) => traffics.map((traffic) => ({ target: t, traffic })));
    for (let round = 1; round <= config.rounds; round++) {
      const order = cases.map((_, i) => cases[(i + (round - 1) * 2) % cases.length]!);
      for (const { target, traffic } of order) {
        const r = requests[traffic];
        const result = await runLoad({
          url: `${server.endpoint}${r.path}`,
          body: r.body,
          headers: { ...r.headers, host: target.host },
          connections: config.connections,
          warmupSeconds: config.warmupSeconds,
          durationSeconds: config.seconds,
        });
        const expected = expectedStatus(target.mode, traffic);
        // Block mode answers attacks 403 by design. One that got through to the handler instead
        // (its evaluation ran out of the 5 ms budget on a busy CPU) is counted, not fatal;
        // anything else must be a 2xx.
        const failed = (expected === 200 ? result.non2xx : 0) + result.errors + result.timeouts;
        if (failed > 0) throw new Error(`${target.name} ${traffic}: ${failed} requests failed`);
        if (expected === 403) notRefused += result.requests - result.non2xx;
        const key = `${target.mode}/${traffic}`;
        results.set(key, [...(results.get(key) ?? []), result]);
        const extra = expected === 403 ? `, refused ${result.non2xx} of ${result.requests}` : '';
        log(`  round ${round} ${target.mode.padEnd(7)} ${traffic.padEnd(6)}: ${Math.round(result.reqPerSec)} req/s, p50 ${result.p50Ms.toFixed(3)} ms, p99 ${result.p99Ms.toFixed(3)} ms${extra}`);
      }
    }
    // Detection really ran: the attacked functions reported (off reports nothing). Retiring
    // the environments makes every agent flush what its periodic flush still holds.
    for (const t of targets) await server.client.send(new UpdateFunctionConfigurationCommand({ FunctionName: t.name, Description: 'flushed' }));
    for (const t of targets) signals[t.mode] = await settledSignalCount(server, t.name);
    if (signals.monitor === 0 || signals.block === 0 || signals.off !== 0) throw new Error(`signals stored: ${JSON.stringify(signals)}`);
    for (const t of targets) refusedBatches[t.mode] = await agentLines(server, t.name, 'refused the batch');
  } finally {
    await server?.stop();
    await stopAll();
  }

  const rows: Row[] = [];
  for (const traffic of traffics) {
    const base = results.get(`off/${traffic}`)!;
    for (const mode of modes) {
      const rounds = results.get(`${mode.id}/${traffic}`)!;
      rows.push({
        mode: mode.id,
        traffic,
        rounds,
        p50Ms: median(rounds.map((r) => r.p50Ms)),
        p99Ms: median(rounds.map((r) => r.p99Ms)),
        reqPerSec: median(rounds.map((r) => r.reqPerSec)),
        addedP50Ms: median(rounds.map((r, i) => r.p50Ms - base[i]!.p50Ms)),
        addedP99Ms: median(rounds.map((r, i) => r.p99Ms - base[i]!.p99Ms)),
      });
    }
  }
  log('');
  log(`== HTTP invoke latency through a function URL, ${config.connections} connection(s): medians of the rounds (client side); added: median of the per-round differences against "off" ==`);
  log(`${'contender'.padEnd(30)}${'traffic'.padStart(8)}${'req/s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'added p50'.padStart(11)}${'added p99'.padStart(11)}`);
  for (const r of rows) {
    const label = modes.find((m) => m.id === r.mode)!.label;
    const added = r.mode === 'off' ? ['-', '-'] : [`${signed(r.addedP50Ms, 3)}`, `${signed(r.addedP99Ms, 3)}`];
    log(label.padEnd(30) + r.traffic.padStart(8) + fmt(r.reqPerSec, 0).padStart(9) + fmt(r.p50Ms, 3).padStart(9) + fmt(r.p99Ms, 3).padStart(9) + added[0]!.padStart(11) + added[1]!.padStart(11));
  }
  log('(block mode answers attack traffic with a 403 itself: its attack row prices a refusal, the handler never runs)');
  const row = (mode: Mode, traffic: Traffic) => rows.find((r) => r.mode === mode && r.traffic === traffic)!;
  const targets = (['monitor', 'block'] as const).map((mode) => {
    const added = row(mode, 'benign').addedP99Ms;
    return {
      id: `${mode}-benign-added-p99`,
      description: `p99 added to a benign HTTP invoke by detection in ${mode} mode, vs the same function with detection off`,
      valueMs: added,
      target: '< 1 ms',
      verdict: added < 1 ? 'PASS' : 'FAIL',
    };
  });
  log('');
  for (const t of targets) log(`RESULT ${t.verdict.padEnd(4)} ${t.id.padEnd(28)} ${`${signed(t.valueMs, 3)} ms`.padEnd(12)} target ${t.target.padEnd(8)} ${t.description}`);
  log(`attack requests block mode let through to the handler while measured: ${notRefused}`);
  const attacksMeasured = (mode: Mode) => results.get(`${mode}/attack`)!.reduce((n, r) => n + r.requests, 0);
  log(`signals stored, after the environments flushed on shutdown: ${JSON.stringify(signals)} (the query stops at 10,000 per function); attack requests measured: monitor ${attacksMeasured('monitor')}, block ${attacksMeasured('block')}`);
  for (const [mode, lines] of Object.entries(refusedBatches)) {
    if (lines.length > 0) log(`note: the ${mode} function's agent had ${lines.length} flush(es) refused by the server, their telemetry dropped: ${lines[0]}`);
  }
  const loadAtEnd = loadavg()[0]!;
  if (Math.max(loadAtStart, loadAtEnd) > cpu.length * 0.5) {
    log('');
    log(`note: load average ${loadAtStart.toFixed(2)} at start, ${loadAtEnd.toFixed(2)} at end, on ${cpu.length} CPUs: other processes share the machine; the figures are noisy, the within-round differences less so`);
  }
  const left = leftovers();
  log('');
  log(left.length === 0 ? 'child processes left: none' : `child processes left: ${left.join(', ')}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}appsec-${started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`;
  writeFileSync(
    file,
    JSON.stringify(
      {
        bench: 'appsec',
        started: started.toISOString(),
        finished: new Date().toISOString(),
        machine: { cpus: cpu.length, cpuModel: cpu[0]?.model, kernel: release(), node: process.version, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAtEnd },
        config: { ...config, memoryMb: MEMORY_MB },
        requests,
        rows,
        targets,
        blockModeAttacksLetThrough: notRefused,
        signals,
        refusedBatches,
        leftovers: left,
      },
      null,
      2,
    ) + '\n',
  );
  log(`results written to ${file}`);
}

await main();
