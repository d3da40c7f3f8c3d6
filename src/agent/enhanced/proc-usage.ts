/**
 * What the sandbox's processes use, read from /proc and statfs, for the usage metrics of
 * enhanced metrics (CPU time, network bytes, file descriptors, threads, /tmp).
 *
 * Which processes are "the sandbox":
 * - On Lambda each environment is a microVM: every numeric /proc entry belongs to it.
 * - On Nimbus (`sandboxAddress`, the NIMBUS_SANDBOX_ADDRESS the agent was given) that
 *   would be the whole host, and neither a session nor a pid namespace spans one
 *   environment: Nimbus starts the runtime and each extension as separate detached
 *   process trees (own session each), and under bubblewrap each in its own pid namespace.
 *   What every process of an environment does share is its environment variables, and
 *   NIMBUS_SANDBOX_ADDRESS is unique per live environment, so the processes whose
 *   /proc/<pid>/environ carries it are the environment. Under bubblewrap the agent's /proc
 *   only shows its own pid namespace, so there the figures cover the agent's tree alone.
 *   Processes of other users (environ unreadable) are left out.
 *
 * Every read is asynchronous (the agent runs beside the function) and tolerant: a
 * process that exits mid-read is skipped, a file that cannot be read leaves its figure out.
 */
import { readdirSync, readFileSync, statfsSync } from 'node:fs';

// /proc and statfs answer from kernel memory, never from a disk: a synchronous read costs a
// few microseconds, where each promise-based one is a thread-pool round trip. These run
// twice per invocation, beside the function, so the cheap form matters (measured: the
// async form cost the agent about 1 ms of CPU per invocation).
const readFile = async (path: string, encoding?: BufferEncoding): Promise<string & Buffer> => readFileSync(path, encoding as BufferEncoding) as string & Buffer;
const readdir = async (path: string): Promise<string[]> => readdirSync(path);
const statfs = async (path: string) => statfsSync(path);
import os from 'node:os';

export interface ProcUsageOptions {
  /** /proc; tests may point elsewhere. */
  procRoot?: string;
  /** The filesystem behind /tmp. */
  tmpPath?: string;
  /** NIMBUS_SANDBOX_ADDRESS: selects the environment's processes by their environment (above). */
  sandboxAddress?: string;
  /** How long a scan of /proc/<pid>/environ stays valid (10 s): an environment's processes rarely come and go. */
  rescanMs?: number;
}

export interface CpuTimes {
  userMs: number;
  systemMs: number;
}

export interface UsageSnapshot {
  /** performance.now() of the reading. */
  atMs: number;
  /** CPU time so far of each process, by pid. */
  cpu: Map<number, CpuTimes>;
  /** Bytes through every interface but loopback since boot; absent when /proc/net/dev cannot be read. */
  network?: { rxBytes: number; txBytes: number };
}

export interface ProcessCounts {
  fdUse?: number;
  threadsUse?: number;
}

export interface TmpUsage {
  usedBytes: number;
  maxBytes: number;
  freeBytes: number;
}

export interface UsageLimits {
  fdMax?: number;
  threadsMax?: number;
  numCores: number;
}

/** USER_HZ: /proc reports CPU time in clock ticks, 100 per second on every Linux ABI Lambda runs. */
const ticksPerSecond = 100;

interface StatFields {
  utime: number;
  stime: number;
  threads: number;
}

/** /proc/<pid>/stat after the `(comm)` field, which may itself hold spaces and parentheses. */
function parseStat(text: string): StatFields | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): utime is field 14, stime 15, num_threads 20.
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  const threads = Number(f[17]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || !Number.isFinite(threads)) return undefined;
  return { utime, stime, threads };
}

/** Sum of receive and transmit bytes of every interface but `lo`. */
export function parseNetDev(text: string): { rxBytes: number; txBytes: number } | undefined {
  let rxBytes = 0;
  let txBytes = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (name === 'lo' || name.includes('|')) continue;
    const fields = line.slice(colon + 1).trim().split(/\s+/);
    const rx = Number(fields[0]);
    const tx = Number(fields[8]);
    if (!Number.isFinite(rx) || !Number.isFinite(tx)) continue;
    rxBytes += rx;
    txBytes += tx;
    seen = true;
  }
  return seen ? { rxBytes, txBytes } : undefined;
}

/** `Max open files  <soft>  <hard>  files` in /proc/<pid>/limits: the soft limit. */
export function parseMaxOpenFiles(limits: string): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  if (!m || m[1] === 'unlimited') return undefined;
  return Number(m[1]);
}

/** CPU time spent between two snapshots, per process: new processes count whole, exited ones are lost. */
export function cpuBetween(before: UsageSnapshot, after: UsageSnapshot): CpuTimes {
  let userMs = 0;
  let systemMs = 0;
  for (const [pid, now] of after.cpu) {
    const then = before.cpu.get(pid);
    // A smaller figure than before means the pid was reused by a new process.
    const u = then && now.userMs >= then.userMs ? now.userMs - then.userMs : now.userMs;
    const s = then && now.systemMs >= then.systemMs ? now.systemMs - then.systemMs : now.systemMs;
    userMs += u;
    systemMs += s;
  }
  return { userMs, systemMs };
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'latin1');
  } catch {
    return undefined;
  }
}

