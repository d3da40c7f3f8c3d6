/**
 * One `aws.lambda` span per invocation, as Datadog's extension makes it: opened by the
 * INVOKE event (or by the proxy seeing the payload, whichever comes first), given its
 * trigger and trace context from the payload, closed by the proxy's /response or /error
 * or by the platform's runtimeDone, and sent at the next flush. Tracer spans (trace
 * intake, OTLP) that started inside an invocation are joined under its span.
 *
 * A finished span is held until the next drain or the next invocation, because the
 * platform's runtimeDone (the exact runtime duration, a timeout status) usually arrives
 * after the proxy has already seen the response.
 */
import type { AgentResource, RootSpanTagger, Span, TelemetrySink } from '../model.ts';
import { inferTrigger, type TriggerInfo } from './triggers.ts';
import { extractTraceContext } from './trace-context.ts';
import { isZeroId, newSpanId, newTraceId } from './ids.ts';

export type InvocationStatus = 'success' | 'error' | 'timeout' | 'failure';

export interface InvocationOutcome {
  status: InvocationStatus;
  errorType?: string;
  /** The response body, or the error body for `error`. */
  response?: Buffer;
  /** runtimeDone's `metrics.durationMs`: the span's duration when known. */
  durationMs?: number;
  /** Epoch ms of the end; now when absent. */
  at?: number;
}

export interface InvocationTrackerOptions {
  sink: TelemetrySink;
  resource: AgentResource;
  service?: string;
  captureLambdaPayload?: boolean;
  /** Epoch milliseconds. */
  now?: () => number;
}

export type DrainReason = 'flush' | 'shutdown' | 'timeout';

interface Invocation {
  requestId: string;
  startMs: number;
  endMs?: number;
  functionArn?: string;
  deadlineMs?: number;
  coldStart: boolean;
  spanId: string;
  traceId: string;
  parentId?: string;
  samplingPriority?: number;
  /** The payload until it is parsed (lazily: parsing 6 MB must not delay the runtime). */
  event?: Buffer;
  trigger?: TriggerInfo;
  requestCapture?: string;
  /** Tracer spans were joined with `traceId`: it must not change any more. */
  joined: boolean;
  status?: InvocationStatus;
  errorType?: string;
  response?: Buffer;
  durationMs?: number;
  meta: Record<string, string>;
  metrics: Record<string, number>;
}

const httpKinds = new Set(['api-gateway-rest', 'api-gateway-http', 'function-url', 'alb']);
const captureLimit = 64 * 1024;
/** Tracer roots that start up to this long after the response still belong to the invocation (flush of the tracer). */
const joinAfterMs = 100;
/** ...and this long before the INVOKE reached the agent (the runtime may see the event first). */
const joinBeforeMs = 50;
const maxLive = 1000;
const maxRecent = 64;
const maxTraceMap = 256;
/** How long a trace that came before its INVOKE waits for it. */
const earlyWaitMs = 2000;
const maxEarly = 256;

/** Spans of a batch whose parent is not in the batch. */
function rootsOf(group: Span[]): Span[] {
  const ids = new Set<string>();
  for (const span of group) ids.add(span.spanId);
  return group.filter((s) => !s.parentId || isZeroId(s.parentId) || !ids.has(s.parentId));
}
/** Lambda's streamed HTTP responses: JSON prelude, 8 NUL bytes, body (lambda-interfaces.md §1.5). */
const preludeSeparator = Buffer.alloc(8);

const severity: Record<InvocationStatus, number> = { success: 0, error: 1, failure: 2, timeout: 3 };

function parseJson(buf: Buffer): unknown {
  let i = 0;
  while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09)) i++;
  if (buf[i] !== 0x7b /* { */) return undefined;
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
}

const asObject = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;

const truncated = (buf: Buffer): string => buf.subarray(0, captureLimit).toString('utf8');

