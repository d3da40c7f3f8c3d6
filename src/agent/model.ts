/**
 * What the Nimbus agent collects and sends, shared by its intakes, its processors, its
 * backends and the Nimbus server's telemetry store. The agent is a separate program
 * (bundled into the `nimbus-agent` layer), so this file imports nothing from the server.
 *
 * The shapes follow Datadog's where one exists (metric types, span fields, tags as
 * `key:value` strings) so that the Datadog backend is a change of envelope, not of model.
 */

/** DogStatsD `c`, `g`, `d`/`h`/`ms`, `s` after aggregation. Enhanced metrics are distributions. */
export type MetricType = 'count' | 'gauge' | 'distribution' | 'set';

export interface MetricPoint {
  name: string;
  type: MetricType;
  /**
   * count: the sum over the interval (sample rates applied); gauge: the last value;
   * set: the number of distinct values; distribution: the sum of `values` (for display).
   */
  value: number;
  /** distribution only: every sample as received. */
  values?: number[];
  /** distribution only: the weight of each sample (1 / sample rate); absent means all 1. */
  weights?: number[];
  /** `key:value` (or bare `key`) strings, sorted, as Datadog writes them. */
  tags: string[];
  /** Milliseconds since the epoch: the time of the point, or the start of its interval. */
  timestamp: number;
  /** The invocation a per-invocation (enhanced) point belongs to. Kept out of `tags` on purpose: no cardinality. */
  requestId?: string;
  /**
   * distribution only: the invocation of each sample, parallel to `values`, when the
   * agent merged per-invocation points (enhanced metrics) into one per flush. Absent when
   * a flush held too many invocations to name them all.
   */
  requestIds?: string[];
}

export interface Span {
  /** 128-bit trace id, 32 lowercase hex digits. */
  traceId: string;
  /** 64-bit span id, 16 lowercase hex digits. */
  spanId: string;
  /** 16 lowercase hex digits; absent for a root span. */
  parentId?: string;
  name: string;
  service: string;
  resource: string;
  type?: string;
  /** Microseconds since the epoch (an integer; nanoseconds overflow a double). */
  startMicros: number;
  durationMicros: number;
  error: boolean;
  meta: Record<string, string>;
  metrics: Record<string, number>;
  /** The invocation this span was joined to. */
  requestId?: string;
}

export type LogSource = 'function' | 'platform' | 'extension';

export interface LogRecord {
  /** Milliseconds since the epoch. */
  timestamp: number;
  source: LogSource;
  requestId?: string;
  /** Lower-case level when known (`info`, `error`, ...). */
  level?: string;
  message: string;
  /** The parsed object when the line was a JSON log. */
  attributes?: Record<string, unknown>;
}

/** One attack attempt seen by the WAF on an HTTP-triggered invocation. */
export interface SecuritySignal {
  timestamp: number;
  requestId: string;
  ruleId: string;
  ruleName: string;
  /** The rule's `tags.type`: `sql_injection`, `xss`, `lfi`, `ssrf`, `command_injection`, `security_scanner`, ... */
  category: string;
  /** The WAF address and key path that matched, e.g. `server.request.query.q`. */
  parameter: string;
  /** The matched value, redacted when it looks like a secret. */
  value: string;
  clientIp?: string;
  userAgent?: string;
  route?: string;
  method?: string;
  /** `api-gateway-rest`, `api-gateway-http`, `function-url`, `alb`. */
  trigger: string;
  blocked: boolean;
}

/** Who sent a batch: the function and environment the agent runs in. */
export interface AgentResource {
  functionName: string;
  functionArn: string;
  version: string;
  region: string;
  accountId: string;
  runtime: string;
  memorySize: number;
  architecture: 'x86_64' | 'arm64';
  extensionVersion: string;
  /** `service`, `env`, `version` and `DD_TAGS`, as `key:value`. */
  tags: string[];
}

/** Counts of what the agent had to drop since it started (bounded buffers, a backend down). */
export interface DropCounts {
  metrics: number;
  spans: number;
  logs: number;
  security: number;
}

/** One flush's worth, as sent to every backend. */
export interface TelemetryBatch {
  resource: AgentResource;
  metrics: MetricPoint[];
  spans: Span[];
  logs: LogRecord[];
  security: SecuritySignal[];
  dropped: DropCounts;
  /** Milliseconds since the epoch. */
  sentAt: number;
}

/** Where a flush goes. `send` rejects when the batch was not accepted, so the caller can keep it. */
export interface TelemetryBackend {
  readonly name: string;
  send(batch: TelemetryBatch, signal?: AbortSignal): Promise<void>;
}

/** Something that aggregates and hands over its metric points at flush time (DogStatsD). */
export interface MetricSource {
  collect(nowMs: number): MetricPoint[];
}

/** Where intakes and processors put what they produce. Never throws, never blocks. */
export interface TelemetrySink {
  addMetric(point: MetricPoint): void;
  addSpans(spans: Span[]): void;
  addLog(record: LogRecord): void;
  addSecurity(signal: SecuritySignal): void;
}

/** One Telemetry API record as the platform POSTs it (lambda-interfaces.md §3.1). */
export interface TelemetryEvent {
  time: string;
  type: string;
  record: unknown;
}

/** How a trigger is named in spans (`function_trigger.event_source`) and security signals. */
export type TriggerKind =
  | 'api-gateway-rest'
  | 'api-gateway-http'
  | 'function-url'
  | 'alb'
  | 'sqs'
  | 'sns'
  | 's3'
  | 'eventbridge'
  | 'dynamodb'
  | 'kinesis';

/** An invocation event as the Runtime API proxy saw it on its way to the runtime. */
export interface InvocationEventInfo {
  requestId: string;
  event: Buffer;
  /** The Runtime API's response headers (`lambda-runtime-*`), lower-cased. */
  headers: Record<string, string | string[] | undefined>;
}

/**
 * What the agent's Runtime API proxy does with an event: pass it on (undefined), or answer
 * it on the handler's behalf (`respond`, posted as the invocation's response), so that the
 * handler never sees it (threat detection's blocking).
 */
export type InterceptVerdict = undefined | { respond: Buffer };

/** Someone the Runtime API proxy tells about every event, response and error. */
export interface ProxyInterceptor {
  onInvocationEvent(info: InvocationEventInfo): InterceptVerdict | Promise<InterceptVerdict>;
  /** `body` is undefined when the response was streamed past the proxy's tee limit. */
  onInvocationResponse(requestId: string, body: Buffer | undefined): void;
  onInvocationError(requestId: string, body: Buffer, errorType: string | undefined): void;
}

/** Lets another part of the agent add tags to an invocation's `aws.lambda` span before it is sent. */
export interface RootSpanTagger {
  tagRootSpan(requestId: string, meta: Record<string, string>, metrics?: Record<string, number>): void;
}
