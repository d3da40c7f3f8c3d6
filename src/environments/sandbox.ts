/**
 * The process sandbox: the only place that spawns environment processes.
 *
 * With bubblewrap (Debian `bubblewrap`), each environment gets a new mount, pid, ipc and
 * uts namespace: the host's /usr and /etc read-only, its code read-only at /var/task,
 * its layers at /opt, a private /tmp, and nothing of the data dir or of other
 * functions. Without it, a plain process group with a private temp dir. The network is
 * shared in both cases so the runtime reaches its Runtime API on 127.0.0.1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { lstatSync, readlinkSync } from 'node:fs';
import type { EnvironmentPaths } from './lambda-env-vars.ts';
import { treePids } from './process-tree.ts';

export type SandboxKind = 'bubblewrap' | 'process';

/** Host directories of one environment. */
export interface HostDirs {
  codeDir: string;
  optDir: string;
  tmpDir: string;
  /**
   * The environment's /etc/hosts (the host's, plus `sandbox.localdomain` and `sandbox` for
   * 127.0.0.1, the names Telemetry API subscribers listen on). Bubblewrap only.
   */
  hostsFile?: string;
}

export interface SpawnRequest {
  command: string;
  args: string[];
  env: Record<string, string>;
  dirs: HostDirs;
  /** Host paths to make visible read-only at the same path (interpreters, runtime clients). */
  readOnlyPaths: string[];
}

export interface SandboxSupervisor {
  readonly kind: SandboxKind;
  /** How an environment with these host dirs sees its files. */
  paths(dirs: HostDirs): EnvironmentPaths;
  /** Starts the process tree in its own process group; stdio is piped. */
  spawn(request: SpawnRequest): ChildProcess;
  /**
   * Signals the whole process tree of a spawned child: SIGKILL kills it; SIGTERM asks
   * every process of it to stop.
   */
  kill(child: ChildProcess, signal: NodeJS.Signals): void;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

export class ProcessSandbox implements SandboxSupervisor {
  readonly kind = 'process';

  paths(dirs: HostDirs): EnvironmentPaths {
    return { taskRoot: dirs.codeDir, runtimeDir: dirs.optDir, optDir: dirs.optDir, tmpDir: dirs.tmpDir };
  }

  spawn(request: SpawnRequest): ChildProcess {
    return spawn(request.command, request.args, {
      cwd: request.dirs.codeDir,
      env: request.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group, so that kill() reaches every descendant.
      detached: true,
    });
  }

  kill(child: ChildProcess, signal: NodeJS.Signals): void {
    killGroup(child, signal);
  }
}

/** Bind /bin, /lib... as the host has them: a symlink (merged /usr) or a real dir. */
function rootEntryArgs(entry: string): string[] {
  try {
    const st = lstatSync(entry);
    if (st.isSymbolicLink()) return ['--symlink', readlinkSync(entry), entry];
    if (st.isDirectory()) return ['--ro-bind', entry, entry];
  } catch {
    // Absent on this host.
  }
  return [];
}

/**
 * Lambda's OS (Amazon Linux) has bash as /bin/sh, and AWS's own custom-runtime tutorial
 * relies on it (`#!/bin/sh` with `set -o pipefail` and `function`). Debian's sh is dash,
 * so inside the sandbox bash is mounted where sh points.
 */
function shellArgs(): string[] {
  try {
    if (lstatSync('/usr/bin/bash').isFile()) return ['--ro-bind', '/usr/bin/bash', '/usr/bin/sh'];
  } catch {
    // No bash on this host: keep its sh.
  }
  return [];
}

export class BubblewrapSandbox implements SandboxSupervisor {
  readonly kind = 'bubblewrap';
  readonly #bwrapPath: string;
  readonly #rootArgs: string[];

  constructor(bwrapPath: string) {
    this.#bwrapPath = bwrapPath;
    this.#rootArgs = [
      '--ro-bind', '/usr', '/usr',
      '--ro-bind', '/etc', '/etc',
      ...['/bin', '/sbin', '/lib', '/lib64', '/lib32'].flatMap(rootEntryArgs),
      ...shellArgs(),
      '--dev', '/dev',
      '--proc', '/proc',
      '--tmpfs', '/var',
      '--dir', '/var/runtime',
    ];
  }

  paths(): EnvironmentPaths {
    return { taskRoot: '/var/task', runtimeDir: '/var/runtime', optDir: '/opt', tmpDir: '/tmp' };
  }

  spawn(request: SpawnRequest): ChildProcess {
    const args = [
      '--die-with-parent',
      '--unshare-pid',
      // The process is the first of its pid namespace, with no bubblewrap reaper above it:
      // a reaper outlives bubblewrap when the process ends on its own (after SIGTERM or
      // SHUTDOWN) and is left as a zombie for the host's init to collect.
      '--as-pid-1',
      '--unshare-ipc',
      '--unshare-uts',
      '--hostname', 'localhost',
      ...this.#rootArgs,
      '--ro-bind', request.dirs.codeDir, '/var/task',
      '--ro-bind', request.dirs.optDir, '/opt',
      '--bind', request.dirs.tmpDir, '/tmp',
      ...(request.dirs.hostsFile ? ['--ro-bind', request.dirs.hostsFile, '/etc/hosts'] : []),
      ...request.readOnlyPaths.flatMap((p) => ['--ro-bind', p, p]),
      '--chdir', '/var/task',
      '--',
      request.command,
      ...request.args,
    ];
    return spawn(this.#bwrapPath, args, {
      env: request.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
  }

  /**
   * SIGKILL: kills the namespace's first process first: the kernel then kills everything
   * in the pid namespace, and bubblewrap reaps it and exits on its own. Killing the whole
   * group at once would leave bubblewrap no time to reap. The group kill stays as the
   * backstop.
   *
   * Other signals go to every process inside. The first process of a pid namespace gets
   * one from outside only if it handles it (Node.js does for SIGTERM, but only to end by
   * it again, which a namespace's first process cannot): the Shutdown phase kills what a
   * SIGTERM did not end.
   */
  kill(child: ChildProcess, signal: NodeJS.Signals): void {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const tree = treePids(child.pid);
    if (signal !== 'SIGKILL') {
      for (const pid of tree.slice(1)) {
        try {
          process.kill(pid, signal);
        } catch {
          // gone already
        }
      }
      return;
    }
    const first = tree.slice(1, 2);
    for (const pid of first) {
      try {
        process.kill(pid, signal);
      } catch {
        // gone already
      }
    }
    if (first.length === 0) {
      killGroup(child, signal);
      return;
    }
    const backstop = setTimeout(() => killGroup(child, 'SIGKILL'), 1000);
    backstop.unref();
    child.once('exit', () => clearTimeout(backstop));
  }
}

/** Finds a bubblewrap that can actually create namespaces here. */
export function detectBubblewrap(): string | undefined {
  for (const candidate of ['/usr/bin/bwrap', '/usr/local/bin/bwrap']) {
    const probe = spawnSync(candidate, ['--ro-bind', '/', '/', '--unshare-pid', '--dev', '/dev', '--proc', '/proc', '/bin/true'], {
      stdio: 'ignore',
      timeout: 5000,
    });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

export function createSandbox(mode: 'auto' | 'bubblewrap' | 'process'): SandboxSupervisor {
  if (mode === 'process') return new ProcessSandbox();
  const bwrap = detectBubblewrap();
  if (bwrap) return new BubblewrapSandbox(bwrap);
  if (mode === 'bubblewrap') throw new Error('sandbox "bubblewrap" was asked for, but bwrap is not installed or cannot create namespaces here');
  return new ProcessSandbox();
}
