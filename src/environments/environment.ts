/**
 * One execution environment: a sandboxed runtime process tree, its Runtime API server,
 * and the lifecycle Lambda documents (Init, Invoke, Shutdown) as an explicit state
 * machine. One invocation at a time (on-demand mode).
 *
 *   created -> initializing -> ready <-> invoking -> finishing -> ready ...
 *   any state -> stopping -> stopped
 *
 * `ready` means a runtime's `/next` long-poll is parked here and an invoke can be
 * delivered at once; `finishing` means the runtime has answered and the environment is
 * waiting for its next `/next`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, access, constants } from 'node:fs/promises';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { ServerResponse } from 'node:http';
import { StateMachine, type TransitionTable } from '../lifecycle/state-machine.ts';
import { RuntimeErrorType } from '../errors/runtime-error-types.ts';
import type { LauncherResolver } from '../runtimes/types.ts';
import type { Logger } from '../logging/logger.ts';
import type { EnvironmentSpec, FunctionLogSink, InvokeRequest, InvokeResult, InvokeOutcome } from './types.ts';
import { RuntimeApiServer, accepted, errorReply, type RuntimeApiCore, type RuntimeApiReply } from './runtime-api-server.ts';
import type { SandboxSupervisor, HostDirs } from './sandbox.ts';
import { buildLambdaEnvironment } from './lambda-env-vars.ts';
import { TreeMemoryReader } from './process-tree.ts';
import type { MemoryMonitor, MemoryWatched } from './memory-monitor.ts';
import { LogCollector } from './log-collector.ts';
import * as lines from './platform-log-lines.ts';

export type EnvironmentState = 'created' | 'initializing' | 'ready' | 'invoking' | 'finishing' | 'stopping' | 'stopped';

const transitions: TransitionTable<EnvironmentState> = {
  created: ['initializing', 'stopping'],
  initializing: ['ready', 'stopping'],
  ready: ['invoking', 'stopping'],
  invoking: ['finishing', 'stopping'],
  finishing: ['ready', 'stopping'],
  stopping: ['stopped'],
  stopped: [],
};

export type InitOutcome =
  | { ok: true; initDurationMs: number }
  | { ok: false; initDurationMs: number; errorType: string; errorMessage: string; payload: Buffer; status: 'error' | 'timeout' };

export type StopReason = 'spindown' | 'timeout' | 'failure' | 'shutdown';

export interface EnvironmentDeps {
  spec: EnvironmentSpec;
  sandbox: SandboxSupervisor;
  launcher: LauncherResolver;
  logSink: FunctionLogSink;
  logger: Logger;
  memoryMonitor: MemoryMonitor;
  /** Parent of this environment's private dirs (its /tmp and /opt). */
  workRoot: string;
  initTimeoutMs: number;
  /** Called when the environment can take an invoke (its `/next` is parked). */
  onReady: (env: Environment) => void;
  /** Called once, when the environment has stopped for good. */
  onStopped: (env: Environment) => void;
}

interface CurrentInvoke {
  request: InvokeRequest;
  startedAt: number;
  initDurationMs?: number;
  timer: NodeJS.Timeout;
  resolve: (result: InvokeResult) => void;
}

const bootstrapCandidates = (taskRoot: string, optDir: string): string[] => [path.join(taskRoot, 'bootstrap'), path.join(optDir, 'bootstrap')];

export class Environment implements RuntimeApiCore, MemoryWatched {
  readonly id = randomBytes(16).toString('hex');
  readonly spec: EnvironmentSpec;
  readonly logStream: string;
  readonly memoryLimitKb: number;
  readonly #deps: EnvironmentDeps;
  readonly #machine: StateMachine<EnvironmentState>;
  readonly #api: RuntimeApiServer;
  readonly #logs: LogCollector;
  #child: ChildProcess | undefined;
  #dirs: HostDirs | undefined;
  #parkedNext: ServerResponse | undefined;
  #current: CurrentInvoke | undefined;
  #initStartedAt = 0;
  #initResolve: ((outcome: InitOutcome) => void) | undefined;
  #initTimer: NodeJS.Timeout | undefined;
  #killedFor: 'oom' | 'timeout' | 'stop' | undefined;
  /** Highest tree memory seen, in KiB (Lambda's Max Memory Used is per environment). */
  #peakKb = 0;
  #memory: TreeMemoryReader | undefined;
  #exited: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  lastUsedAt = Date.now();

