/**
 * Starts the floor (floor-server.ts) with N runtime processes, and picks which runtime
 * client those processes run: Nimbus's own when it is there (so the floor measures the
 * server side only, with the same client Nimbus uses), else the inline loop.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { baseEnv, start, stop } from './procs.ts';
import type { Target } from './types.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/handler/', import.meta.url));
export const NIMBUS_NODE_CLIENT = fileURLToPath(new URL('../../src/runtimes/clients/node/index.mjs', import.meta.url));
export const INLINE_RUNTIME = fileURLToPath(new URL('./floor-runtime.mjs', import.meta.url));
const FLOOR_SERVER = fileURLToPath(new URL('./floor-server.ts', import.meta.url));

export interface RuntimeChoice {
  path: string;
  kind: 'nimbus-client' | 'inline';
  why: string;
}

/** BENCH_FLOOR_RUNTIME=auto (default) | nimbus | inline. */
export function chooseFloorRuntime(setting: string): RuntimeChoice {
  const present = existsSync(NIMBUS_NODE_CLIENT);
  if (setting === 'inline') return { path: INLINE_RUNTIME, kind: 'inline', why: 'BENCH_FLOOR_RUNTIME=inline' };
  if (present) return { path: NIMBUS_NODE_CLIENT, kind: 'nimbus-client', why: "Nimbus's own Node runtime client" };
  if (setting === 'nimbus') throw new Error(`BENCH_FLOOR_RUNTIME=nimbus but ${NIMBUS_NODE_CLIENT} is missing`);
  return { path: INLINE_RUNTIME, kind: 'inline', why: "src/runtimes/clients/node/index.mjs not present yet" };
}

export async function startFloor(runtimes: number, runtime: RuntimeChoice): Promise<Target> {
  const proc = start(
    `floor x${runtimes}`,
    process.execPath,
    [FLOOR_SERVER, '--runtimes', String(runtimes), '--runtime', runtime.path, '--task-root', FIXTURE_DIR],
    { env: baseEnv(), stdinPipe: true },
  );
  try {
    const m = await proc.waitFor(/listening (http:\/\/127\.0\.0\.1:\d+)/, 15_000);
    await proc.waitFor(/^ready$/m, 15_000);
    return {
      url: `${m[1]}/2015-03-31/functions/floor/invocations`,
      pid: proc.pid,
      stop: () => stop(proc),
    };
  } catch (err) {
    await stop(proc);
    throw err;
  }
}
