/**
 * The Nimbus agent, put together: intakes (DogStatsD, trace intake, OTLP, Telemetry API,
 * Runtime API proxy) feed processors (invocation spans, enhanced metrics, logs, threat
 * detection) that write into one outbox; the lifecycle loop decides when the outbox is
 * flushed to the backends (flush/flush-control.ts).
 *
 * Rule one: the agent never makes the function fail. A listener that cannot start is
 * reported and skipped; a backend that is down is buffered for, up to a bound.
 */
import type { AgentConfig } from './config.ts';
import type { AgentResource, ProxyInterceptor, TelemetryBackend, TelemetryEvent, TelemetrySink } from './model.ts';
import type { ExtensionsApiClient, NextEvent, Registration } from './lambda/extensions-api-client.ts';
import { startTelemetryListener } from './lambda/telemetry-listener.ts';
import { DogStatsDAggregator } from './dogstatsd/aggregator.ts';
import { startDogStatsD } from './dogstatsd/server.ts';
import { startTraceIntake } from './traces/intake-server.ts';
import { startOtlpReceiver } from './otlp/receiver.ts';
import { LogProcessor } from './logs/log-processor.ts';
import { parseProcessingRules } from './logs/processing-rules.ts';
import { InvocationTracker } from './invocation/invocation-tracker.ts';
import { EnhancedMetrics } from './enhanced/enhanced-metrics.ts';
import { ProcUsage } from './enhanced/proc-usage.ts';
import { EnhancedAggregator } from './enhanced/enhanced-aggregator.ts';
import { Outbox } from './outbox.ts';
import { NimbusBackend } from './backends/nimbus-backend.ts';
import { OtlpBackend } from './backends/otlp-backend.ts';
import { closeHttpAgents } from './backends/http-post.ts';
import { FlushControl } from './flush/flush-control.ts';
import { parseFlushStrategy } from './flush/strategy.ts';
import { InvocationEnds } from './lifecycle/invocation-ends.ts';
import { PendingReports } from './lifecycle/pending-reports.ts';
import type { AgentLog } from './agent-log.ts';


export const agentVersion = '1.0.0';

interface Closable {
  close(): Promise<void>;
}

/** What main.ts starts before this module is loaded (see there). */
export interface EarlyStart {
  api: ExtensionsApiClient;
  registration: Promise<Registration>;
  /** The list the Runtime API proxy calls; the agent fills it. */
  interceptors: ProxyInterceptor[];
  proxy: Closable | undefined;
}

/** Telemetry API buffering as Datadog's extension asks for it. */
const telemetryBuffering = { maxItems: 1000, maxBytes: 262_144, timeoutMs: 25 };
/** How long SHUTDOWN waits for the last invocation's platform.report (Datadog: 300 ms). */
const reportWaitMs = 300;
/** Time kept back from the SHUTDOWN deadline for closing down after the last flush. */
const shutdownMarginMs = 200;
/** Time kept back from an invocation's deadline for calling /next after a blocking flush. */
const invocationDeadlineMarginMs = 100;

export class NimbusAgent {
  readonly #config: AgentConfig;
  readonly #log: AgentLog;
  readonly #env: Record<string, string | undefined>;
  readonly #api: ExtensionsApiClient;
  readonly #early: EarlyStart;
  readonly #closables: Closable[] = [];
  readonly #ends = new InvocationEnds();
  readonly #reports = new PendingReports();
  readonly #resource: AgentResource;
  readonly #managed: boolean;
  #outbox!: Outbox;
  #tracker!: InvocationTracker;
  #enhanced: EnhancedMetrics | undefined;
  #logs!: LogProcessor;
  #flush!: FlushControl;
  #backgroundTimer: NodeJS.Timeout | undefined;
  #invocations = 0;

