/**
 * bench/async: asynchronous invocation beside synchronous, in the same run, and the cost
 * of a throttling decision.
 *
 *   1. sync: warm RequestResponse invokes at 10 connections (req/s);
 *   2. async: Event invokes at 10 connections — accepted per second (202s), then delivered
 *      per second (accepted events / time until the dispatcher has run them all);
 *   3. throttle: invokes of a function with reserved concurrency 0 — every answer is a
 *      429, so its p50/p99 is the cost of the decision (plus HTTP).
 *
 * Targets (issue 4): async delivery keeps up with at least half the sync rate; a 429 in
 * under 1 ms at p99. Run: `npm run bench:async` (BENCH_SECONDS, default 5).
 */
import { PutFunctionConcurrencyCommand } from '@aws-sdk/client-lambda';
import { fixtureZip, invokeUrl, startNimbus, createFunction, waitActive } from '../invoke/nimbus.ts';
import { runLoad } from '../invoke/load.ts';
import { installCleanup, stopAll } from '../invoke/procs.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const body = JSON.stringify({ bench: true });

interface AsyncStats {
  accepted: number;
  delivered: number;
  failed: number;
}

async function stats(endpoint: string): Promise<AsyncStats> {
  const health = (await (await fetch(`${endpoint}/nimbus/v1/health`)).json()) as { async: AsyncStats };
  return health.async;
}

async function main(): Promise<void> {
  installCleanup();
  const server = await startNimbus();
  try {
    const zip = await fixtureZip();
    for (const name of ['bench-sync', 'bench-async', 'bench-throttled']) {
      await createFunction(server, name, zip);
      await waitActive(server, name);
    }
    await server.client.send(new PutFunctionConcurrencyCommand({ FunctionName: 'bench-throttled', ReservedConcurrentExecutions: 0 }));

    const sync = await runLoad({ url: invokeUrl(server, 'bench-sync'), body, connections: 10, warmupSeconds: 2, durationSeconds: seconds });

    const before = await stats(server.endpoint);
    const started = Date.now();
    const accepted = await runLoad({
      url: invokeUrl(server, 'bench-async'),
      body,
      headers: { 'x-amz-invocation-type': 'Event' },
      connections: 10,
      warmupSeconds: 0,
      durationSeconds: seconds,
    });
    let now = await stats(server.endpoint);
    const target = now.accepted - before.accepted;
    const deadline = Date.now() + 10 * 60_000;
    while (now.delivered + now.failed - before.delivered - before.failed < target && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      now = await stats(server.endpoint);
    }
    const deliveredCount = now.delivered - before.delivered;
    const deliverySeconds = (Date.now() - started) / 1000;
    const deliveredPerSec = deliveredCount / deliverySeconds;

    const throttled = await runLoad({ url: invokeUrl(server, 'bench-throttled'), body, connections: 1, warmupSeconds: 1, durationSeconds: seconds });

    const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
    console.log(`\n${server.banner}`);
    console.log(`\nmeasure                                   value        note`);
    console.log(`sync invokes (10 conns)                   ${fmt(sync.reqPerSec).padStart(8)}/s   p50 ${sync.p50Ms.toFixed(2)} ms, p99 ${sync.p99Ms.toFixed(2)} ms`);
    console.log(`async accepted (202, 10 conns)            ${fmt(accepted.reqPerSec).padStart(8)}/s   p50 ${accepted.p50Ms.toFixed(2)} ms, p99 ${accepted.p99Ms.toFixed(2)} ms`);
    console.log(`async delivered end to end                ${fmt(deliveredPerSec).padStart(8)}/s   ${deliveredCount} of ${target} in ${deliverySeconds.toFixed(1)} s`);
    console.log(`429 answers (1 conn)                      ${fmt(throttled.reqPerSec).padStart(8)}/s   p50 ${throttled.p50Ms.toFixed(3)} ms, p99 ${throttled.p99Ms.toFixed(3)} ms (non-2xx ${throttled.non2xx})`);
    const deliveryRatio = deliveredPerSec / sync.reqPerSec;
    console.log(`\nRESULT ${deliveryRatio >= 0.5 ? 'PASS' : 'FAIL'} async-delivered-vs-sync       ${deliveryRatio.toFixed(2)}x    target >= 0.50x`);
    console.log(`RESULT ${throttled.p99Ms < 1 ? 'PASS' : 'FAIL'} throttle-429-p99              ${throttled.p99Ms.toFixed(3)} ms  target < 1 ms`);
    if (deliveredCount !== target) console.log(`NOTE ${target - deliveredCount} accepted events were not delivered (failed: ${now.failed - before.failed})`);
  } finally {
    await server.stop();
    await stopAll();
  }
}

await main();
