/**
 * Drives load at a contender from a separate process (load-worker.ts).
 *
 * Why a separate process: on a 2-core machine the generator competes with the server for
 * CPU whatever we do, but inside this orchestrator it would also share an event loop with
 * our own bookkeeping (RSS sampling, child output). As its own process it is scheduled
 * like any other, and every contender pays the same for it.
 */
import { fileURLToPath } from 'node:url';
import { baseEnv, start, stop } from './procs.ts';

export interface LoadSpec {
  url: string;
  body: string;
  headers?: Record<string, string>;
  connections: number;
  warmupSeconds: number;
  /** Measure for this long... */
  durationSeconds?: number;
  /** ...or for exactly this many requests. */
  amount?: number;
}

export interface LoadResult {
  connections: number;
  requests: number;
  seconds: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

const WORKER = fileURLToPath(new URL('./load-worker.ts', import.meta.url));

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const proc = start(`load x${spec.connections}`, process.execPath, [WORKER, JSON.stringify(spec)], {
    env: baseEnv(),
    stdinPipe: true,
  });
  try {
    const code = await proc.exited;
    const line = proc.output().trim().split('\n').findLast((l) => l.startsWith('{'));
    if (code !== 0 || !line) throw new Error(`load generator failed (code ${code}):\n${proc.output()}`);
    return JSON.parse(line) as LoadResult;
  } finally {
    await stop(proc);
  }
}
