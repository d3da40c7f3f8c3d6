/**
 * The invoker: turns an invoke into a lease on an execution environment. Keeps one pool
 * of warm environments per function version and configuration revision, enforces the
 * account's concurrency limit, reaps idle environments, and shuts everything down in
 * order on close.
 */
import { TooManyRequestsException } from '../errors/platform-errors.ts';
import { Environment } from '../environments/environment.ts';
import type { EnvironmentSpec, FunctionLogSink, InvokeRequest, InvokeResult } from '../environments/types.ts';
import type { SandboxSupervisor } from '../environments/sandbox.ts';
import { MemoryMonitor } from '../environments/memory-monitor.ts';
import type { LauncherResolver } from '../runtimes/types.ts';
import type { Logger } from '../logging/logger.ts';
import { FunctionPool } from './function-pool.ts';
import { ProvisionedPool, type ProvisionedStatus } from './provisioned-pool.ts';
import { ScalingLimit } from './scaling-limit.ts';

export interface InvokerOptions {
  sandbox: SandboxSupervisor;
  launcher: LauncherResolver;
  logSink: FunctionLogSink;
  logger: Logger;
  /** Where environments keep their private dirs. */
  workRoot: string;
  initTimeoutMs: number;
  idleTimeoutMs: number;
  /** Account limit and reserved concurrency, consulted on every invoke. */
  concurrency: ConcurrencyLimits;
  /** New environments a function may start per 10 seconds (Lambda: 1,000). */
  scalingPer10Seconds?: number;
  /** The server's telemetry intake URL once it listens (for the Nimbus agent). */
  telemetryEndpoint?: () => string | undefined;
}

export interface ConcurrencyLimits {
  readonly accountLimit: number;
  /** What functions without a reservation share. */
  readonly unreserved: number;
  reservedFor(functionName: string): number | undefined;
}

export class Invoker {
  readonly #options: InvokerOptions;
  readonly #pools = new Map<string, FunctionPool>();
  readonly #provisioned = new Map<string, ProvisionedPool>();
  readonly #scaling: ScalingLimit;
  readonly #memoryMonitor = new MemoryMonitor();
  readonly #reaper: NodeJS.Timeout;
  #inFlight = 0;
  #unreservedInFlight = 0;
  readonly #inFlightByFunction = new Map<string, number>();
  #closed = false;

  constructor(options: InvokerOptions) {
    this.#options = options;
    this.#scaling = new ScalingLimit(options.scalingPer10Seconds ?? 1000);
    const every = Math.max(50, Math.min(30_000, Math.floor(options.idleTimeoutMs / 2)));
    this.#reaper = setInterval(() => this.#reapIdle(), every);
    this.#reaper.unref();
  }

