/**
 * The load generator, run as a process of its own (see load.ts for why).
 *
 * Why autocannon: it is the HTTP benchmarking library of the Node ecosystem (Fastify's
 * benchmarks use it), maintained, with a programmatic API, keep-alive connections and its
 * own lean HTTP/1.1 client, so the generator spends little CPU per request on this 2-core
 * machine. Its latency histogram only keeps whole milliseconds, which is too coarse for
 * sub-millisecond invokes, so latencies are taken from its per-response event instead
 * (float milliseconds from process.hrtime) and their percentiles computed exactly here.
 *
 * Input: one JSON argument (LoadSpec). Output: one JSON line (LoadResult) on stdout.
 */
import autocannon from 'autocannon';
import type { LoadResult, LoadSpec } from './load.ts';

const spec = JSON.parse(process.argv[2]) as LoadSpec;
// Exit if our parent goes away (stdin closes), so no generator outlives the benchmark.
process.stdin.on('end', () => process.exit(1));
process.stdin.resume();

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

interface Phase {
  count: number;
  non2xx: number;
  latencies: number[];
  elapsedMs: number;
  errors: number;
  timeouts: number;
}

async function phase(opts: { durationSeconds?: number; amount?: number; record: boolean }): Promise<Phase> {
  const latencies: number[] = [];
  let count = 0;
  let non2xx = 0;
  const started = process.hrtime.bigint();
  let finish: (r: autocannon.Result) => void = () => {};
  let fail: (e: unknown) => void = () => {};
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  // The callback form returns the instance, whose 'response' events carry exact latencies.
  const instance = autocannon({
    url: spec.url,
    method: 'POST',
    body: spec.body,
    headers: { 'content-type': 'application/json', ...spec.headers },
    connections: spec.connections,
    pipelining: 1,
    ...(opts.amount !== undefined ? { amount: opts.amount } : { duration: opts.durationSeconds }),
    timeout: 30,
  }, (err: unknown, result: autocannon.Result) => (err ? fail(err) : finish(result)));
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    count++;
    if (statusCode < 200 || statusCode > 299) non2xx++;
    if (opts.record) latencies.push(responseTime);
  });
  const result = await done;
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  return { count, non2xx, latencies, elapsedMs, errors: result.errors, timeouts: result.timeouts };
}

if (spec.warmupSeconds > 0) await phase({ durationSeconds: spec.warmupSeconds, record: false });
const measured = await phase({ durationSeconds: spec.durationSeconds, amount: spec.amount, record: true });
const sorted = Float64Array.from(measured.latencies).sort();
const out: LoadResult = {
  connections: spec.connections,
  requests: measured.count,
  seconds: measured.elapsedMs / 1000,
  reqPerSec: measured.count / (measured.elapsedMs / 1000),
  p50Ms: percentile(sorted, 50),
  p99Ms: percentile(sorted, 99),
  non2xx: measured.non2xx,
  errors: measured.errors,
  timeouts: measured.timeouts,
};
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(0);
