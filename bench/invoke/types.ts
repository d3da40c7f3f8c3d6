/** Shapes shared by the benchmark's modules, and the JSON written to bench/results/. */
import type { LoadResult } from './load.ts';

/** A running contender: where to send invokes, and the process whose RSS is the server's. */
export interface Target {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export type ContenderId = 'floor' | 'nimbus' | 'sls-default' | 'sls-in-process';

export interface WarmRow {
  contender: ContenderId;
  label: string;
  connections: number;
  result?: LoadResult;
  /** Why there is no result (contender not available, failed to start, ...). */
  skipped?: string;
}

export interface Median {
  medianMs: number;
  samplesMs: number[];
}

export interface ColdResults {
  nodeBare?: Median;
  inlineRuntimeStart?: Median;
  nimbusClientStart?: Median | { skipped: string };
  /** CreateFunction returned -> first invoke answered. */
  nimbusFirstInvoke?: Median | { skipped: string };
  /** Init Duration from the REPORT line of those first invokes. */
  nimbusInitDuration?: Median | { skipped: string };
}

export interface RssResult {
  contender: ContenderId;
  invokes: number;
  afterWarmupKb: number;
  endKb: number;
  peakKb: number;
  growthPct: number;
  /** The same, summed over the server's whole process tree (environments included). */
  treeAfterWarmupKb: number;
  treeEndKb: number;
  load: LoadResult;
}

export interface TargetResult {
  id: string;
  description: string;
  value?: number;
  target: string;
  verdict: 'PASS' | 'FAIL' | 'SKIP';
  note?: string;
}