  /** Invocations running right now, across all functions. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Environments alive for a function (all versions). */
  environmentCount(functionName: string): number {
    let n = 0;
    for (const [key, pool] of this.#pools) if (key.startsWith(functionName + ':')) n += pool.size;
    return n;
  }

  /**
   * Admits an invocation under Lambda's concurrency rules or throws its 429: a function
   * with reserved concurrency may run that many at once; the others share what is left
   * of the account limit.
   */
  #admit(functionName: string): () => void {
    if (this.#closed) throw new TooManyRequestsException('Nimbus is shutting down.', 'ConcurrentInvocationLimitExceeded');
    const limits = this.#options.concurrency;
    const reserved = limits.reservedFor(functionName);
    const running = this.#inFlightByFunction.get(functionName) ?? 0;
    if (reserved !== undefined) {
      if (running >= reserved) throw new TooManyRequestsException('Rate Exceeded.', 'ReservedFunctionConcurrentInvocationLimitExceeded');
    } else if (this.#unreservedInFlight >= limits.unreserved || this.#inFlight >= limits.accountLimit) {
      throw new TooManyRequestsException('Rate Exceeded.', 'ConcurrentInvocationLimitExceeded');
    }
    const unreserved = reserved === undefined;
    this.#inFlight++;
    if (unreserved) this.#unreservedInFlight++;
    this.#inFlightByFunction.set(functionName, running + 1);
    return () => {
      this.#inFlight--;
      if (unreserved) this.#unreservedInFlight--;
      const now = (this.#inFlightByFunction.get(functionName) ?? 1) - 1;
      if (now === 0) this.#inFlightByFunction.delete(functionName);
      else this.#inFlightByFunction.set(functionName, now);
    };
  }

  async invoke(spec: EnvironmentSpec, request: InvokeRequest): Promise<InvokeResult> {
    const release = this.#admit(spec.functionName);
    try {
      // Provisioned environments first: initialized ahead, so no cold start.
      const provisioned = this.#provisioned.get(`${spec.functionName}:${spec.version}`)?.takeIdle();
      if (provisioned) return await provisioned.invoke(request);
      const pool = this.#poolFor(spec);
      const lease = await pool.acquire();
      if (!lease.cold) return await lease.env.invoke(request);
      const init = await lease.env.init();
      if (!init.ok) return lease.env.initFailureResult(request, init);
      return await lease.env.invoke(request, init.initDurationMs);
    } finally {
      release();
    }
  }

  #poolFor(spec: EnvironmentSpec): FunctionPool {
    const key = `${spec.functionName}:${spec.version}`;
    const existing = this.#pools.get(key);
    if (existing && existing.revisionId === spec.revisionId) return existing;
    if (existing) void existing.retire();
    const pool: FunctionPool = new FunctionPool(spec.revisionId, () => {
      this.#scaling.take(spec.functionName);
      return this.#createEnvironment(spec, pool);
    });
    this.#pools.set(key, pool);
    return pool;
  }

  /**
   * Keeps `count` environments of this version initialized ahead (provisioned
   * concurrency), replacing any previous provisioning of it.
   */
  provision(spec: EnvironmentSpec, count: number, onStatus: (status: ProvisionedStatus, reason?: string) => void): ProvisionedPool {
    const key = `${spec.functionName}:${spec.version}`;
    void this.#provisioned.get(key)?.close();
    const provisionedSpec: EnvironmentSpec = { ...spec, initializationType: 'provisioned-concurrency' };
    const pool = new ProvisionedPool({
      count,
      create: (onReady, onStopped) => this.#createEnvironment(provisionedSpec, { ready: onReady, stopped: onStopped }),
      onStatus,
    });
    this.#provisioned.set(key, pool);
    return pool;
  }

  provisionedPool(functionName: string, version: string): ProvisionedPool | undefined {
    return this.#provisioned.get(`${functionName}:${version}`);
  }

  async deprovision(functionName: string, version: string): Promise<void> {
    const key = `${functionName}:${version}`;
    const pool = this.#provisioned.get(key);
    this.#provisioned.delete(key);
    await pool?.close();
  }

  #createEnvironment(spec: EnvironmentSpec, pool: Pick<FunctionPool, 'ready' | 'stopped'>): Environment {
    const { sandbox, launcher, logSink, logger, workRoot, initTimeoutMs } = this.#options;
    return new Environment({
      spec,
      sandbox,
      launcher,
      logSink,
      logger,
      workRoot,
      initTimeoutMs,
      telemetryEndpoint: this.#options.telemetryEndpoint?.(),
      memoryMonitor: this.#memoryMonitor,
      onReady: (env) => pool.ready(env),
      onStopped: (env) => pool.stopped(env),
    });
  }

  /** A function was updated or deleted: its environments stop (busy ones when done). */
  async retireFunction(functionName: string): Promise<void> {
    const retiring: Promise<void>[] = [];
    for (const [key, pool] of this.#pools) {
      if (key.startsWith(functionName + ':')) {
        this.#pools.delete(key);
        retiring.push(pool.retire());
      }
    }
    await Promise.all(retiring);
  }

  #reapIdle(): void {
    const cutoff = Date.now() - this.#options.idleTimeoutMs;
    for (const pool of this.#pools.values()) pool.reapIdle(cutoff);
  }

  /** Stops accepting invokes and shuts down every environment. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#reaper);
    const pools = [...this.#pools.values(), ...this.#provisioned.values()];
    this.#pools.clear();
    this.#provisioned.clear();
    await Promise.all(pools.map((pool) => pool.close()));
    this.#memoryMonitor.close();
  }
}