  /**
   * @param early what main.ts started before loading this module: the registration in
   *   flight, and the Runtime API proxy (if any) with the interceptor list it reads.
   */
  constructor(config: AgentConfig, log: AgentLog, env: Record<string, string | undefined>, early: EarlyStart) {
    this.#config = config;
    this.#log = log;
    this.#env = env;
    this.#api = early.api;
    this.#early = early;
    this.#managed = env.AWS_LAMBDA_INITIALIZATION_TYPE === 'lambda-managed-instances';
    const functionName = env.AWS_LAMBDA_FUNCTION_NAME ?? 'unknown';
    const region = env.AWS_REGION ?? 'us-east-1';
    this.#resource = {
      functionName,
      functionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
      version: env.AWS_LAMBDA_FUNCTION_VERSION ?? '$LATEST',
      region,
      accountId: '000000000000',
      // Extensions are not told the runtime; platform.initStart says it (runtimeVersion).
      runtime: 'unknown',
      memorySize: Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? 128),
      architecture: process.arch === 'arm64' ? 'arm64' : 'x86_64',
      extensionVersion: agentVersion,
      tags: config.tags,
    };
  }

  /** Starts every part, registers, and runs the event loop until SHUTDOWN. */
  async run(): Promise<void> {
    for (const warning of this.#config.warnings) this.#log.warn(warning);
    // The registration is in flight (main.ts): the listeners come up while the runtime
    // starts. The resource object is shared by reference, so the account id the
    // registration tells reaches every part that already holds it.
    await this.#startPipeline();
    const registration = await this.#early.registration;
    if (registration.accountId) {
      this.#resource.accountId = registration.accountId;
      this.#resource.functionArn = `arn:aws:lambda:${this.#resource.region}:${registration.accountId}:function:${this.#resource.functionName}`;
    }
    const types: Array<'platform' | 'function' | 'extension'> = this.#config.logsEnabled ? ['platform', 'function', 'extension'] : ['platform'];
    // Managed instances take only the 2025-01-29 schema (and send that schema's events).
    await this.#api.subscribeTelemetry(this.#config.telemetryPort, types, telemetryBuffering, this.#managed ? '2025-01-29' : '2022-12-13');
    const interval = this.#flush.backgroundIntervalMs();
    if (interval !== undefined) {
      this.#backgroundTimer = setInterval(() => {
        if (this.#flush.atBackgroundTick() === 'background') this.#backgroundFlush();
      }, interval);
    }
    this.#log.debug(`ready, ${performance.now().toFixed(1)} ms after start`);
    for (;;) {
      const event = await this.#api.next();
      this.#log.debug(`event ${event.eventType}`);
      if (event.eventType === 'SHUTDOWN') {
        await this.#shutdown(event);
        return;
      }
      await this.#invocation(event);
    }
  }

  async #startPipeline(): Promise<void> {
    const c = this.#config;
    const onError = (message: string): void => this.#log.warn(message);
    const backends: TelemetryBackend[] = [];
    if (c.nimbusEndpoint) backends.push(new NimbusBackend({ endpoint: c.nimbusEndpoint }));
    if (c.otlpEndpoint) backends.push(new OtlpBackend({ endpoint: c.otlpEndpoint }));
    if (c.datadog) {
      // Loaded on demand (its protobuf encoder is half the agent's code): start-up is Init Duration.
      const { DatadogBackend } = await import('./backends/datadog-backend.ts');
      backends.push(new DatadogBackend({ apiKey: c.datadog.apiKey, metricsUrl: c.datadog.metricsUrl, logsUrl: c.datadog.logsUrl, tracesUrl: c.datadog.tracesUrl }));
    }
    if (backends.length === 0) this.#log.warn('no backend configured (NIMBUS_TELEMETRY_ENDPOINT, NIMBUS_OTLP_ENDPOINT or DD_API_KEY): telemetry is collected and dropped');

    const aggregator = new DogStatsDAggregator({ excludeTagKeys: c.customMetricsExcludeTags });
    const enhancedAggregator = new EnhancedAggregator();
    this.#outbox = new Outbox({
      resource: this.#resource,
      backends,
      sources: [aggregator, enhancedAggregator],
      maxBuffered: c.maxBuffered,
      sendTimeoutMs: c.flushTimeoutMs,
      onError,
      // A burst (a log flood, a busy function between periodic flushes) is sent in batches
      // of Datadog's size (1,000 entries) rather than held, or pushed out, until the next flush.
      fillingAt: 1000,
      // The outbox runs one flush at a time and folds requests made meanwhile into the next.
      onFilling: () => this.#backgroundFlush(),
    });
    const sink = this.#outbox;

    const parsed = parseFlushStrategy(c.flushStrategy);
    if (parsed.warning) this.#log.warn(parsed.warning);
    this.#flush = new FlushControl({ strategy: parsed.strategy, flushTimeoutMs: c.flushTimeoutMs, managedInstances: this.#managed });
    if (this.#flush.warning) this.#log.warn(this.#flush.warning);

    this.#tracker = new InvocationTracker({ sink, resource: this.#resource, service: c.service, captureLambdaPayload: c.captureLambdaPayload });
    if (c.enhancedMetrics) {
      this.#enhanced = new EnhancedMetrics({
        sink: { ...forwarding(sink), addMetric: (p) => enhancedAggregator.add(p) },
        resource: this.#resource,
        tags: c.tags,
        managedInstances: this.#managed,
        proc: c.procEnhancedMetrics ? new ProcUsage({ sandboxAddress: this.#env.NIMBUS_SANDBOX_ADDRESS }) : undefined,
      });
    }
    const rules = parseProcessingRules(c.processingRules);
    for (const warning of rules.warnings) this.#log.warn(warning);
    this.#logs = new LogProcessor({
      sink: c.logsEnabled ? sink : withoutLogs(sink),
      rules: rules.rules,
      onOutOfMemory: (requestId) => {
        if (requestId) this.#enhanced?.outOfMemory(requestId);
      },
    });

    const host = c.bindHost;
    const tracker = this.#tracker;
    await this.#listen('DogStatsD', () => startDogStatsD({ host, port: c.dogstatsdPort, aggregator, onError }));
    await this.#listen('trace intake', () => startTraceIntake({ host, port: c.traceAgentPort, onSpans: (spans) => tracker.attachTracerSpans(spans) }));
    await this.#listen('OTLP receiver', () =>
      startOtlpReceiver({
        host,
        port: c.otlpHttpPort,
        onSpans: (spans) => tracker.attachTracerSpans(spans),
        onMetrics: (points) => {
          for (const p of points) sink.addMetric(p);
        },
        onLogs: (records) => {
          if (c.logsEnabled) for (const r of records) sink.addLog(r);
        },
      }),
    );
    await this.#listen('telemetry listener', () => startTelemetryListener({ host, port: c.telemetryPort, onEvents: (events) => this.#onTelemetry(events), onError }));
    if (this.#early.proxy) await this.#intercept();
  }

  /** What the Runtime API proxy (started by main.ts) tells about each event goes here. */
  async #intercept(): Promise<void> {
    const c = this.#config;
    const ends = this.#ends;
    const tracker = this.#tracker;
    this.#closables.push(this.#early.proxy!);
    const interceptors: ProxyInterceptor[] = [
      {
        onInvocationEvent: (info) => {
          tracker.eventSeen(info.requestId, info.event);
          return undefined;
        },
        onInvocationResponse: (requestId, body) => {
          tracker.finished(requestId, { status: 'success', response: body });
          ends.ended(requestId);
        },
        onInvocationError: (requestId, body, errorType) => {
          tracker.finished(requestId, { status: 'error', errorType, response: body });
          ends.ended(requestId);
        },
      },
    ];
    if (c.appsecEnabled) {
      const { createAppsec } = await import('./appsec/create-appsec.ts');
      const appsec = await createAppsec(c, { sink: this.#outbox, tagger: tracker, log: this.#log });
      if (appsec) {
        interceptors.push(appsec.interceptor);
        this.#closables.push(appsec);
      }
    }
    this.#early.interceptors.push(...interceptors);
  }

  async #listen<T extends Closable>(what: string, start: () => Promise<T>): Promise<T | undefined> {
    try {
      const server = await start();
      this.#closables.push(server);
      return server;
    } catch (err) {
      this.#log.warn(`${what} not started: ${(err as Error).message}`);
      return undefined;
    }
  }

  #onTelemetry(events: TelemetryEvent[]): void {
    for (const event of events) {
      try {
        if (event.type === 'platform.initStart') {
          const version = (event.record as { runtimeVersion?: unknown }).runtimeVersion;
          if (typeof version === 'string') this.#resource.runtime = runtimeIdOf(version) ?? this.#resource.runtime;
        }
        this.#enhanced?.handle(event);
        this.#logs.handle(event);
        if (event.type === 'platform.runtimeDone') this.#runtimeDone(event.record as RuntimeDoneRecord);
        if (event.type === 'platform.report') this.#reports.reported(String((event.record as { requestId?: unknown }).requestId));
        if (this.#managed) this.#managedInvocation(event);
      } catch (err) {
        this.#log.warn(`telemetry event ${event.type} not processed: ${(err as Error).message}`);
      }
    }
  }

  /**
   * Managed instances send no INVOKE to extensions (they register for SHUTDOWN only):
   * platform.start and platform.report (2025-01-29 schema, no runtimeDone) are each
   * invocation's beginning and end for its aws.lambda span.
   */
  #managedInvocation(event: TelemetryEvent): void {
    const record = event.record as { requestId?: unknown; status?: string; errorType?: string; metrics?: { durationMs?: number } };
    if (typeof record.requestId !== 'string') return;
    const at = Date.parse(event.time);
    if (event.type === 'platform.start') this.#tracker.started(record.requestId, Number.isNaN(at) ? {} : { at });
    if (event.type === 'platform.report') {
      const status = record.status === 'success' || record.status === 'timeout' || record.status === 'failure' ? record.status : 'error';
      this.#tracker.finished(record.requestId, { status, errorType: record.errorType, durationMs: record.metrics?.durationMs });
    }
  }

  #runtimeDone(record: RuntimeDoneRecord): void {
    if (typeof record.requestId !== 'string') return;
    const status = record.status === 'success' || record.status === 'timeout' || record.status === 'failure' ? record.status : 'error';
    this.#tracker.finished(record.requestId, { status, errorType: record.errorType, durationMs: record.metrics?.durationMs });
    this.#ends.ended(record.requestId);
  }

  async #invocation(event: Extract<NextEvent, { eventType: 'INVOKE' }>): Promise<void> {
    this.#invocations++;
    this.#flush.invocationStarted();
    this.#enhanced?.invoked(event.requestId);
    this.#reports.invoked(event.requestId);
    this.#tracker.started(event.requestId, { functionArn: event.invokedFunctionArn, deadlineMs: event.deadlineMs });
    const atStart = this.#flush.atInvocationStart();
    if (atStart === 'blocking') await this.#withinDeadline(this.#blockingFlush(), event.deadlineMs);
    else if (atStart === 'background') this.#backgroundFlush();
    // Only an end-of-invocation flush holds the environment; otherwise /next comes at once.
    if (this.#flush.atInvocationEnd() !== 'blocking') return;
    await this.#waitForEnd(event.requestId);
    // Monitor-mode threat detection reports on the next turn of the event loop (setImmediate,
    // scheduled when the proxy saw the response): let it tag the span and add its signals first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await this.#withinDeadline(this.#blockingFlush(), event.deadlineMs);
  }

  /**
   * Waits for a blocking flush, but never past the invocation's deadline: a backend that
   * accepts connections and never answers would otherwise hold every invocation until
   * DD_FLUSH_TIMEOUT, turning each into a timeout (and a cold start). The flush goes on in
   * the background; what it fails to deliver is retried at the next one.
   */
  async #withinDeadline(flush: Promise<void>, deadlineMs: number): Promise<void> {
    const budget = deadlineMs - Date.now() - invocationDeadlineMarginMs;
    if (!Number.isFinite(budget)) return flush;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, budget));
    });
    try {
      await Promise.race([flush, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for the invocation to end; a race timer flushes meanwhile so long invocations ship data. */
  async #waitForEnd(requestId: string): Promise<void> {
    const race = this.#flush.raceIntervalMs();
    const timer = race === undefined ? undefined : setInterval(() => void this.#blockingFlush(), race);
    try {
      await this.#ends.wait(requestId);
    } finally {
      if (timer) clearInterval(timer);
    }
  }

  async #blockingFlush(): Promise<void> {
    this.#flush.flushed();
    this.#tracker.drain('flush');
    await this.#outbox.flush();
  }

  #backgroundFlush(): void {
    this.#flush.flushStarted();
    this.#tracker.drain('flush');
    void this.#outbox.flush().finally(() => this.#flush.flushSettled());
  }

  async #shutdown(event: Extract<NextEvent, { eventType: 'SHUTDOWN' }>): Promise<void> {
    if (this.#backgroundTimer) clearInterval(this.#backgroundTimer);
    this.#ends.releaseAll();
    const budget = Math.max(0, event.deadlineMs - Date.now() - shutdownMarginMs);
    await this.#reports.settled(Math.min(reportWaitMs, budget / 4));
    // A timeout or a crash: what the invocation sent so far still goes out.
    this.#tracker.drain(event.shutdownReason === 'timeout' ? 'timeout' : 'shutdown');
    // The last invocation's usage metrics are read asynchronously; they go in this flush.
    await Promise.race([this.#enhanced?.shutdown().then(() => this.#enhanced?.idle()), new Promise((resolve) => setTimeout(resolve, budget / 2).unref())]);
    const flushed = this.#outbox.flush();
    await Promise.race([flushed, new Promise((resolve) => setTimeout(resolve, budget).unref())]);
    await Promise.allSettled(this.#closables.map((c) => c.close()));
    closeHttpAgents();
    this.#api.close();
  }
}

/** `nodejs:24.v1` → `nodejs24.x`, `python:3.12.v1` → `python3.12` (Lambda's runtime ids). */
export function runtimeIdOf(runtimeVersion: string): string | undefined {
  const m = /^([a-z]+):(\d+(?:\.\d+)?)\.v\d+$/.exec(runtimeVersion);
  if (!m) return undefined;
  return m[1] === 'nodejs' ? `nodejs${m[2]}.x` : `${m[1]}${m[2]}`;
}

/** A sink that passes everything on to `sink` (for overriding one kind). */
function forwarding(sink: TelemetrySink): TelemetrySink {
  return {
    addMetric: (p) => sink.addMetric(p),
    addSpans: (s) => sink.addSpans(s),
    addLog: (l) => sink.addLog(l),
    addSecurity: (s) => sink.addSecurity(s),
  };
}

/** DD_LOGS_ENABLED=false: the log processor still sees platform events, but ships no lines. */
function withoutLogs(sink: TelemetrySink): TelemetrySink {
  return { ...forwarding(sink), addLog: () => {} };
}

interface RuntimeDoneRecord {
  requestId?: unknown;
  status?: string;
  errorType?: string;
  metrics?: { durationMs?: number };
}
