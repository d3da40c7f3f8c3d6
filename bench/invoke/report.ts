/**
 * Turns measurements into the printed tables, the RESULT lines (one per target of issue 2,
 * PASS / FAIL, or SKIP when a contender could not be measured) and the JSON record.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ContenderId, ColdResults, Median, RssResult, TargetResult, WarmRow } from './types.ts';

const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function fmt(n: number | undefined, digits: number): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function find(rows: WarmRow[], contender: ContenderId, connections: number): WarmRow | undefined {
  return rows.find((r) => r.contender === contender && r.connections === connections);
}

export function ratio(rows: WarmRow[], a: ContenderId, b: ContenderId, connections: number): number | undefined {
  const x = find(rows, a, connections)?.result;
  const y = find(rows, b, connections)?.result;
  return x && y && y.reqPerSec > 0 ? x.reqPerSec / y.reqPerSec : undefined;
}

export function warmTable(rows: WarmRow[]): string {
  const lines = [
    `${pad('contender', 40)}${pad('conns', 6, true)}${pad('req/s', 10, true)}${pad('p50 ms', 9, true)}${pad('p99 ms', 9, true)}${pad('errors', 8, true)}${pad('vs floor', 10, true)}`,
  ];
  for (const row of [...rows].sort((a, b) => a.connections - b.connections)) {
    const r = row.result;
    if (!r) {
      lines.push(`${pad(row.label, 40)}${pad(String(row.connections), 6, true)}    ${row.skipped ?? 'no result'}`);
      continue;
    }
    const vsFloor = ratio(rows, row.contender, 'floor', row.connections);
    lines.push(
      pad(row.label, 40) +
        pad(String(row.connections), 6, true) +
        pad(fmt(r.reqPerSec, 0), 10, true) +
        pad(fmt(r.p50Ms, 3), 9, true) +
        pad(fmt(r.p99Ms, 3), 9, true) +
        pad(String(r.non2xx + r.errors + r.timeouts), 8, true) +
        pad(vsFloor === undefined ? '-' : `${fmt(vsFloor, 2)}x`, 10, true),
    );
  }
  return lines.join('\n');
}

function isMedian(x: unknown): x is Median {
  return typeof x === 'object' && x !== null && 'medianMs' in x;
}

function coldLine(label: string, x: Median | { skipped: string } | undefined): string {
  if (x === undefined) return `${pad(label, 58)}${pad('-', 10, true)}`;
  if (!isMedian(x)) return `${pad(label, 58)}    ${x.skipped}`;
  return `${pad(label, 58)}${pad(fmt(x.medianMs, 1), 10, true)}   [${x.samplesMs.map((s) => fmt(s, 1)).join(' ')}]`;
}

export function coldTable(c: ColdResults, inlineLabel: string): string {
  return [
    `${pad('cold start', 58)}${pad('median ms', 10, true)}   samples`,
    coldLine('node -e 0 (spawn to exit; the floor)', c.nodeBare),
    coldLine(`${inlineLabel}: spawn to first /next`, c.inlineRuntimeStart),
    coldLine('Nimbus Node runtime client: spawn to first /next', c.nimbusClientStart),
    coldLine('nimbus: CreateFunction returned to first invoke answer', c.nimbusFirstInvoke),
    coldLine('nimbus: Init Duration (REPORT line)', c.nimbusInitDuration),
  ].join('\n');
}

export function rssTable(rss: RssResult[]): string {
  const lines = [
    `${pad('server RSS (VmRSS)', 30)}${pad('invokes', 9, true)}${pad('after 5% MB', 13, true)}${pad('end MB', 9, true)}${pad('peak MB', 9, true)}${pad('growth', 9, true)}${pad('tree MB', 17, true)}${pad('req/s', 9, true)}`,
  ];
  for (const r of rss) {
    lines.push(
      pad(r.contender, 30) +
        pad(String(r.invokes), 9, true) +
        pad(fmt(r.afterWarmupKb / 1024, 1), 13, true) +
        pad(fmt(r.endKb / 1024, 1), 9, true) +
        pad(fmt(r.peakKb / 1024, 1), 9, true) +
        pad(`${fmt(r.growthPct, 1)}%`, 9, true) +
        pad(`${fmt(r.treeAfterWarmupKb / 1024, 0)} -> ${fmt(r.treeEndKb / 1024, 0)}`, 17, true) +
        pad(fmt(r.load.reqPerSec, 0), 9, true),
    );
  }
  return lines.join('\n');
}

function verdict(value: number | undefined, ok: (v: number) => boolean): 'PASS' | 'FAIL' | 'SKIP' {
  if (value === undefined || Number.isNaN(value)) return 'SKIP';
  return ok(value) ? 'PASS' : 'FAIL';
}

/** The targets of issue 2, "How it is checked". "Level" (the stretch) is taken as >= 0.95x. */
export function evaluateTargets(rows: WarmRow[], cold: ColdResults, rss: RssResult[]): TargetResult[] {
  const t: TargetResult[] = [];
  for (const conns of [1, 10]) {
    const v = ratio(rows, 'nimbus', 'floor', conns);
    t.push({ id: `warm-${conns}conn-vs-floor`, description: `nimbus/floor warm req/s at ${conns} connection${conns > 1 ? 's' : ''}`, value: v, target: '>= 0.60x', verdict: verdict(v, (x) => x >= 0.6) });
  }
  const vsSls = ratio(rows, 'nimbus', 'sls-default', 10);
  t.push({ id: 'warm-10conn-vs-sls-default', description: 'nimbus/serverless-offline (default) warm req/s at 10 connections', value: vsSls, target: '>= 2.00x', verdict: verdict(vsSls, (x) => x >= 2) });
  const vsInProc = ratio(rows, 'nimbus', 'sls-in-process', 10);
  t.push({ id: 'stretch-10conn-vs-sls-in-process', description: 'stretch: nimbus/serverless-offline --useInProcess warm req/s at 10 connections (level)', value: vsInProc, target: '>= 0.95x', verdict: verdict(vsInProc, (x) => x >= 0.95) });
  const nimbusRss = rss.find((r) => r.contender === 'nimbus');
  t.push({
    id: 'rss-growth',
    description: `nimbus server RSS growth after warm-up over ${nimbusRss?.invokes ?? '-'} invokes`,
    value: nimbusRss?.growthPct,
    target: '< 10%',
    verdict: verdict(nimbusRss?.growthPct, (x) => x < 10),
    ...(nimbusRss && nimbusRss.invokes < 100_000
      ? { note: `only ${nimbusRss.invokes} invokes, a ${Math.ceil(nimbusRss.invokes * 0.05)}-invoke warm-up: too few to judge; the target is over 100,000` }
      : {}),
  });
  const first = isMedian(cold.nimbusFirstInvoke) ? cold.nimbusFirstInvoke.medianMs : undefined;
  const delta = first !== undefined && cold.nodeBare ? first - cold.nodeBare.medianMs : undefined;
  t.push({ id: 'cold-start-vs-node', description: 'nimbus first invoke after CreateFunction minus `node -e 0` (medians)', value: delta, target: '<= 30 ms', verdict: verdict(delta, (x) => x <= 30) });
  return t;
}

export function resultLines(targets: TargetResult[]): string {
  return targets
    .map((t) => {
      const unit = t.id.startsWith('rss') ? '%' : t.id.startsWith('cold') ? ' ms' : 'x';
      const value = t.value === undefined || Number.isNaN(t.value) ? 'n/a' : `${fmt(t.value, 2)}${unit}`;
      return `RESULT ${pad(t.verdict, 4)} ${pad(t.id, 34)} ${pad(value, 10)} target ${pad(t.target, 9)} ${t.description}${t.note ? ` (${t.note})` : ''}`;
    })
    .join('\n');
}

/** Writes bench/results/invoke-<UTC date and time>.json and returns its path. */
export function writeJson(record: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const file = `${RESULTS_DIR}invoke-${stamp}.json`;
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  return file;
}