export class InvocationTracker implements RootSpanTagger {
  readonly #sink: TelemetrySink;
  readonly #resource: AgentResource;
  readonly #service: string;
  readonly #capture: boolean;
  readonly #now: () => number;
  /** Open, and finished but not yet sent, in start order. */
  readonly #live = new Map<string, Invocation>();
  /** Sent recently: late tracer spans can still join them. */
  #recent: Invocation[] = [];
  /** A tracer's trace id → the invocation its first batch was joined to (later batches follow it). */
  readonly #traceMap = new Map<string, Invocation>();
  #sawInvocation = false;
  /**
   * Tracer traces that arrived while no invocation was open: the runtime gets its event a
   * moment before the agent's INVOKE, so a fast handler's spans can come first. They wait
   * for the next INVOKE (bounded, and sent as they are after `earlyWaitMs`).
   */
  #early: Array<{ traceId: string; spans: Span[]; at: number }> = [];

  constructor(options: InvocationTrackerOptions) {
    this.#sink = options.sink;
    this.#resource = options.resource;
    this.#service = options.service ?? 'aws.lambda';
    this.#capture = options.captureLambdaPayload ?? false;
    this.#now = options.now ?? Date.now;
  }

  /** The extension's INVOKE event. */
  started(requestId: string, info: { functionArn?: string; deadlineMs?: number; at?: number } = {}): void {
    const at = info.at ?? this.#now();
    const inv = this.#obtain(requestId, at);
    if (!inv) return;
    if (at < inv.startMs) inv.startMs = at;
    if (info.functionArn) inv.functionArn = info.functionArn;
    if (info.deadlineMs !== undefined) inv.deadlineMs = info.deadlineMs;
    if (this.#early.length > 0) {
      const early = this.#early;
      this.#early = [];
      const out: Span[] = [];
      for (const { traceId, spans } of early) {
        if (spans[0]!.startMicros / 1000 >= inv.startMs - earlyWaitMs) this.#joinTo(traceId, spans, inv);
        out.push(...spans);
      }
      this.#sink.addSpans(out);
    }
  }