export class ProcUsage {
  readonly #proc: string;
  readonly #tmp: string;
  readonly #marker: Buffer | undefined;
  readonly #rescanMs: number;
  #pids: number[] = [];
  #scannedAt = -Infinity;
  #scanning: Promise<number[]> | undefined;
  #limits: Promise<UsageLimits> | undefined;

  constructor(options: ProcUsageOptions = {}) {
    this.#proc = options.procRoot ?? '/proc';
    this.#tmp = options.tmpPath ?? '/tmp';
    this.#marker = options.sandboxAddress ? Buffer.from(`NIMBUS_SANDBOX_ADDRESS=${options.sandboxAddress}`) : undefined;
    this.#rescanMs = options.rescanMs ?? 10_000;
  }

  /** The sandbox's pids (see the file comment). */
  async pids(): Promise<number[]> {
    if (!this.#marker) return this.#allPids();
    if (performance.now() - this.#scannedAt < this.#rescanMs) return this.#pids;
    this.#scanning ??= this.#scanMarked().finally(() => {
      this.#scanning = undefined;
    });
    return this.#scanning;
  }

  async snapshot(): Promise<UsageSnapshot> {
    const [pids, netText] = await Promise.all([this.pids(), readText(`${this.#proc}/net/dev`)]);
    const stats = await Promise.all(pids.map((pid) => readText(`${this.#proc}/${pid}/stat`)));
    const cpu = new Map<number, CpuTimes>();
    const msPerTick = 1000 / ticksPerSecond;
    for (let i = 0; i < pids.length; i++) {
      const fields = stats[i] === undefined ? undefined : parseStat(stats[i]!);
      if (fields) cpu.set(pids[i]!, { userMs: fields.utime * msPerTick, systemMs: fields.stime * msPerTick });
    }
    const snapshot: UsageSnapshot = { atMs: performance.now(), cpu };
    const network = netText === undefined ? undefined : parseNetDev(netText);
    if (network) snapshot.network = network;
    return snapshot;
  }

  /**
   * Open file descriptors and threads of the sandbox's processes now. Threads come from
   * /proc/<pid>/stat's num_threads, the same count /proc/<pid>/status shows as `Threads:`.
   */
  async counts(): Promise<ProcessCounts> {
    const pids = await this.pids();
    const [fds, stats] = await Promise.all([
      Promise.all(pids.map((pid) => readdir(`${this.#proc}/${pid}/fd`).then((e) => e.length, () => undefined))),
      Promise.all(pids.map((pid) => readText(`${this.#proc}/${pid}/stat`))),
    ]);
    const out: ProcessCounts = {};
    for (const n of fds) if (n !== undefined) out.fdUse = (out.fdUse ?? 0) + n;
    for (const text of stats) {
      const fields = text === undefined ? undefined : parseStat(text);
      if (fields) out.threadsUse = (out.threadsUse ?? 0) + fields.threads;
    }
    return out;
  }

  /** /tmp as statfs sees it: used = blocks - available, as Datadog counts it. */
  async tmp(): Promise<TmpUsage | undefined> {
    try {
      const s = await statfs(this.#tmp);
      return { usedBytes: (s.blocks - s.bavail) * s.bsize, maxBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
    } catch {
      return undefined;
    }
  }

  /** Limits do not change during the agent's life: read once. */
  limits(): Promise<UsageLimits> {
    this.#limits ??= (async () => {
      const [limits, threadsMax] = await Promise.all([readText(`${this.#proc}/self/limits`), readText(`${this.#proc}/sys/kernel/threads-max`)]);
      const out: UsageLimits = { numCores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length };
      const fdMax = limits === undefined ? undefined : parseMaxOpenFiles(limits);
      if (fdMax !== undefined) out.fdMax = fdMax;
      const t = Number(threadsMax?.trim());
      if (threadsMax !== undefined && Number.isFinite(t) && t > 0) out.threadsMax = t;
      return out;
    })();
    return this.#limits;
  }

  async #allPids(): Promise<number[]> {
    try {
      const names = await readdir(this.#proc);
      const out: number[] = [];
      for (const name of names) {
        const c = name.charCodeAt(0);
        if (c >= 48 && c <= 57) out.push(Number(name));
      }
      return out;
    } catch {
      return [];
    }
  }

  async #scanMarked(): Promise<number[]> {
    const marker = this.#marker!;
    const all = await this.#allPids();
    const matches = await Promise.all(all.map((pid) => this.#hasMarker(pid, marker)));
    this.#pids = all.filter((_, i) => matches[i]);
    this.#scannedAt = performance.now();
    return this.#pids;
  }

  /** Whether the process's initial environment holds `marker` (`KEY=value`) as a whole variable. */
  async #hasMarker(pid: number, marker: Buffer): Promise<boolean> {
    let env: Buffer;
    try {
      env = await readFile(`${this.#proc}/${pid}/environ`);
    } catch {
      return false;
    }
    // Variables are NUL-separated; the last one may lack its NUL.
    const n = marker.length;
    const first = env.subarray(0, n).equals(marker) && (env.length === n || env[n] === 0);
    if (first) return true;
    let at = env.indexOf(marker, 1);
    while (at > 0) {
      if (env[at - 1] === 0 && (at + n === env.length || env[at + n] === 0)) return true;
      at = env.indexOf(marker, at + 1);
    }
    return false;
  }
}