  constructor(deps: EnvironmentDeps) {
    this.#deps = deps;
    this.spec = deps.spec;
    this.memoryLimitKb = deps.spec.memoryMb * 1024;
    this.logStream = lines.logStreamName(new Date(), deps.spec.version, this.id);
    this.#machine = new StateMachine('environment', 'created', transitions, (from, to) =>
      deps.logger.debug('environment state', { environmentId: this.id, functionName: this.spec.functionName, from, to }),
    );
    this.#api = new RuntimeApiServer(this);
    this.#logs = new LogCollector(deps.logSink, deps.spec.functionName, this.logStream);
  }

  get state(): EnvironmentState {
    return this.#machine.state;
  }

  readRssKb(): number | undefined {
    return this.#memory?.read().rssKb;
  }

  /** Runs Init: starts the runtime and waits for its first `/next` (or its failure). */
  async init(): Promise<InitOutcome> {
    this.#machine.transition('initializing');
    this.#initStartedAt = performance.now();
    const outcome = new Promise<InitOutcome>((resolve) => (this.#initResolve = resolve));
    try {
      await this.#start();
    } catch (err) {
      const failure = err as Error & { errorType?: string };
      this.#finishInit({
        ok: false,
        initDurationMs: this.#sinceInit(),
        status: 'error',
        errorType: failure.errorType ?? RuntimeErrorType.Unknown,
        errorMessage: failure.message,
        payload: Buffer.from(JSON.stringify({ errorType: failure.errorType ?? RuntimeErrorType.Unknown, errorMessage: failure.message })),
      });
    }
    return outcome;
  }

  async #start(): Promise<void> {
    const { spec, sandbox, launcher, workRoot } = this.#deps;
    const root = path.join(workRoot, this.id);
    this.#dirs = { codeDir: spec.codeDir, optDir: spec.layersDir ?? path.join(root, 'opt'), tmpDir: path.join(root, 'tmp') };
    await Promise.all([spec.layersDir ? undefined : mkdir(this.#dirs.optDir, { recursive: true }), mkdir(this.#dirs.tmpDir, { recursive: true })]);
    const runtimeApi = await this.#api.listen();
    const seen = sandbox.paths(this.#dirs);

    let command: string;
    let args: string[] = [];
    let launcherEnv: Record<string, string> = {};
    let readOnlyPaths: string[] = [];
    if (spec.runtimeId.startsWith('provided')) {
      command = await this.#findBootstrap(seen.taskRoot, seen.optDir);
    } else {
      const plan = await launcher.launchPlan(spec.runtimeId, { taskRoot: seen.taskRoot, optDir: seen.optDir, memoryMb: spec.memoryMb });
      command = plan.command;
      args = plan.args;
      launcherEnv = plan.env;
      readOnlyPaths = plan.readOnlyPaths;
    }
    const env = buildLambdaEnvironment(spec, seen, runtimeApi, this.logStream, launcherEnv);
    const child = sandbox.spawn({ command, args, env, dirs: this.#dirs, readOnlyPaths });
    this.#child = child;
    if (child.pid !== undefined) this.#memory = new TreeMemoryReader(child.pid);
    child.stdout!.on('data', (chunk: Buffer) => this.#logs.onOutput('stdout', chunk));
    child.stderr!.on('data', (chunk: Buffer) => this.#logs.onOutput('stderr', chunk));
    this.#exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        this.#onExit(null, null, err);
        resolve();
      });
      child.once('exit', (code, signal) => {
        this.#onExit(code, signal);
        resolve();
      });
    });
    this.#initTimer = setTimeout(() => this.#initTimedOut(), this.#deps.initTimeoutMs);
  }

  /** Custom runtimes: `bootstrap` in the code, then in /opt, as Lambda looks for it. */
  async #findBootstrap(taskRoot: string, optDir: string): Promise<string> {
    const hostCandidates = bootstrapCandidates(this.#dirs!.codeDir, this.#dirs!.optDir);
    const seenCandidates = bootstrapCandidates(taskRoot, optDir);
    for (let i = 0; i < hostCandidates.length; i++) {
      try {
        await access(hostCandidates[i]!, constants.X_OK);
        return seenCandidates[i]!;
      } catch {
        // try the next one
      }
    }
    const err = new Error(`Couldn't find valid bootstrap(s): [${seenCandidates.join(' ')}]`) as Error & { errorType: string };
    err.errorType = RuntimeErrorType.InvalidEntrypoint;
    throw err;
  }

  #sinceInit(): number {
    return performance.now() - this.#initStartedAt;
  }

  #finishInit(outcome: InitOutcome): void {
    if (this.#initTimer) clearTimeout(this.#initTimer);
    this.#initTimer = undefined;
    const resolve = this.#initResolve;
    this.#initResolve = undefined;
    if (!resolve) return;
    if (!outcome.ok) {
      this.#logs.platform(lines.initReportLine(outcome.initDurationMs, 'init', outcome.status, outcome.errorType));
      void this.stop('failure');
    }
    resolve(outcome);
  }

  #initTimedOut(): void {
    const ms = this.#deps.initTimeoutMs;
    const message = `Init timed out after ${(ms / 1000).toFixed(2)} seconds`;
    this.#finishInit({
      ok: false,
      initDurationMs: this.#sinceInit(),
      status: 'timeout',
      errorType: RuntimeErrorType.SandboxTimeout,
      errorMessage: message,
      payload: Buffer.from(JSON.stringify({ errorType: RuntimeErrorType.SandboxTimeout, errorMessage: message })),
    });
  }

  /** Delivers one invocation. The environment must be `ready`. */
  invoke(request: InvokeRequest, initDurationMs?: number): Promise<InvokeResult> {
    this.#machine.transition('invoking');
    this.lastUsedAt = Date.now();
    const next = this.#parkedNext!;
    this.#parkedNext = undefined;
    const { spec } = this;
    this.#logs.beginInvoke(request.requestId, request.wantLogTail);
    this.#logs.platform(lines.startLine(request.requestId, spec.version));
    const deadlineMs = Date.now() + spec.timeoutSeconds * 1000;
    return new Promise<InvokeResult>((resolve) => {
      this.#current = {
        request,
        startedAt: performance.now(),
        initDurationMs,
        resolve,
        timer: setTimeout(() => this.#invokeTimedOut(), spec.timeoutSeconds * 1000),
      };
      this.#deps.memoryMonitor.watch(this);
      const headers: Record<string, string | number> = {
        'Content-Type': 'application/json',
        'Content-Length': request.payload.length,
        'Lambda-Runtime-Aws-Request-Id': request.requestId,
        'Lambda-Runtime-Deadline-Ms': String(deadlineMs),
        'Lambda-Runtime-Invoked-Function-Arn': request.invokedFunctionArn,
        'Lambda-Runtime-Trace-Id': request.traceId,
      };
      if (request.clientContext) headers['Lambda-Runtime-Client-Context'] = request.clientContext;
      next.writeHead(200, headers);
      next.end(request.payload);
    });
  }

  // ---- Runtime API core -------------------------------------------------------------

  next(res: ServerResponse): RuntimeApiReply | undefined {
    const state = this.#machine.state;
    if (state === 'initializing' && this.#initResolve) {
      this.#parkedNext = res;
      this.#machine.transition('ready');
      this.#finishInit({ ok: true, initDurationMs: this.#sinceInit() });
      return undefined;
    }
    if (state === 'finishing') {
      this.#parkedNext = res;
      this.#machine.transition('ready');
      this.lastUsedAt = Date.now();
      this.#deps.onReady(this);
      return undefined;
    }
    if (state === 'stopping' || state === 'stopped') {
      res.destroy();
      return undefined;
    }
    return errorReply(403, 'InvalidStateTransition', `State transition from ${state === 'ready' ? 'Ready' : 'Running'} to Ready failed for runtime. Error: State transition is not allowed`);
  }

  response(requestId: string, body: Buffer, contentType: string | undefined): RuntimeApiReply {
    const refusal = this.#checkRequestId(requestId);
    if (refusal) return refusal;
    this.#complete({ kind: 'success', payload: body, contentType });
    return accepted;
  }

  responseTooLarge(requestId: string): RuntimeApiReply {
    const refusal = this.#checkRequestId(requestId);
    if (refusal) return refusal;
    const errorMessage = 'Response payload size exceeded maximum allowed payload size (6291556 bytes).';
    const errorType = RuntimeErrorType.ResponseSizeTooLarge;
    this.#complete({ kind: 'function-error', errorType, payload: Buffer.from(JSON.stringify({ errorMessage, errorType })) });
    return errorReply(413, 'RequestEntityTooLarge', 'Exceeded maximum allowed payload size (6291556 bytes).');
  }

  error(requestId: string, body: Buffer, errorType: string | undefined): RuntimeApiReply {
    const refusal = this.#checkRequestId(requestId);
    if (refusal) return refusal;
    this.#complete({ kind: 'function-error', payload: body, errorType: errorType ?? errorTypeOf(body) ?? 'Unhandled' });
    return accepted;
  }

  initError(body: Buffer, errorType: string | undefined): RuntimeApiReply {
    if (this.#machine.state !== 'initializing' || !this.#initResolve) {
      return errorReply(403, 'InvalidStateTransition', `State transition from ${this.#machine.state} to InitError failed for runtime.`);
    }
    const type = errorTypeOf(body) ?? errorType ?? RuntimeErrorType.Unknown;
    this.#finishInit({
      ok: false,
      initDurationMs: this.#sinceInit(),
      status: 'error',
      errorType: type,
      errorMessage: errorMessageOf(body) ?? type,
      payload: body,
    });
    return accepted;
  }

  #checkRequestId(requestId: string): RuntimeApiReply | undefined {
    if (this.#machine.state !== 'invoking' || this.#current?.request.requestId !== requestId) {
      return errorReply(400, 'InvalidRequestID', 'Invalid request ID');
    }
    return undefined;
  }

  // ---- Ending an invocation ------------------------------------------------------------

  /** The runtime answered: the caller gets the result; the environment awaits `/next`. */
  #complete(outcome: InvokeOutcome): void {
    const current = this.#current!;
    const durationMs = performance.now() - current.startedAt;
    this.#machine.transition('finishing');
    this.#endInvoke(current, outcome, durationMs);
  }

  #invokeTimedOut(): void {
    const current = this.#current;
    if (!current || this.#machine.state !== 'invoking') return;
    const durationMs = performance.now() - current.startedAt;
    const { requestId } = current.request;
    const errorMessage = `RequestId: ${requestId} Error: Task timed out after ${this.spec.timeoutSeconds.toFixed(2)} seconds`;
    this.#logs.platform(lines.timeoutLine(requestId, this.spec.timeoutSeconds, new Date()));
    this.#killedFor = 'timeout';
    this.#endInvoke(current, platformError(RuntimeErrorType.SandboxTimeout, errorMessage), durationMs, 'timeout');
    void this.stop('timeout');
  }

  overMemoryLimit(): void {
    if (this.#machine.state !== 'invoking' || this.#killedFor) return;
    this.#killedFor = 'oom';
    if (this.#child) this.#deps.sandbox.kill(this.#child, 'SIGKILL');
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void {
    const how = spawnError ? spawnError.message : signal ? `signal: ${signalName(signal)}` : `exit status ${code}`;
    const oom = this.#killedFor === 'oom' || this.#logs.sawOutOfMemory || code === 134;
    const errorType = oom ? RuntimeErrorType.OutOfMemory : RuntimeErrorType.ExitError;
    const state = this.#machine.state;
    if (state === 'initializing' && this.#initResolve) {
      const errorMessage = `Runtime exited with error: ${how}`;
      this.#logs.platform(`RequestId: undefined Error: ${errorMessage}\n${errorType}`);
      this.#finishInit({
        ok: false,
        initDurationMs: this.#sinceInit(),
        status: 'error',
        errorType,
        errorMessage,
        payload: Buffer.from(JSON.stringify({ errorType, errorMessage })),
      });
      return;
    }
    if (state === 'invoking' && this.#current) {
      const current = this.#current;
      const durationMs = performance.now() - current.startedAt;
      const errorMessage = `RequestId: ${current.request.requestId} Error: Runtime exited with error: ${oom ? 'signal: killed' : how}`;
      this.#logs.platform(`${errorMessage}\n${errorType}`);
      this.#endInvoke(current, platformError(errorType, errorMessage), durationMs, 'error');
    }
    if (state !== 'stopping' && state !== 'stopped') void this.stop('failure');
  }

  /**
   * Writes END and REPORT and answers the caller. Deferred by one turn of the event loop
   * so that output the runtime wrote before answering (already in the pipe) is read
   * first and lands before END, as on Lambda.
   */
  #endInvoke(current: CurrentInvoke, outcome: InvokeOutcome, durationMs: number, status?: 'timeout' | 'error'): void {
    clearTimeout(current.timer);
    this.#deps.memoryMonitor.unwatch(this);
    this.#current = undefined;
    const { requestId } = current.request;
    // Read while the process still exists (a timeout kill follows). Past an OOM kill the
    // tree is gone: Lambda reports the whole MemorySize as used.
    const peakKb = this.#killedFor === 'oom' ? this.memoryLimitKb : Math.max(this.#peakKb, this.#memory?.read().peakKb ?? 0);
    this.#peakKb = peakKb;
    const billed = lines.billedDurationMs(durationMs);
    const maxMemoryUsedMb = Math.min(this.spec.memoryMb, Math.max(1, Math.round(peakKb / 1024)));
    const result: InvokeResult = { outcome, requestId, durationMs, billedDurationMs: billed, maxMemoryUsedMb, initDurationMs: current.initDurationMs };
    const wantTail = current.request.wantLogTail;
    // Without a log tail to return, the caller need not wait for END and REPORT.
    if (!wantTail) current.resolve(result);
    setImmediate(() => {
      this.#logs.platform(lines.endLine(requestId));
      this.#logs.platform(
        lines.reportLine({
          requestId,
          durationMs,
          billedDurationMs: billed,
          memorySizeMb: this.spec.memoryMb,
          maxMemoryUsedMb,
          initDurationMs: current.initDurationMs,
          status,
          errorType: status ? (outcome.kind === 'platform-error' ? outcome.errorType : undefined) : undefined,
        }),
      );
      const logTail = this.#logs.endInvoke();
      if (wantTail) current.resolve({ ...result, logTail });
    });
  }

  /**
   * The invoke that triggered a failed Init gets the init error as its result, with
   * START, END and a REPORT carrying the error type, as Lambda logs it.
   */
  initFailureResult(request: InvokeRequest, failure: Extract<InitOutcome, { ok: false }>): InvokeResult {
    const { requestId } = request;
    this.#logs.beginInvoke(requestId, request.wantLogTail);
    this.#logs.platform(lines.startLine(requestId, this.spec.version));
    this.#logs.platform(lines.endLine(requestId));
    const durationMs = failure.initDurationMs;
    const billed = lines.billedDurationMs(durationMs);
    this.#logs.platform(
      lines.reportLine({
        requestId,
        durationMs,
        billedDurationMs: billed,
        memorySizeMb: this.spec.memoryMb,
        maxMemoryUsedMb: 0,
        status: failure.status,
        errorType: failure.errorType,
      }),
    );
    const logTail = this.#logs.endInvoke();
    const outcome: InvokeOutcome =
      failure.status === 'timeout'
        ? { kind: 'platform-error', errorType: failure.errorType, errorMessage: failure.errorMessage, payload: failure.payload }
        : { kind: 'function-error', errorType: failure.errorType, payload: failure.payload };
    return { outcome, requestId, durationMs, billedDurationMs: billed, maxMemoryUsedMb: 0, logTail };
  }

  // ---- Shutdown -----------------------------------------------------------------------

  /**
   * Shuts the environment down. Without extensions Lambda gives the runtime no grace
   * period (0 ms), so the tree is killed at once.
   */
  stop(reason: StopReason): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = this.#stop(reason);
    return this.#stopping;
  }

  async #stop(reason: StopReason): Promise<void> {
    this.#machine.transition('stopping');
    this.#deps.logger.debug('environment stopping', { environmentId: this.id, functionName: this.spec.functionName, reason });
    if (this.#initTimer) clearTimeout(this.#initTimer);
    this.#deps.memoryMonitor.unwatch(this);
    const current = this.#current;
    if (current) {
      const errorMessage = `RequestId: ${current.request.requestId} Error: Runtime exited with error: signal: killed`;
      this.#endInvoke(current, platformError(RuntimeErrorType.ExitError, errorMessage), performance.now() - current.startedAt, 'error');
    }
    if (this.#initResolve) {
      this.#finishInit({
        ok: false,
        initDurationMs: this.#sinceInit(),
        status: 'error',
        errorType: RuntimeErrorType.ExitError,
        errorMessage: 'Environment stopped during Init',
        payload: Buffer.from(JSON.stringify({ errorType: RuntimeErrorType.ExitError, errorMessage: 'Environment stopped during Init' })),
      });
    }
    this.#killedFor ??= 'stop';
    if (this.#child) this.#deps.sandbox.kill(this.#child, 'SIGKILL');
    await this.#exited;
    this.#parkedNext?.destroy();
    this.#parkedNext = undefined;
    this.#logs.flush();
    this.#memory?.close();
    await this.#api.close();
    await rm(path.join(this.#deps.workRoot, this.id), { recursive: true, force: true });
    this.#machine.transition('stopped');
    this.#deps.onStopped(this);
  }
}

function platformError(errorType: string, errorMessage: string): InvokeOutcome {
  return { kind: 'platform-error', errorType, errorMessage, payload: Buffer.from(JSON.stringify({ errorType, errorMessage })) };
}

function parseJsonObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function errorTypeOf(body: Buffer): string | undefined {
  const t = parseJsonObject(body)?.errorType;
  return typeof t === 'string' ? t : undefined;
}

function errorMessageOf(body: Buffer): string | undefined {
  const m = parseJsonObject(body)?.errorMessage;
  return typeof m === 'string' ? m : undefined;
}

/** Go's spelling of signals, which Lambda's messages use ("signal: killed"). */
function signalName(signal: NodeJS.Signals): string {
  const names: Partial<Record<NodeJS.Signals, string>> = {
    SIGKILL: 'killed',
    SIGTERM: 'terminated',
    SIGSEGV: 'segmentation fault',
    SIGABRT: 'aborted',
    SIGINT: 'interrupt',
  };
  return names[signal] ?? signal;
}
