/**
 * One execution environment: a sandboxed runtime, the external extensions of its layers,
 * the HTTP server of its Runtime, Extensions and Telemetry APIs, and the lifecycle Lambda
 * documents as explicit state machines (lifecycle.ts):
 *
 *   created -> initializing -> ready <-> invoking      (any state -> stopping -> stopped)
 *
 * Init (init-sequence.ts): extensions, then the runtime, then the function; it ends when
 * the runtime and every extension have called `next`. Invoke (invocation-slots.ts): the
 * caller is answered when the runtime answers; the invocation ends, and its slot is free
 * again, once the runtime and the extensions registered for INVOKE have called `next`.
 * On demand an environment has one slot; on Lambda Managed Instances MaxConcurrency.
 * Shutdown (shutdown.ts): SIGTERM and SHUTDOWN with a deadline, then SIGKILL.
 * A crash of the runtime or of an extension, or a timeout, resets (stops) the environment.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StateMachine } from '../lifecycle/state-machine.ts';
import { RuntimeErrorType } from '../errors/runtime-error-types.ts';
import type { LauncherResolver } from '../runtimes/types.ts';
import type { Logger } from '../logging/logger.ts';
import type { EnvironmentSpec, FunctionLogSink, InvokeRequest, InvokeResult, InvokeOutcome } from './types.ts';
import { RuntimeApiServer, accepted, errorReply, type RuntimeApiCore, type RuntimeApiReply, type ResponseTiming } from './runtime-api-server.ts';
import type { SandboxSupervisor } from './sandbox.ts';
import type { MemoryMonitor, MemoryWatched } from './memory-monitor.ts';
import { LogCollector } from './log-collector.ts';
import * as lines from './platform-log-lines.ts';
import { runtimeVersionOf, type TelemetryFacts } from './telemetry-events.ts';
import { environmentTransitions, shutdownReasonFor, type EnvironmentState, type StopReason } from './lifecycle.ts';
import { ExtensionRegistry, type Extension } from './extension-registry.ts';
import { extensionsRoutes } from './extensions-api.ts';
import { parseSubscription, subscriptionClosed, telemetryRoutes, validationErrorType, type SubscriptionApi } from './telemetry-api.ts';
import { TelemetryHub } from './telemetry-hub.ts';
import { sandboxAddresses } from './sandbox-addresses.ts';
import { ProcessGroup, describeExit, type ProcessExit } from './processes.ts';
import { InitSequence, type InitOutcome } from './init-sequence.ts';
import { InvocationSlots } from './invocation-slots.ts';
import { shutdownProcesses } from './shutdown.ts';

export type { EnvironmentState, StopReason } from './lifecycle.ts';
export type { InitOutcome } from './init-sequence.ts';

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
  /** The server's telemetry intake, given to the Nimbus agent when a function has its layer. */
  telemetryEndpoint?: string;
  /** Called each time an invocation slot becomes free (on demand: the environment is ready again). */
  onReady: (env: Environment) => void;
  /** Called once, when the environment has stopped for good. */
  onStopped: (env: Environment) => void;
}

export class Environment implements RuntimeApiCore, MemoryWatched {
  readonly id = randomBytes(16).toString('hex');
  /** This environment's own loopback address (its "localhost" for agent ports). */
  readonly sandboxAddress = sandboxAddresses.acquire();
  readonly spec: EnvironmentSpec;
  readonly logStream: string;
  readonly memoryLimitKb: number;
  readonly #deps: EnvironmentDeps;
  readonly #machine: StateMachine<EnvironmentState>;
  readonly #api: RuntimeApiServer;
  readonly #logs: LogCollector;
  readonly #hub: TelemetryHub;
  readonly #registry: ExtensionRegistry;
  readonly #processes: ProcessGroup;
  readonly #slots: InvocationSlots;
  readonly #facts: TelemetryFacts;
  readonly #managed: boolean;
  readonly #slotCount: number;
  #init: InitSequence | undefined;
  #killedFor: 'oom' | 'stop' | undefined;
  /** Highest memory seen, in KiB (Lambda's Max Memory Used is per environment). */
  #peakKb = 0;
  #stopping: Promise<void> | undefined;
  lastUsedAt = Date.now();

