/**
 * Child processes of the benchmark: every server, runtime and load generator is started
 * here, in its own process group (`detached: true`), with a minimal explicit environment,
 * and is killed with its whole tree at the end, on error and on SIGINT/SIGTERM.
 *
 * Why the minimal environment: an inherited NODE_EXTRA_CA_CERTS (set on these machines)
 * alone doubles Node's start-up, and anything else inherited makes contenders differ.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Everything the process wrote to stdout and stderr, last 64 KB. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output; rejects on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

const live = new Set<Proc>();
/** Every process group we ever created, to check at the end that none has members left. */
const groups = new Set<number>();
const OUTPUT_KEEP_CHARS = 64 * 1024;

/** The environment every child starts from: nothing of ours but PATH and HOME. */
export function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...extra };
}

export interface StartOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Keep stdin open as a pipe: our own helpers exit when it closes (parent died). */
  stdinPipe?: boolean;
}

export function start(name: string, command: string, args: string[], opts: StartOptions = {}): Proc {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? baseEnv(),
    detached: true,
    stdio: [opts.stdinPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${name}: could not spawn ${command}`);
  let out = '';
  const watchers = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (out.length > OUTPUT_KEEP_CHARS * 2) out = out.slice(-OUTPUT_KEEP_CHARS);
    for (const w of watchers) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const proc: Proc = {
    name,
    child,
    pid: child.pid,
    output: () => out.slice(-OUTPUT_KEEP_CHARS),
    exited,
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const done = () => {
          watchers.delete(check);
          clearTimeout(timer);
        };
        const check = () => {
          const m = out.match(pattern);
          if (m) {
            done();
            resolve(m);
          }
        };
        watchers.add(check);
        timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: no ${pattern} within ${timeoutMs} ms; output:\n${tail(out)}`));
        }, timeoutMs);
        void exited.then((code) => {
          if (!watchers.has(check)) return;
          done();
          reject(new Error(`${name}: exited (code ${code}) before ${pattern}; output:\n${tail(out)}`));
        });
        check();
      });
    },
  };
  live.add(proc);
  groups.add(proc.pid);
  return proc;
}

function tail(s: string): string {
  return s.split('\n').slice(-30).join('\n');
}

function readStats(): Array<{ pid: number; ppid: number; pgrp: number; comm: string }> {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces; ppid and pgrp follow the state.
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] === 'Z') continue;
      out.push({ pid: Number(entry), ppid: Number(rest[1]), pgrp: Number(rest[2]), comm });
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** Processes still alive in any group we created: should be none after stopAll(). */
export function leftovers(): string[] {
  return readStats()
    .filter((p) => groups.has(p.pgrp))
    .map((p) => `${p.pid} (${p.comm}, group ${p.pgrp})`);
}

/** Pids of every process below `pid`, found through /proc (so grandchildren that moved
 * into process groups of their own, as sandboxed environments may, are found too). */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const p of readStats()) parentOf.set(p.pid, p.ppid);
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const [child, parent] of parentOf) {
      if (parent === p) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

function signal(target: number, sig: NodeJS.Signals): void {
  try {
    process.kill(target, sig);
  } catch {
    // Already gone.
  }
}

/**
 * Stops a process and everything it started: SIGTERM to the process itself (a server
 * gets the chance to shut its environments down in order), then after `graceMs` SIGKILL
 * to its group and to every descendant seen before, wherever it lives.
 */
export async function stop(proc: Proc, graceMs = 3000): Promise<void> {
  const tree = descendants(proc.pid);
  const running = proc.child.exitCode === null && proc.child.signalCode === null;
  if (running) {
    signal(proc.pid, 'SIGTERM');
    await Promise.race([proc.exited, new Promise((r) => setTimeout(r, graceMs).unref())]);
  }
  // The group catches children left behind even when the leader is gone already;
  // the descendants seen before catch those in groups of their own.
  signal(-proc.pid, 'SIGKILL');
  for (const pid of [...tree, ...descendants(proc.pid)]) {
    signal(pid, 'SIGKILL');
    signal(-pid, 'SIGKILL');
  }
  await proc.exited;
  live.delete(proc);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => stop(p, 1000)));
}

/** Last resort on process exit: synchronous, so it also runs from an 'exit' handler. */
function killAllNow(): void {
  for (const proc of live) {
    for (const pid of descendants(proc.pid)) signal(pid, 'SIGKILL');
    signal(-proc.pid, 'SIGKILL');
  }
  live.clear();
}

let installed = false;
/** Kills every child when we exit, however we exit (short of SIGKILL). */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping every child process\n`);
      void stopAll().finally(() => process.exit(130));
    });
  }
}

/** A free TCP port on 127.0.0.1 (closed again before it is handed out). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** VmRSS of one process in KB, or undefined when it is gone. */
export function rssKb(pid: number): number | undefined {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** VmRSS summed over a process and all its descendants, in KB. */
export function treeRssKb(pid: number): number {
  let total = 0;
  for (const p of [pid, ...descendants(pid)]) total += rssKb(p) ?? 0;
  return total;
}
