/**
 * Datadog's `aws.lambda.enhanced.*` metrics (datadog-extension-notes.md §3), from the
 * INVOKE events, the platform's Telemetry API records and the sandbox's /proc usage. All
 * are distributions with one sample, tagged like Datadog's (function, region, account,
 * version, memory, runtime, architecture, cold start) plus the configured tags, and carry
 * the request id they belong to (outside the tags: no cardinality).
 *
 * Managed instances differ as Datadog's extension has them: invocations come from
 * `platform.start` (the extension gets no INVOKE), there is no runtimeDone (the report's
 * `responseLatency` span stands in), no billing or memory figures, no cold_start tag, and
 * the fd/threads/tmp figures are reported at SHUTDOWN instead of per invocation.
 */
import type { AgentResource, MetricPoint, TelemetryEvent, TelemetrySink } from '../model.ts';
import { estimatedCost } from './cost.ts';
import { cpuBetween, type ProcUsage, type UsageSnapshot } from './proc-usage.ts';

export interface EnhancedMetricsOptions {
  sink: TelemetrySink;
  resource: AgentResource;
  /** The configuration's tags (`service`, `env`, `version`, DD_TAGS). */
  tags: string[];
  managedInstances: boolean;
  /** Usage metrics are left out without it (DD_LAMBDA_PROC_ENHANCED_METRICS=false). */
  proc?: ProcUsage | undefined;
  /** Epoch milliseconds. */
  now?: () => number;
  /**
   * How often the peaks of fd_use, threads_use and tmp_used are sampled while an
   * invocation runs (100 ms; 0: at INVOKE and report only). Datadog samples /tmp every
   * 10 ms; every sample costs the sandbox some CPU, which the function shares.
   */
  peakSampleIntervalMs?: number;
  /**
   * At most one invocation per this many ms has its usage metrics (cpu, network, fd,
   * threads, tmp) measured (1,000; 0: every invocation). See `invoked`.
   */
  usageEveryMs?: number;
}

type Obj = Record<string, unknown>;

interface RequestState {
  coldStart: boolean;
  invoked: boolean;
  runtimeDone: boolean;
  runtimeDurationMs?: number;
  before?: Promise<UsageSnapshot | undefined>;
  peakFd?: number;
  peakThreads?: number;
  peakTmpUsed?: number;
}

const prefix = 'aws.lambda.enhanced.';
const maxOpen = 1000;
const maxOomIds = 1000;

const obj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const max = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.max(a, b));

export class EnhancedMetrics {
  readonly #sink: TelemetrySink;
  readonly #resource: AgentResource;
  readonly #managed: boolean;
  readonly #proc: ProcUsage | undefined;
  readonly #usageEveryMs: number;
  #lastUsageAt = -Infinity;
  readonly #now: () => number;
  readonly #sampleMs: number;
  readonly #configTags: string[];
  /** Tags without cold_start (managed instances), with cold_start:false, with cold_start:true. */
  #tagsPlain: string[] = [];
  #tagsWarm: string[] = [];
  #tagsCold: string[] = [];
  /** The runtime the tag sets were built for. */
  #builtFor = '';
  readonly #open = new Map<string, RequestState>();
  readonly #oomSeen = new Set<string>();
  readonly #pending = new Set<Promise<void>>();
  #firstRequestId: string | undefined;
  #initType: string | undefined;
  #initDurationSent = false;
  #sampler: ReturnType<typeof setInterval> | undefined;
  #sampling = false;

  constructor(options: EnhancedMetricsOptions) {
    this.#sink = options.sink;
    this.#resource = options.resource;
    this.#managed = options.managedInstances;
    this.#proc = options.proc;
    this.#now = options.now ?? Date.now;
    this.#sampleMs = options.peakSampleIntervalMs ?? 100;
    this.#usageEveryMs = options.usageEveryMs ?? 1000;
    this.#configTags = options.tags;
    this.#buildTags();
  }

