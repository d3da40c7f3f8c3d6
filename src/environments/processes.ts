/**
 * The processes of an environment: the runtime (its bootstrap, or the managed runtime's
 * interpreter and client, behind AWS_LAMBDA_EXEC_WRAPPER when one is set) and one process
 * per external extension in /opt/extensions. Each runs in the sandbox with its own pipes,
 * memory reader and exit status, so that the environment can signal them one by one as
 * Lambda's Shutdown phase does.
 */
import type { ChildProcess } from 'node:child_process';
import { access, constants, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { RuntimeErrorType } from '../errors/runtime-error-types.ts';
import type { LauncherResolver } from '../runtimes/types.ts';
import type { Extension } from './extension-registry.ts';
import type { EnvironmentPaths } from './lambda-env-vars.ts';
import type { LogCollector } from './log-collector.ts';
import { TreeMemoryReader, type TreeMemory } from './process-tree.ts';
import type { HostDirs, SandboxSupervisor, SpawnRequest } from './sandbox.ts';
import type { EnvironmentSpec } from './types.ts';

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** Go's spelling of signals, which Lambda's messages use ("signal: killed"). */
export function signalName(signal: NodeJS.Signals): string {
  const names: Partial<Record<NodeJS.Signals, string>> = {
    SIGKILL: 'killed',
    SIGTERM: 'terminated',
    SIGSEGV: 'segmentation fault',
    SIGABRT: 'aborted',
    SIGINT: 'interrupt',
  };
  return names[signal] ?? signal;
}

/** `exit status 1`, `signal: killed`, as Lambda describes how a process ended. */
export function describeExit(exit: ProcessExit): string {
  if (exit.error) return exit.error.message;
  if (exit.signal) return `signal: ${signalName(exit.signal)}`;
  return `exit status ${exit.code}`;
}

export class EnvironmentProcess {
  readonly name: string;
  readonly exited: Promise<ProcessExit>;
  exit: ProcessExit | undefined;
  readonly #child: ChildProcess;
  readonly #sandbox: SandboxSupervisor;
  readonly #memory: TreeMemoryReader | undefined;

  constructor(
    name: string,
    sandbox: SandboxSupervisor,
    request: SpawnRequest,
    onOutput: (stream: 'stdout' | 'stderr', chunk: Buffer) => void,
    onExit: (exit: ProcessExit) => void,
  ) {
    this.name = name;
    this.#sandbox = sandbox;
    const child = sandbox.spawn(request);
    this.#child = child;
    if (child.pid !== undefined) this.#memory = new TreeMemoryReader(child.pid);
    child.stdout!.on('data', (chunk: Buffer) => onOutput('stdout', chunk));
    child.stderr!.on('data', (chunk: Buffer) => onOutput('stderr', chunk));
    this.exited = new Promise<ProcessExit>((resolve) => {
      const done = (exit: ProcessExit): void => {
        if (this.exit) return;
        this.exit = exit;
        this.#memory?.close();
        onExit(exit);
        resolve(exit);
      };
      child.once('error', (error) => done({ code: null, signal: null, error }));
      child.once('exit', (code, signal) => done({ code, signal }));
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** SIGTERM to the process tree: Lambda's request to stop. */
  terminate(): void {
    if (this.running) this.#sandbox.kill(this.#child, 'SIGTERM');
  }

  kill(): void {
    if (this.running) this.#sandbox.kill(this.#child, 'SIGKILL');
  }

  readMemory(): TreeMemory {
    return this.running && this.#memory ? this.#memory.read() : { rssKb: 0, peakKb: 0 };
  }
}

/** An entry of /opt/extensions: every file is an extension (RIE's ListExternalAgentPaths). */
export interface ExtensionFile {
  name: string;
  executable: boolean;
}

/** The external extensions of a layers tree, by name; none when /opt/extensions is absent. */
export async function listExtensions(optHostDir: string): Promise<ExtensionFile[]> {
  const dir = path.join(optHostDir, 'extensions');
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch {
    return [];
  }
  const out: ExtensionFile[] = [];
  for (const name of names) {
    try {
      const st = await stat(path.join(dir, name));
      if (st.isDirectory()) continue;
      out.push({ name, executable: st.isFile() && (st.mode & 0o111) !== 0 });
    } catch {
      // A dangling symlink cannot be started.
      out.push({ name, executable: false });
    }
  }
  return out;
}

/** An Init failure with Lambda's error type. */
export class InitFailure extends Error {
  readonly errorType: string;
  constructor(errorType: string, message: string) {
    super(message);
    this.errorType = errorType;
  }
}

export interface RuntimeLaunch {
  command: string;
  args: string[];
  env: Record<string, string>;
  readOnlyPaths: string[];
  /** The managed runtime's interpreter directory (Lambda's /var/lang/bin). */
  interpreterDir?: string;
}

async function executable(hostPath: string): Promise<boolean> {
  try {
    await access(hostPath, constants.X_OK);
    return (await stat(hostPath)).isFile();
  } catch {
    return false;
  }
}

/**
 * A path as the function names it (`/opt/...`, `/var/task/...`), as the environment's
 * processes see it, and on the host.
 */
function mapPath(p: string, seen: EnvironmentPaths, dirs: HostDirs): { seen: string; host: string } | undefined {
  for (const [prefix, seenRoot, hostRoot] of [
    ['/opt', seen.optDir, dirs.optDir],
    ['/var/task', seen.taskRoot, dirs.codeDir],
    [seen.optDir, seen.optDir, dirs.optDir],
    [seen.taskRoot, seen.taskRoot, dirs.codeDir],
  ] as const) {
    if (p === prefix || p.startsWith(prefix + '/')) {
      const rest = p.slice(prefix.length);
      return { seen: seenRoot + rest, host: hostRoot + rest };
    }
  }
  return undefined;
}

/**
 * How to start the runtime: a custom runtime's `bootstrap` (in the code, then in /opt, as
 * Lambda looks for it), or the managed runtime's launch plan, started through
 * AWS_LAMBDA_EXEC_WRAPPER (`<wrapper> <interpreter> <args>`) when the function sets one.
 */
export async function runtimeLaunch(spec: EnvironmentSpec, launcher: LauncherResolver, seen: EnvironmentPaths, dirs: HostDirs): Promise<RuntimeLaunch> {
  if (spec.runtimeId.startsWith('provided')) {
    const candidates = [
      { seen: path.join(seen.taskRoot, 'bootstrap'), host: path.join(dirs.codeDir, 'bootstrap') },
      { seen: path.join(seen.optDir, 'bootstrap'), host: path.join(dirs.optDir, 'bootstrap') },
    ];
    for (const c of candidates) if (await executable(c.host)) return { command: c.seen, args: [], env: {}, readOnlyPaths: [] };
    throw new InitFailure(RuntimeErrorType.InvalidEntrypoint, `Couldn't find valid bootstrap(s): [${candidates.map((c) => c.seen).join(' ')}]`);
  }
  const plan = await launcher.launchPlan(spec.runtimeId, { taskRoot: seen.taskRoot, optDir: seen.optDir, memoryMb: spec.memoryMb });
  const launch: RuntimeLaunch = { ...plan, interpreterDir: path.dirname(plan.command) };
  const wrapper = spec.variables.AWS_LAMBDA_EXEC_WRAPPER;
  if (!wrapper) return launch;
  const mapped = mapPath(wrapper, seen, dirs);
  if (!mapped || !(await executable(mapped.host))) {
    throw new InitFailure(
      RuntimeErrorType.InvalidEntrypoint,
      `AWS_LAMBDA_EXEC_WRAPPER ${wrapper} is not an executable file in the function's code (/var/task) or layers (/opt)`,
    );
  }
  return { ...launch, command: mapped.seen, args: [plan.command, ...plan.args] };
}

const extensionPeakMs = 500;

/** The runtime and the external extensions of one environment, with their output and exits wired. */
export class ProcessGroup {
  runtime: EnvironmentProcess | undefined;
  readonly extensions: Array<{ extension: Extension; process: EnvironmentProcess }> = [];
  readonly #sandbox: SandboxSupervisor;
  readonly #logs: LogCollector;
  readonly #onRuntimeExit: (exit: ProcessExit) => void;
  readonly #onExtensionExit: (extension: Extension, exit: ProcessExit) => void;
  #extensionPeakKb = 0;
  #extensionPeakAt = -Infinity;

  constructor(sandbox: SandboxSupervisor, logs: LogCollector, onRuntimeExit: (exit: ProcessExit) => void, onExtensionExit: (extension: Extension, exit: ProcessExit) => void) {
    this.#sandbox = sandbox;
    this.#logs = logs;
    this.#onRuntimeExit = onRuntimeExit;
    this.#onExtensionExit = onExtensionExit;
  }

  /** Extension output goes to the function's log stream, as extension logs. */
  startExtension(extension: Extension, request: SpawnRequest): void {
    const key = `extension:${extension.name}`;
    const process = new EnvironmentProcess(
      extension.name,
      this.#sandbox,
      request,
      (stream, chunk) => this.#logs.onOutput(`${key}:${stream}`, 'extension', chunk),
      (exit) => this.#onExtensionExit(extension, exit),
    );
    this.extensions.push({ extension, process });
  }

  startRuntime(request: SpawnRequest): void {
    this.runtime = new EnvironmentProcess(
      'runtime',
      this.#sandbox,
      request,
      (stream, chunk) => this.#logs.onOutput(`runtime:${stream}`, 'function', chunk),
      (exit) => this.#onRuntimeExit(exit),
    );
  }

  /** Resident memory of the whole sandbox (Lambda counts extensions too), while the runtime runs. */
  rssKb(): number | undefined {
    if (!this.runtime?.running) return undefined;
    let kb = this.runtime.readMemory().rssKb;
    for (const { process } of this.extensions) kb += process.readMemory().rssKb;
    return kb;
  }

  /**
   * Peak memory of the sandbox. The runtime's is read every time (an invoke's REPORT);
   * the extensions' at most every `extensionPeakMs`: a peak is a high-water mark the kernel
   * keeps, so reading it later loses nothing, and an invoke need not pay a read per extension.
   */
  peakKb(): number {
    const now = performance.now();
    if (now - this.#extensionPeakAt > extensionPeakMs) {
      this.#extensionPeakAt = now;
      let kb = 0;
      for (const { process } of this.extensions) kb += process.readMemory().peakKb;
      this.#extensionPeakKb = Math.max(this.#extensionPeakKb, kb);
    }
    return (this.runtime?.readMemory().peakKb ?? 0) + this.#extensionPeakKb;
  }
}