  /** The proxy saw the payload; it is parsed when the span is needed, off the invoke's path. */
  eventSeen(requestId: string, event: Buffer): void {
    const inv = this.#obtain(requestId, this.#now());
    if (!inv) return;
    inv.event = event;
    if (this.#capture) inv.requestCapture = truncated(event);
  }

  finished(requestId: string, outcome: InvocationOutcome): void {
    const at = outcome.at ?? this.#now();
    const inv = this.#live.get(requestId) ?? (this.#isRecent(requestId) ? undefined : this.#obtain(requestId, at - (outcome.durationMs ?? 0)));
    if (!inv) return;
    if (inv.status === undefined) {
      inv.status = outcome.status;
      inv.endMs = at;
    } else if (severity[outcome.status] > severity[inv.status]) {
      // A later, worse verdict wins: the platform's timeout after the proxy saw nothing.
      inv.status = outcome.status;
    }
    if (outcome.errorType !== undefined && inv.errorType === undefined) inv.errorType = outcome.errorType;
    if (outcome.response !== undefined && inv.response === undefined) inv.response = outcome.response;
    if (outcome.durationMs !== undefined && Number.isFinite(outcome.durationMs) && outcome.durationMs >= 0) inv.durationMs = outcome.durationMs;
  }

  tagRootSpan(requestId: string, meta: Record<string, string>, metrics?: Record<string, number>): void {
    const inv = this.#live.get(requestId) ?? (this.#isRecent(requestId) ? undefined : this.#obtain(requestId, this.#now()));
    if (!inv) return;
    Object.assign(inv.meta, meta);
    if (metrics) Object.assign(inv.metrics, metrics);
  }

  attachTracerSpans(spans: Span[]): void {
    if (spans.length === 0) return;
    const groups = new Map<string, Span[]>();
    for (const span of spans) {
      const group = groups.get(span.traceId);
      if (group) group.push(span);
      else groups.set(span.traceId, [span]);
    }
    const out: Span[] = [];
    for (const [traceId, group] of groups) {
      if (this.#waitsForInvoke(traceId, group)) {
        this.#early.push({ traceId, spans: group, at: this.#now() });
        if (this.#early.length > maxEarly) out.push(...this.#early.shift()!.spans);
        continue;
      }
      this.#join(traceId, group);
      out.push(...group);
    }
    if (out.length > 0) this.#sink.addSpans(out);
  }

  /**
   * A trace waits when no invocation is open and its root started after every invocation
   * seen so far had ended: it can only be the next one's. (A root that started within a
   * finished invocation joins it now: the tracer merely flushed late.)
   */
  #waitsForInvoke(traceId: string, group: Span[]): boolean {
    if (this.#traceMap.has(traceId)) return false;
    for (const inv of this.#live.values()) if (inv.status === undefined) return false;
    let t = Infinity;
    for (const root of rootsOf(group)) t = Math.min(t, root.startMicros / 1000);
    const within = (inv: Invocation): boolean => t >= inv.startMs - joinBeforeMs && t <= (inv.endMs ?? Infinity);
    for (const inv of this.#live.values()) if (within(inv)) return false;
    for (const inv of this.#recent) if (within(inv)) return false;
    return true;
  }

  /** Sends finished spans; at shutdown or timeout also closes what is still open, as an error. */
  drain(reason: DrainReason): void {
    const out: Span[] = [];
    const now = this.#now();
    // Early traces whose INVOKE never came (or everything, on the way out) go as they are.
    const keep = reason === 'flush' ? this.#early.filter((e) => now - e.at < earlyWaitMs) : [];
    for (const e of this.#early) if (!keep.includes(e)) out.push(...e.spans);
    this.#early = keep;
    for (const inv of [...this.#live.values()]) {
      if (inv.status === undefined) {
        if (reason === 'flush') continue;
        // A timed-out invocation ended at its deadline, not when the SHUTDOWN reached us.
        const at = reason === 'timeout' && inv.deadlineMs !== undefined ? Math.max(inv.startMs, Math.min(now, inv.deadlineMs)) : now;
        this.finished(inv.requestId, { status: reason === 'timeout' ? 'timeout' : 'failure', errorType: reason === 'timeout' ? 'Timeout' : 'Shutdown', at });
        inv.meta['error.message'] ??= reason === 'timeout' ? 'The invocation timed out before it finished' : 'The environment shut down before the invocation finished';
      }
      out.push(this.#emit(inv));
    }
    if (out.length > 0) this.#sink.addSpans(out);
  }

  #isRecent(requestId: string): boolean {
    for (const inv of this.#recent) if (inv.requestId === requestId) return true;
    return false;
  }

  /** The live invocation, or a new one; undefined when it was already sent. */
  #obtain(requestId: string, at: number): Invocation | undefined {
    const existing = this.#live.get(requestId);
    if (existing) return existing;
    if (this.#isRecent(requestId)) return undefined;
    // A new invocation: what finished before it cannot be refined any more.
    const ready: Span[] = [];
    for (const inv of [...this.#live.values()]) if (inv.status !== undefined) ready.push(this.#emit(inv));
    if (this.#live.size >= maxLive) {
      // Never finished (no runtimeDone reached us): keep memory bounded, report it as lost.
      const oldest = this.#live.values().next().value!;
      this.finished(oldest.requestId, { status: 'failure', errorType: 'Unfinished', at });
      ready.push(this.#emit(oldest));
    }
    if (ready.length > 0) this.#sink.addSpans(ready);
    const inv: Invocation = {
      requestId,
      startMs: at,
      coldStart: !this.#sawInvocation,
      spanId: newSpanId(),
      traceId: newTraceId(),
      joined: false,
      meta: {},
      metrics: {},
    };
    this.#sawInvocation = true;
    this.#live.set(requestId, inv);
    return inv;
  }

  /** Parses the payload once: trigger, and the trace it continues. */
  #resolve(inv: Invocation): void {
    const event = inv.event;
    if (event === undefined) return;
    inv.event = undefined;
    const parsed = parseJson(event);
    if (parsed === undefined) return;
    inv.trigger = inferTrigger(parsed, this.#resource.region);
    let headers = inv.trigger?.headers;
    if (!inv.trigger) {
      // A direct invoke that forwards an HTTP request's headers (a common pattern) still carries a trace.
      const raw = asObject(asObject(parsed)?.headers);
      if (raw) {
        headers = {};
        for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') headers[k.toLowerCase()] = v;
      }
    }
    const ctx = extractTraceContext(headers ?? {}, inv.trigger?.carrier);
    if (!ctx) return;
    if (!inv.joined) inv.traceId = ctx.traceId;
    if (!isZeroId(ctx.parentId)) inv.parentId = ctx.parentId;
    if (ctx.samplingPriority !== undefined) inv.samplingPriority = ctx.samplingPriority;
  }

  #join(traceId: string, group: Span[]): void {
    const known = this.#traceMap.get(traceId);
    if (known) {
      // A later batch of a trace already joined: its parents were in the earlier batch.
      for (const span of group) {
        span.traceId = known.traceId;
        span.requestId = known.requestId;
        if (!span.parentId || isZeroId(span.parentId)) span.parentId = known.spanId;
      }
      return;
    }
    const roots = rootsOf(group);
    if (roots.length === 0) return;
    let first = roots[0]!;
    for (const root of roots) if (root.startMicros < first.startMicros) first = root;
    const inv = this.#match(first);
    if (!inv) return;
    this.#joinTo(traceId, group, inv, roots);
  }

  #joinTo(traceId: string, group: Span[], inv: Invocation, roots: Span[] = rootsOf(group)): void {
    this.#resolve(inv);
    inv.joined = true;
    for (const span of group) {
      span.traceId = inv.traceId;
      span.requestId = inv.requestId;
    }
    // Only a tracer's own roots go under aws.lambda: a span whose parent is merely in a later
    // batch (OpenTelemetry's SimpleSpanProcessor exports each span as it ends, children
    // first) keeps its parent. A root that continued the caller's context (the parent the
    // aws.lambda span has too) counts as a root.
    for (const root of roots) {
      const ownRoot = !root.parentId || isZeroId(root.parentId) || root.parentId === inv.parentId;
      if (root.spanId !== inv.spanId && ownRoot) root.parentId = inv.spanId;
    }
    this.#traceMap.set(traceId, inv);
    if (this.#traceMap.size > maxTraceMap) this.#traceMap.delete(this.#traceMap.keys().next().value!);
  }

  /**
   * The invocation a tracer root belongs to: the one its request id names, else the
   * latest one whose window holds the root's start (several overlap on managed instances).
   */
  #match(root: Span): Invocation | undefined {
    const m = root.meta ?? {};
    // Datadog tracers, then OpenTelemetry's FaaS conventions (current, then older).
    const named = m['aws.lambda.request_id'] ?? m['request_id'] ?? m['faas.invocation_id'] ?? m['faas.execution'];
    if (named !== undefined) {
      const inv = this.#live.get(named) ?? this.#recent.find((r) => r.requestId === named);
      if (inv) return inv;
    }
    const t = root.startMicros / 1000;
    // Spans usually arrive while their invocation still runs (tracers flush before the
    // handler returns). With one invocation open, as on demand, it is the owner: the
    // INVOKE reaches the agent a little after the runtime, so start times alone would
    // give a span that began just before it to the previous invocation.
    let open: Invocation | undefined;
    let openCount = 0;
    for (const inv of this.#live.values()) {
      if (inv.status === undefined) {
        open = inv;
        openCount++;
      }
    }
    if (openCount === 1 && t >= open!.startMs - joinBeforeMs) return open;
    let best: Invocation | undefined;
    let early: Invocation | undefined;
    const consider = (inv: Invocation): void => {
      if (t < inv.startMs - joinBeforeMs || t > (inv.endMs ?? Infinity) + joinAfterMs) return;
      if (inv.startMs <= t) {
        if (!best || inv.startMs > best.startMs) best = inv;
      } else if (!early || inv.startMs < early.startMs) {
        early = inv;
      }
    };
    for (const inv of this.#live.values()) consider(inv);
    for (const inv of this.#recent) consider(inv);
    return best ?? early;
  }

  #emit(inv: Invocation): Span {
    this.#resolve(inv);
    this.#live.delete(inv.requestId);
    this.#recent.push(inv);
    if (this.#recent.length > maxRecent) this.#recent = this.#recent.slice(-maxRecent);
    const span = this.#span(inv);
    // Only what joining needs stays in `recent`.
    inv.response = undefined;
    inv.requestCapture = undefined;
    inv.trigger = undefined;
    return span;
  }

  #span(inv: Invocation): Span {
    const r = this.#resource;
    const meta: Record<string, string> = {
      request_id: inv.requestId,
      function_arn: (inv.functionArn ?? r.functionArn).toLowerCase(),
      function_version: r.version,
      functionname: r.functionName.toLowerCase(),
      cold_start: inv.coldStart ? 'true' : 'false',
      runtime: r.runtime,
      region: r.region,
      account_id: r.accountId,
      'span.kind': 'server',
    };
    if (inv.trigger) Object.assign(meta, inv.trigger.tags);
    let error = inv.status !== undefined && inv.status !== 'success';
    if (inv.response !== undefined) {
      if (error) this.#errorDetails(inv.response, meta);
      else if (inv.trigger && httpKinds.has(inv.trigger.kind)) error = this.#httpStatus(inv.response, inv.trigger, meta);
    }
    if (error) {
      meta['error.type'] ??= inv.errorType ?? (inv.status === 'timeout' ? 'Timeout' : 'Error');
      if (inv.status === 'timeout') meta['error.message'] ??= 'Task timed out';
    }
    if (this.#capture) {
      if (inv.requestCapture !== undefined) meta['function.request'] = inv.requestCapture;
      if (inv.response !== undefined) meta['function.response'] = truncated(inv.response);
    }
    Object.assign(meta, inv.meta);
    const endMs = inv.endMs ?? this.#now();
    const durationMs = inv.durationMs ?? Math.max(0, endMs - inv.startMs);
    const span: Span = {
      traceId: inv.traceId,
      spanId: inv.spanId,
      name: 'aws.lambda',
      service: this.#service,
      resource: r.functionName,
      type: 'serverless',
      startMicros: Math.round(inv.startMs * 1000),
      durationMicros: Math.round(durationMs * 1000),
      error,
      meta,
      metrics: { _sampling_priority_v1: inv.samplingPriority ?? 1, '_dd.top_level': 1, ...inv.metrics },
      requestId: inv.requestId,
    };
    if (inv.parentId) span.parentId = inv.parentId;
    return span;
  }

  /** `{"errorType","errorMessage","stackTrace"}`, the Runtime API's error body. */
  #errorDetails(body: Buffer, meta: Record<string, string>): void {
    const parsed = asObject(parseJson(body));
    if (!parsed) return;
    if (typeof parsed.errorType === 'string') meta['error.type'] = parsed.errorType;
    if (typeof parsed.errorMessage === 'string') meta['error.message'] = parsed.errorMessage;
    const stack = parsed.stackTrace ?? parsed.trace;
    if (Array.isArray(stack) && stack.every((l) => typeof l === 'string')) meta['error.stack'] = stack.join('\n');
  }

  /** http.status_code from the trigger's response object; true when it is a 5xx. */
  #httpStatus(body: Buffer, trigger: TriggerInfo, meta: Record<string, string>): boolean {
    const cut = body.indexOf(preludeSeparator);
    const parsed = parseJson(cut >= 0 ? body.subarray(0, cut) : body);
    const response = asObject(parsed);
    let status: number | undefined;
    const raw = response?.statusCode;
    if (typeof raw === 'number' && Number.isInteger(raw)) status = raw;
    else if (typeof raw === 'string' && /^\d{3}$/.test(raw)) status = Number(raw);
    // HTTP APIs and function URLs answer 200 for a function result without statusCode (§5.2).
    else if (trigger.kind === 'api-gateway-http' || trigger.kind === 'function-url') status = 200;
    if (status === undefined) return false;
    meta['http.status_code'] = String(status);
    return status >= 500;
  }
}