  /**
   * The tag sets, built once and rebuilt only if the runtime changes: the agent learns the
   * exact runtime from platform.initStart, after it was constructed. The other resource
   * fields come from the environment and never change.
   */
  #buildTags(): void {
    const r = this.#resource;
    const name = r.functionName.toLowerCase();
    const base = [
      `functionname:${name}`,
      `region:${r.region}`,
      `account_id:${r.accountId}`,
      `aws_account:${r.accountId}`,
      `resource:${name}`,
      `executedversion:${r.version}`,
      `memorysize:${r.memorySize}`,
      `runtime:${r.runtime}`,
      `architecture:${r.architecture}`,
      ...this.#configTags,
    ];
    this.#builtFor = `${r.runtime}|${r.accountId}`;
    this.#tagsPlain = [...base].sort();
    this.#tagsWarm = [...base, 'cold_start:false'].sort();
    this.#tagsCold = [...base, 'cold_start:true'].sort();
  }

  /** The INVOKE event: one invocation, and the usage baseline it is measured from. */
  invoked(requestId: string): void {
    const st = this.#state(requestId);
    // Once per request, even if both INVOKE and platform.start report it.
    if (st.invoked) return;
    st.invoked = true;
    this.#emit('invocations', 1, requestId, st.coldStart);
    // Usage metrics read /proc (about 0.3 ms of the agent's CPU per invocation, on the cores
    // the function shares). When invocations come faster than once per `usageEveryMs`,
    // they are measured on one invocation per interval: a sample of the same distribution,
    // at a bounded cost; slower functions have every invocation measured.
    const now = performance.now();
    if (this.#proc && !this.#managed && st.before === undefined && now - this.#lastUsageAt >= this.#usageEveryMs) {
      this.#lastUsageAt = now;
      st.before = this.#proc.snapshot().catch(() => undefined);
      this.#track(st.before.then(() => {}));
      this.#track(this.#samplePeaks());
      this.#startSampler();
    }
  }

  /** The log processor saw an out-of-memory line for this request. */
  outOfMemory(requestId: string): void {
    this.#oom(requestId, this.#open.get(requestId)?.coldStart ?? requestId === this.#firstRequestId);
  }

  handle(event: TelemetryEvent): void {
    const record = obj(event?.record);
    if (!record) return;
    switch (event.type) {
      case 'platform.initStart':
        this.#initType ??= str(record.initializationType);
        return;
      case 'platform.initReport':
        this.#initType ??= str(record.initializationType);
        this.#initDuration(num(obj(record.metrics)?.durationMs));
        return;
      case 'platform.start': {
        const requestId = str(record.requestId);
        if (requestId && this.#managed) this.invoked(requestId);
        return;
      }
      case 'platform.runtimeDone':
        this.#runtimeDone(record);
        return;
      case 'platform.report':
        if (this.#managed) this.#managedReport(record);
        else this.#report(record);
        return;
    }
  }

  /** SHUTDOWN: counted, and an environment that never served an invocation is an unused init. */
  async shutdown(): Promise<void> {
    this.#stopSampler();
    this.#emit('shutdowns', 1, undefined, false);
    if (this.#firstRequestId === undefined) this.#emit('unused_init', 1, undefined, false);
    if (this.#managed && this.#proc) {
      const [counts, tmp, limits] = await Promise.all([this.#proc.counts(), this.#proc.tmp(), this.#proc.limits()]);
      this.#resources(undefined, false, counts.fdUse, counts.threadsUse, tmp?.usedBytes, tmp, limits);
    }
    await this.idle();
  }

  /** Resolves once the /proc reads under way are done and their metrics handed to the sink. */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  #state(requestId: string): RequestState {
    let st = this.#open.get(requestId);
    if (st) return st;
    if (this.#open.size >= maxOpen) this.#open.delete(this.#open.keys().next().value!);
    // The first invocation an environment serves is its cold start.
    const coldStart = this.#firstRequestId === undefined || this.#firstRequestId === requestId;
    this.#firstRequestId ??= requestId;
    st = { coldStart, invoked: false, runtimeDone: false };
    this.#open.set(requestId, st);
    return st;
  }

  #initDuration(durationMs: number | undefined): void {
    if (durationMs === undefined || this.#initDurationSent) return;
    this.#initDurationSent = true;
    const tags = this.#tags(true);
    if (this.#initType) tags.push(`init_type:${this.#initType}`);
    tags.sort();
    this.#sink.addMetric(this.#point('init_duration', durationMs / 1000, tags, this.#firstRequestId));
  }

  #runtimeDone(record: Obj): void {
    const requestId = str(record.requestId);
    if (!requestId) return;
    const st = this.#state(requestId);
    // A redelivered record must not count an error twice.
    if (st.runtimeDone) return;
    st.runtimeDone = true;
    const metrics = obj(record.metrics);
    const durationMs = num(metrics?.durationMs);
    if (durationMs !== undefined) {
      st.runtimeDurationMs = durationMs;
      this.#emit('runtime_duration', durationMs, requestId, st.coldStart);
    }
    const produced = num(metrics?.producedBytes);
    if (produced !== undefined) this.#emit('produced_bytes', produced, requestId, st.coldStart);
    this.#outcome(requestId, st.coldStart, str(record.status), str(record.errorType) ?? str(record.error_type));
  }

  /** errors, timeouts and out_of_memory from a runtimeDone (or a report that had none). */
  #outcome(requestId: string, coldStart: boolean, status: string | undefined, errorType: string | undefined): void {
    if (status !== undefined && status !== 'success') this.#emit('errors', 1, requestId, coldStart);
    if (status === 'timeout') this.#emit('timeouts', 1, requestId, coldStart);
    if (errorType === 'Runtime.OutOfMemory') this.#oom(requestId, coldStart);
  }

  #oom(requestId: string, coldStart: boolean): void {
    if (this.#oomSeen.has(requestId)) return;
    this.#oomSeen.add(requestId);
    if (this.#oomSeen.size > maxOomIds) this.#oomSeen.delete(this.#oomSeen.values().next().value!);
    this.#emit('out_of_memory', 1, requestId, coldStart);
  }

  #report(record: Obj): void {
    const requestId = str(record.requestId);
    if (!requestId) return;
    const st = this.#state(requestId);
    this.#open.delete(requestId);
    const cold = st.coldStart;
    const m = obj(record.metrics);
    const durationMs = num(m?.durationMs);
    const billedMs = num(m?.billedDurationMs);
    const memoryMb = num(m?.memorySizeMB);
    const maxUsedMb = num(m?.maxMemoryUsedMB);
    if (durationMs !== undefined) this.#emit('duration', durationMs / 1000, requestId, cold);
    if (billedMs !== undefined) this.#emit('billed_duration', billedMs / 1000, requestId, cold);
    if (maxUsedMb !== undefined) this.#emit('max_memory_used', maxUsedMb, requestId, cold);
    if (memoryMb !== undefined) this.#emit('memorysize', memoryMb, requestId, cold);
    if (billedMs !== undefined && memoryMb !== undefined) {
      this.#emit('estimated_cost', estimatedCost(billedMs, memoryMb, this.#resource.architecture), requestId, cold);
    }
    if (durationMs !== undefined && st.runtimeDurationMs !== undefined) {
      // Time the environment spent after the response: extensions (this agent's flush included).
      this.#emit('post_runtime_duration', Math.max(0, durationMs - st.runtimeDurationMs), requestId, cold);
    }
    this.#initDuration(num(m?.initDurationMs));
    // Without a runtimeDone (lost, or never sent on a crash) the report says how it ended.
    if (!st.runtimeDone) this.#outcome(requestId, cold, str(record.status), str(record.errorType));
    // Lambda kills at the limit, so a sandbox that reached it ran out of memory (PR #1241).
    if (maxUsedMb !== undefined && memoryMb !== undefined && maxUsedMb >= memoryMb) this.#oom(requestId, cold);
    if (this.#open.size === 0) this.#stopSampler();
    if (this.#proc && st.before) this.#track(this.#usage(requestId, st));
  }

  #managedReport(record: Obj): void {
    const requestId = str(record.requestId);
    if (!requestId) return;
    const st = this.#state(requestId);
    this.#open.delete(requestId);
    const durationMs = num(obj(record.metrics)?.durationMs);
    if (durationMs !== undefined) this.#emit('duration', durationMs / 1000, requestId, false);
    let runtimeMs = durationMs;
    const spans = record.spans;
    if (Array.isArray(spans)) {
      for (const span of spans) {
        const s = obj(span);
        if (s?.name === 'responseLatency' && num(s.durationMs) !== undefined) runtimeMs = num(s.durationMs);
      }
    }
    if (runtimeMs !== undefined && !st.runtimeDone) this.#emit('runtime_duration', runtimeMs, requestId, false);
    if (!st.runtimeDone) this.#outcome(requestId, false, str(record.status), str(record.errorType));
  }

  /** The usage metrics of one invocation: /proc deltas since INVOKE, and the peaks seen. */
  async #usage(requestId: string, st: RequestState): Promise<void> {
    const proc = this.#proc!;
    const [before, after, counts, tmp, limits] = await Promise.all([
      st.before,
      proc.snapshot().catch(() => undefined),
      proc.counts().catch(() => ({}) as { fdUse?: number; threadsUse?: number }),
      proc.tmp(),
      proc.limits(),
    ]);
    const cold = st.coldStart;
    if (before && after) {
      const cpu = cpuBetween(before, after);
      const totalMs = cpu.userMs + cpu.systemMs;
      this.#emit('cpu_user_time', cpu.userMs, requestId, cold);
      this.#emit('cpu_system_time', cpu.systemMs, requestId, cold);
      this.#emit('cpu_total_time', totalMs, requestId, cold);
      const wallMs = after.atMs - before.atMs;
      if (wallMs > 0) {
        // In cores: 1.5 means one and a half cores busy on average over the invocation.
        this.#emit('cpu_total_utilization', totalMs / wallMs, requestId, cold);
        this.#emit('cpu_total_utilization_pct', (totalMs / (wallMs * limits.numCores)) * 100, requestId, cold);
      }
      this.#emit('num_cores', limits.numCores, requestId, cold);
      if (before.network && after.network) {
        const rx = Math.max(0, after.network.rxBytes - before.network.rxBytes);
        const tx = Math.max(0, after.network.txBytes - before.network.txBytes);
        this.#emit('rx_bytes', rx, requestId, cold);
        this.#emit('tx_bytes', tx, requestId, cold);
        this.#emit('total_network', rx + tx, requestId, cold);
      }
    }
    this.#resources(requestId, cold, max(st.peakFd, counts.fdUse), max(st.peakThreads, counts.threadsUse), max(st.peakTmpUsed, tmp?.usedBytes), tmp, limits);
  }

  #resources(
    requestId: string | undefined,
    cold: boolean,
    fdUse: number | undefined,
    threadsUse: number | undefined,
    tmpUsed: number | undefined,
    tmp: { maxBytes: number; freeBytes: number } | undefined,
    limits: { fdMax?: number; threadsMax?: number },
  ): void {
    if (tmp) {
      this.#emit('tmp_max', tmp.maxBytes, requestId, cold);
      this.#emit('tmp_used', tmpUsed ?? tmp.maxBytes - tmp.freeBytes, requestId, cold);
      this.#emit('tmp_free', tmp.freeBytes, requestId, cold);
    }
    if (fdUse !== undefined) this.#emit('fd_use', fdUse, requestId, cold);
    if (limits.fdMax !== undefined) this.#emit('fd_max', limits.fdMax, requestId, cold);
    if (threadsUse !== undefined) this.#emit('threads_use', threadsUse, requestId, cold);
    if (limits.threadsMax !== undefined) this.#emit('threads_max', limits.threadsMax, requestId, cold);
  }

  /** Records the current fd, thread and /tmp figures as peaks of every open invocation. */
  async #samplePeaks(): Promise<void> {
    if (!this.#proc || this.#sampling) return;
    this.#sampling = true;
    try {
      const [counts, tmp] = await Promise.all([this.#proc.counts().catch(() => ({}) as { fdUse?: number; threadsUse?: number }), this.#proc.tmp()]);
      for (const st of this.#open.values()) {
        st.peakFd = max(st.peakFd, counts.fdUse);
        st.peakThreads = max(st.peakThreads, counts.threadsUse);
        st.peakTmpUsed = max(st.peakTmpUsed, tmp?.usedBytes);
      }
    } finally {
      this.#sampling = false;
    }
  }

  #startSampler(): void {
    if (this.#sampler || this.#sampleMs <= 0) return;
    this.#sampler = setInterval(() => this.#track(this.#samplePeaks()), this.#sampleMs);
    // Never what keeps the agent alive.
    this.#sampler.unref();
  }

  #stopSampler(): void {
    if (this.#sampler) clearInterval(this.#sampler);
    this.#sampler = undefined;
  }

  #track(work: Promise<void>): void {
    const tracked = work.catch(() => {}).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }

  #tags(cold: boolean): string[] {
    // The runtime (platform.initStart) and the account (registration) are learnt after start.
    if (`${this.#resource.runtime}|${this.#resource.accountId}` !== this.#builtFor) this.#buildTags();
    return (this.#managed ? this.#tagsPlain : cold ? this.#tagsCold : this.#tagsWarm).slice();
  }

  #emit(metric: string, value: number, requestId: string | undefined, cold: boolean): void {
    this.#sink.addMetric(this.#point(metric, value, this.#tags(cold), requestId));
  }

  #point(metric: string, value: number, tags: string[], requestId: string | undefined): MetricPoint {
    const point: MetricPoint = { name: prefix + metric, type: 'distribution', value, values: [value], tags, timestamp: this.#now() };
    if (requestId !== undefined) point.requestId = requestId;
    return point;
  }
}