  constructor(deps: EnvironmentDeps) {
    this.#deps = deps;
    const spec = (this.spec = deps.spec);
    this.memoryLimitKb = spec.memoryMb * 1024;
    this.logStream = lines.logStreamName(new Date(), spec.version, this.id);
    this.#managed = spec.initializationType === 'lambda-managed-instances';
    this.#slotCount = this.#managed ? Math.max(1, spec.maxConcurrency) : 1;
    this.#machine = new StateMachine('environment', 'created', environmentTransitions, (from, to) =>
      deps.logger.debug('environment state', { environmentId: this.id, functionName: spec.functionName, from, to }),
    );
    this.#facts = {
      functionName: spec.functionName,
      functionVersion: spec.version,
      functionArn: spec.version === '$LATEST' ? spec.functionArn : `${spec.functionArn}:${spec.version}`,
      initializationType: spec.initializationType,
      managedInstances: this.#managed,
      instanceId: this.id,
      memoryMb: spec.memoryMb,
      runtimeVersion: runtimeVersionOf(spec.runtimeId),
    };
    this.#hub = new TelemetryHub(spec.logFormat, this.sandboxAddress, (name) => this.#registry.busy(name));
    this.#logs = new LogCollector(deps.logSink, spec.functionName, this.logStream, (kind, line, timeMs) => this.#hub.log(kind, line, timeMs));
    this.#registry = new ExtensionRegistry(
      { functionName: spec.functionName, functionVersion: spec.version, handler: spec.handler, accountId: spec.accountId },
      this.#managed,
      {
        onRegistered: () => this.#init?.advance(),
        onReady: (ext) => (this.#init ? this.#init.advance() : this.#slots.extensionReady(ext)),
        onInitError: (ext, type) => this.#extensionFailed('Extension.InitError', `Extension ${ext.name} reported an init error: ${type}`),
        onExitError: (ext, type) => this.#extensionFailed('Extension.ExitError', `Extension ${ext.name} reported an exit error: ${type}`),
      },
    );
    this.#processes = new ProcessGroup(deps.sandbox, this.#logs, (exit) => this.#runtimeExited(exit), (ext, exit) => this.#extensionExited(ext, exit));
    this.#slots = new InvocationSlots({
      spec,
      managed: this.#managed,
      slots: this.#slotCount,
      logs: this.#logs,
      hub: this.#hub,
      registry: this.#registry,
      facts: this.#facts,
      memoryUsedMb: (read) => this.#memoryUsedMb(read),
      busy: (busy) => (busy ? deps.memoryMonitor.watch(this) : deps.memoryMonitor.unwatch(this)),
      slotFreed: () => this.#slotFreed(),
      stop: (reason) => void this.stop(reason),
    });
    this.#api = new RuntimeApiServer(this, [extensionsRoutes(this.#registry), telemetryRoutes(this)]);
  }

  get state(): EnvironmentState {
    return this.#machine.state;
  }

  /** Invocations this environment could take now. */
  get freeSlots(): number {
    const s = this.#machine.state;
    return s === 'ready' || s === 'invoking' ? this.#slotCount - this.#slots.inFlight : 0;
  }

  /** Invocations whose caller has its answer but whose post-runtime phase is not over. */
  get finishing(): number {
    return this.#slots.finishing;
  }

  /** Slots about to be free: post-runtime phases ending, and managed-instance slots opening after Init. */
  get slotsSoonFree(): number {
    const s = this.#machine.state;
    return this.#slots.finishing + (s === 'created' || s === 'initializing' ? this.#slotCount - 1 : 0);
  }

  /** Invocations in flight (taken slots). */
  get inFlight(): number {
    return this.#slots.inFlight;
  }

  readRssKb(): number | undefined {
    return this.#processes.rssKb();
  }

  // ---- Init ----------------------------------------------------------------------------

  /** Runs Init; resolves when the runtime and every extension have called `next`, or on failure. */
  init(): Promise<InitOutcome> {
    this.#machine.transition('initializing');
    const { spec, sandbox, launcher, workRoot, initTimeoutMs } = this.#deps;
    this.#init = new InitSequence({
      spec,
      sandbox,
      launcher,
      logs: this.#logs,
      hub: this.#hub,
      registry: this.#registry,
      facts: this.#facts,
      processes: this.#processes,
      root: path.join(workRoot, this.id),
      logStream: this.logStream,
      initTimeoutMs,
      sandboxAddress: this.sandboxAddress,
      telemetryEndpoint: this.#deps.telemetryEndpoint,
      listen: () => this.#api.listen(),
      onComplete: () => {
        this.#init = undefined;
        this.#machine.transition('ready');
        // Managed instances: the other slots open once Init is over.
        for (let i = 1; i < this.#slotCount; i++) this.#deps.onReady(this);
      },
      onFailure: () => {
        this.#init = undefined;
        void this.stop('failure');
      },
    });
    return this.#init.outcome;
  }

  /**
   * The invoke that triggered a failed Init gets the init error as its result, with
   * START, END and a REPORT carrying the error type, as Lambda logs it.
   */
  initFailureResult(request: InvokeRequest, failure: Extract<InitOutcome, { ok: false }>): InvokeResult {
    const { requestId } = request;
    this.#logs.beginInvoke(requestId, request.wantLogTail);
    this.#logs.platform(lines.startLine(requestId, this.spec.version), requestId);
    this.#logs.platform(lines.endLine(requestId), requestId);
    const durationMs = failure.initDurationMs;
    const billed = lines.billedDurationMs(durationMs);
    const report = { requestId, durationMs, billedDurationMs: billed, memorySizeMb: this.spec.memoryMb, maxMemoryUsedMb: 0 };
    this.#logs.platform(lines.reportLine({ ...report, status: failure.status, errorType: failure.errorType }), requestId);
    const logTail = this.#logs.endInvoke(requestId);
    const outcome: InvokeOutcome =
      failure.status === 'timeout'
        ? { kind: 'platform-error', errorType: failure.errorType, errorMessage: failure.errorMessage, payload: failure.payload }
        : { kind: 'function-error', errorType: failure.errorType, payload: failure.payload };
    return { outcome, requestId, durationMs, billedDurationMs: billed, maxMemoryUsedMb: 0, logTail };
  }

  // ---- Invoke --------------------------------------------------------------------------

  /** Delivers one invocation; the environment must have a free slot. */
  invoke(request: InvokeRequest, initDurationMs?: number): Promise<InvokeResult> {
    if (this.freeSlots <= 0) return Promise.reject(new Error(`environment ${this.id} has no free slot (${this.state})`));
    if (this.#machine.state === 'ready') this.#machine.transition('invoking');
    this.lastUsedAt = Date.now();
    return this.#slots.start(request, initDurationMs);
  }

  #slotFreed(): void {
    const state = this.#machine.state;
    if (state !== 'invoking' && state !== 'ready') return;
    if (this.#slots.inFlight === 0 && state === 'invoking') this.#machine.transition('ready');
    this.lastUsedAt = Date.now();
    this.#deps.onReady(this);
  }

  // ---- Runtime API core -------------------------------------------------------------

  next(res: ServerResponse): RuntimeApiReply | undefined {
    const state = this.#machine.state;
    if (state === 'stopping' || state === 'stopped') {
      res.destroy();
      return undefined;
    }
    if (this.#init?.phase === 'runtime') {
      this.#slots.parkFirst(res);
      this.#init.runtimeInitialized();
      return undefined;
    }
    if (state === 'created') return errorReply(403, 'InvalidStateTransition', 'State transition from Created to Ready failed for runtime.');
    return this.#slots.next(res, state === 'invoking' ? 'Running' : 'Ready');
  }

  response(requestId: string, body: Buffer, contentType: string | undefined, timing: ResponseTiming): RuntimeApiReply {
    return this.#slots.response(requestId, body, contentType, timing);
  }

  responseStream(requestId: string, req: IncomingMessage, contentType: string | undefined, startedAt: number): Promise<RuntimeApiReply> {
    return this.#slots.responseStream(requestId, req, contentType, startedAt);
  }

  responseTooLarge(requestId: string, timing: ResponseTiming): RuntimeApiReply {
    return this.#slots.responseTooLarge(requestId, timing);
  }

  error(requestId: string, body: Buffer, errorType: string | undefined, timing: ResponseTiming): RuntimeApiReply {
    return this.#slots.error(requestId, body, errorType ?? errorTypeOf(body) ?? 'Unhandled', timing);
  }

  initError(body: Buffer, errorType: string | undefined): RuntimeApiReply {
    if (this.#init?.phase !== 'runtime') {
      return errorReply(403, 'InvalidStateTransition', `State transition from ${this.#machine.state} to InitError failed for runtime.`);
    }
    const type = errorTypeOf(body) ?? errorType ?? RuntimeErrorType.Unknown;
    this.#init.fail('error', type, errorMessageOf(body) ?? type, body);
    return accepted;
  }

  // ---- Telemetry API core -----------------------------------------------------------

  subscribe(api: SubscriptionApi, extensionId: string, body: Buffer): RuntimeApiReply {
    const ext = this.#registry.get(extensionId);
    if (!ext) return errorReply(403, 'Extension.UnknownExtensionIdentifier', `Unknown extension ${extensionId}`);
    const sub = parseSubscription(api, body, this.#managed);
    if (!('api' in sub)) return sub;
    const existing = this.#hub.subscribedApi(ext.name);
    if (existing === api) return errorReply(400, validationErrorType(api), `Extension ${ext.name} is already subscribed`);
    if (existing) return errorReply(400, validationErrorType(api), 'An extension cannot subscribe to both the Telemetry API and the Logs API');
    if (!this.#hub.open) return subscriptionClosed(api);
    this.#hub.subscribe(ext.name, sub);
    return { status: 200, body: 'OK' };
  }

  // ---- Failures -----------------------------------------------------------------------

  /** init/error or exit/error: Init fails, or the invocations in flight do and the environment resets. */
  #extensionFailed(errorType: string, message: string): void {
    if (this.#init) return this.#init.fail('error', errorType, message);
    this.#slots.failAll(errorType, (id) => `RequestId: ${id} Error: ${message}`);
    void this.stop('failure');
  }

  #extensionExited(ext: Extension, exit: ProcessExit): void {
    const state = this.#machine.state;
    if (state === 'stopping' || state === 'stopped') {
      // Exited after SHUTDOWN, or killed at the deadline.
      if (ext.state === 'running') ext.machine.transition(exit.code === 0 ? 'exited' : 'shutdown-failed');
      return;
    }
    const message = `Extension ${ext.name} exited with error: ${exit.code === 0 ? 'exit code 0' : describeExit(exit)}`;
    this.#logs.platform(`${message}\n${RuntimeErrorType.ExtensionCrash}`);
    this.#extensionFailed(RuntimeErrorType.ExtensionCrash, message);
  }

  #runtimeExited(exit: ProcessExit): void {
    const state = this.#machine.state;
    if (state === 'stopping' || state === 'stopped') return;
    const how = describeExit(exit);
    const oom = this.#killedFor === 'oom' || this.#logs.sawOutOfMemory || exit.code === 134;
    const errorType = oom ? RuntimeErrorType.OutOfMemory : RuntimeErrorType.ExitError;
    if (this.#init) {
      const errorMessage = `Runtime exited with error: ${how}`;
      this.#logs.platform(`RequestId: undefined Error: ${errorMessage}\n${errorType}`);
      return this.#init.fail('error', errorType, errorMessage);
    }
    this.#slots.failAll(errorType, (id) => `RequestId: ${id} Error: Runtime exited with error: ${oom ? 'signal: killed' : how}`, true);
    void this.stop('failure');
  }

  /** Past MemorySize: Lambda kills the runtime and reports Runtime.OutOfMemory. */
  overMemoryLimit(): void {
    if (this.#slots.inFlight === 0 || this.#killedFor) return;
    this.#killedFor = 'oom';
    this.#processes.runtime?.kill();
  }

  #memoryUsedMb(read: boolean): number {
    // Past an OOM kill the tree is gone: Lambda reports the whole MemorySize as used.
    if (this.#killedFor === 'oom') this.#peakKb = this.memoryLimitKb;
    else if (read) this.#peakKb = Math.max(this.#peakKb, this.#processes.peakKb());
    return Math.min(this.spec.memoryMb, Math.max(1, Math.round(this.#peakKb / 1024)));
  }

  // ---- Shutdown -----------------------------------------------------------------------

  /**
   * Shuts the environment down: in-flight invocations end, then Lambda's Shutdown phase
   * (shutdown.ts) with the reason extensions see in SHUTDOWN.
   */
  stop(reason: StopReason): Promise<void> {
    if (!this.#stopping) {
      // Set before #stop runs: what it ends (Init, invocations) may ask to stop again.
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#stopping = promise;
      this.#stop(reason).then(resolve, (err: Error) => {
        this.#deps.logger.error('environment stop failed', { environmentId: this.id, error: err.message });
        resolve();
      });
    }
    return this.#stopping;
  }

  async #stop(reason: StopReason): Promise<void> {
    this.#machine.transition('stopping');
    this.#deps.logger.debug('environment stopping', { environmentId: this.id, functionName: this.spec.functionName, reason });
    this.#slots.failAll(RuntimeErrorType.ExitError, (id) => `RequestId: ${id} Error: Runtime exited with error: signal: killed`);
    this.#init?.fail('error', RuntimeErrorType.ExitError, 'Environment stopped during Init');
    this.#deps.memoryMonitor.unwatch(this);
    this.#registry.closeRegistration();
    this.#killedFor ??= 'stop';
    try {
      await shutdownProcesses({
        runtime: this.#processes.runtime,
        extensions: this.#processes.extensions,
        registry: this.#registry,
        hub: this.#hub,
        reason: shutdownReasonFor(reason),
      });
    } finally {
      this.#slots.destroyParked();
      this.#registry.destroyParked();
      this.#logs.flush();
      this.#hub.close();
      await this.#api.close();
      await rm(path.join(this.#deps.workRoot, this.id), { recursive: true, force: true });
      sandboxAddresses.release(this.sandboxAddress);
      this.#machine.transition('stopped');
      this.#deps.onStopped(this);
    }
  }
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
