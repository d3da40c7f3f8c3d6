/**
 * Memory of an environment's process tree, read from /proc (Linux). Lambda reports
 * "Max Memory Used" for the whole sandbox and kills it past MemorySize, so Nimbus sums
 * every process below the environment's root, leaving out bubblewrap's own helpers.
 */
import { readFileSync } from 'node:fs';

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
}

/** Pids of the tree rooted at `rootPid` (root included), via /proc/<pid>/task/<tid>/children. */
export function treePids(rootPid: number): number[] {
  const out: number[] = [];
  const stack = [rootPid];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    const tasks = readOr(`/proc/${pid}/task/${pid}/children`);
    if (!tasks) continue;
    for (const part of tasks.split(' ')) {
      const child = Number(part);
      if (child > 0) stack.push(child);
    }
  }
  return out;
}

export interface TreeMemory {
  /** Current resident set of the tree, in KiB. */
  rssKb: number;
  /** Sum of each process's peak resident set (VmHWM), in KiB. */
  peakKb: number;
}

const statusField = (status: string, field: string): number => {
  const at = status.indexOf(field);
  if (at < 0) return 0;
  return parseInt(status.slice(at + field.length), 10) || 0;
};

export function treeMemory(rootPid: number): TreeMemory {
  let rssKb = 0;
  let peakKb = 0;
  for (const pid of treePids(rootPid)) {
    const status = readOr(`/proc/${pid}/status`);
    if (!status || status.startsWith('Name:\tbwrap')) continue;
    rssKb += statusField(status, 'VmRSS:');
    peakKb += statusField(status, 'VmHWM:');
  }
  return { rssKb, peakKb };
}
