/**
 * Memory of an environment's process tree, read from /proc (Linux). Lambda reports
 * "Max Memory Used" for the whole sandbox and kills it past MemorySize, so Nimbus sums
 * every process below the environment's root, leaving out bubblewrap's own helpers.
 */
import { readFileSync, openSync, readSync, closeSync } from 'node:fs';

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

/**
 * Reads the memory of one environment's process tree cheaply enough to do on every
 * invoke: the tree's pids are found once and re-scanned at most every `rescanMs`, and
 * each process's /proc status file stays open and is re-read from offset 0 (procfs
 * regenerates it), so an invoke costs one pread per process instead of open/read/close
 * plus a walk of the tree.
 */
export class TreeMemoryReader {
  readonly #rootPid: number;
  readonly #rescanMs: number;
  readonly #buffer = Buffer.alloc(4096);
  #fds: number[] = [];
  #scannedAt = -Infinity;

  constructor(rootPid: number, rescanMs = 2000) {
    this.#rootPid = rootPid;
    this.#rescanMs = rescanMs;
  }

  read(): TreeMemory {
    const now = performance.now();
    if (now - this.#scannedAt > this.#rescanMs) this.#rescan(now);
    let rssKb = 0;
    let peakKb = 0;
    for (const fd of this.#fds) {
      let n = 0;
      try {
        n = readSync(fd, this.#buffer, 0, this.#buffer.length, 0);
      } catch {
        continue; // the process is gone; the next rescan drops it
      }
      const status = this.#buffer.toString('latin1', 0, n);
      rssKb += statusField(status, 'VmRSS:');
      peakKb += statusField(status, 'VmHWM:');
    }
    return { rssKb, peakKb };
  }

  #rescan(now: number): void {
    this.close();
    this.#scannedAt = now;
    for (const pid of treePids(this.#rootPid)) {
      try {
        const fd = openSync(`/proc/${pid}/status`, 'r');
        const n = readSync(fd, this.#buffer, 0, 64, 0);
        // bubblewrap's own processes are not the function's memory.
        if (this.#buffer.toString('latin1', 0, n).startsWith('Name:\tbwrap')) closeSync(fd);
        else this.#fds.push(fd);
      } catch {
        // exited meanwhile
      }
    }
  }

  close(): void {
    for (const fd of this.#fds) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    this.#fds = [];
  }
}
