/**
 * Server RSS over many warm invokes: the first 5% warm the server up (JIT, pools, caches,
 * one environment per connection), then RSS (VmRSS of the server process) is taken, the
 * remaining 95% are driven while RSS is sampled for the peak, and RSS is taken again.
 * Growth between the two marks is what leaks look like.
 */
import { PAYLOAD } from './http.ts';
import { runLoad } from './load.ts';
import { rssKb, treeRssKb } from './procs.ts';
import type { ContenderId, RssResult, Target } from './types.ts';

export async function measureRss(contender: ContenderId, target: Target, invokes: number, connections: number): Promise<RssResult> {
  const warmup = Math.max(connections, Math.ceil(invokes * 0.05));
  await runLoad({ url: target.url, body: PAYLOAD, connections, warmupSeconds: 0, amount: warmup });
  const afterWarmupKb = rssKb(target.pid) ?? NaN;
  const treeAfterWarmupKb = treeRssKb(target.pid);
  let peakKb = afterWarmupKb;
  const sampler = setInterval(() => {
    peakKb = Math.max(peakKb, rssKb(target.pid) ?? 0);
  }, 250);
  let load;
  try {
    load = await runLoad({ url: target.url, body: PAYLOAD, connections, warmupSeconds: 0, amount: invokes - warmup });
  } finally {
    clearInterval(sampler);
  }
  const endKb = rssKb(target.pid) ?? NaN;
  peakKb = Math.max(peakKb, endKb);
  return {
    contender,
    invokes,
    afterWarmupKb,
    endKb,
    peakKb,
    growthPct: ((endKb - afterWarmupKb) / afterWarmupKb) * 100,
    treeAfterWarmupKb,
    treeEndKb: treeRssKb(target.pid),
    load,
  };
}
