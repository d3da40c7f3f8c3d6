/**
 * The Invoke phase of one environment: its invocation slots (one on demand, MaxConcurrency
 * on managed instances), the runtime's parked `/next` long-polls, invocations waiting for
 * one, and each invocation's way through its phases (lifecycle.ts): the event to the
 * runtime and to the extensions registered for INVOKE, the caller answered when the
 * runtime answers, then the post-runtime phase until the runtime (on demand) and those
 * extensions call `next` again, and the end: END, REPORT, platform.runtimeDone and
 * platform.report, the slot free again. Timeouts and crashes end invocations early.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RuntimeErrorType } from '../errors/runtime-error-types.ts';
import type { Extension, ExtensionRegistry } from './extension-registry.ts';
import { Invocation } from './invocation.ts';
import type { StopReason } from './lifecycle.ts';
import type { LogCollector } from './log-collector.ts';
import * as lines from './platform-log-lines.ts';
import { accepted, errorReply, maxStreamedResponseBytes, type ResponseTiming, type RuntimeApiReply } from './runtime-api-server.ts';
import * as events from './telemetry-events.ts';
import type { TelemetryHub } from './telemetry-hub.ts';
import type { EnvironmentSpec, InvokeOutcome, InvokeRequest, InvokeResult, StreamCompletion } from './types.ts';

export interface SlotsContext {
  spec: EnvironmentSpec;
  managed: boolean;
  slots: number;
  logs: LogCollector;
  hub: TelemetryHub;
  registry: ExtensionRegistry;
  facts: events.TelemetryFacts;
  /** Max Memory Used so far in MB; `read` looks at the processes now (else the last value). */
  memoryUsedMb(read: boolean): number;
  /** Invocations are in flight (true) or none is (false): the memory monitor watches meanwhile. */
  busy(busy: boolean): void;
  /** A slot is free again. */
  slotFreed(): void;
  stop(reason: StopReason): void;
}

interface Failure {
  status: 'timeout' | 'error';
  outcome: InvokeOutcome;
  /** Managed instances: the runtime still works on it, its slot stays taken. */
  keepSlot?: boolean;
}

export function platformError(errorType: string, errorMessage: string): InvokeOutcome {
  return { kind: 'platform-error', errorType, errorMessage, payload: Buffer.from(JSON.stringify({ errorType, errorMessage })) };
}

export class InvocationSlots {
  /** Slots whose invocation ended this turn; freed once END and REPORT are written. */
  #releasing = 0;
  readonly #c: SlotsContext;
  /** The runtime's `/next` long-polls, waiting for an event. */
  readonly #parked: ServerResponse[] = [];
  /** Invocations not done yet, by request id. */
  readonly #invocations = new Map<string, Invocation>();
  /** Invocations waiting for a runtime `/next`. */
  readonly #queue: Invocation[] = [];
  /** Managed instances: timed-out invocations the runtime still works on. */
  readonly #held = new Set<string>();

  constructor(context: SlotsContext) {
    this.#c = context;
  }

  /** Slots taken: invocations in flight, and timed-out ones still with the runtime. */
  get inFlight(): number {
    return this.#invocations.size + this.#held.size;
  }

  /** Invocations whose caller has its answer but whose post-runtime phase is not over. */
  get finishing(): number {
    let n = this.#releasing;
    for (const inv of this.#invocations.values()) if (inv.phase === 'post-runtime') n++;
    return n;
  }

  /** Starts an invocation: the event goes to the INVOKE extensions and to a waiting `/next`. */
  start(request: InvokeRequest, initDurationMs: number | undefined): Promise<InvokeResult> {
    const { spec, logs, hub, registry } = this.#c;
    const { requestId } = request;
    let inv!: Invocation;
    const result = new Promise<InvokeResult>((resolve) => (inv = new Invocation(request, initDurationMs, resolve)));
    this.#invocations.set(requestId, inv);
    if (this.#invocations.size === 1) this.#c.busy(true);
    logs.beginInvoke(requestId, request.wantLogTail);
    logs.platform(lines.startLine(requestId, spec.version), requestId);
    if (hub.active) hub.platform('platform.start', events.start(this.#c.facts, requestId, request.traceId));
    const deadlineMs = Date.now() + spec.timeoutSeconds * 1000;
    inv.timer = setTimeout(() => this.#timedOut(inv), spec.timeoutSeconds * 1000);
    // The runtime first: it has the function to run; the extensions' INVOKE follows at once.
    const next = this.#takeParked();
    if (next) this.#dispatch(inv, next, deadlineMs);
    else this.#queue.push(inv);
    const extensions = registry.registered();
    if (extensions.length > 0) {
      const event = { eventType: 'INVOKE' as const, deadlineMs, requestId, invokedFunctionArn: request.invokedFunctionArn, tracing: events.tracing(request.traceId) };
      for (const ext of extensions) {
        if (!ext.events.has('INVOKE') || !ext.active) continue;
        inv.pendingExtensions.add(ext);
        registry.deliver(ext, event);
      }
    }
    return result;
  }

  #takeParked(): ServerResponse | undefined {
    let res = this.#parked.pop();
    while (res?.destroyed) res = this.#parked.pop();
    return res;
  }

  #dispatch(inv: Invocation, res: ServerResponse, deadlineMs: number): void {
    const { request } = inv;
    inv.machine.transition('running');
    inv.dispatchedAt = performance.now();
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/json',
      'Content-Length': request.payload.length,
      'Lambda-Runtime-Aws-Request-Id': request.requestId,
      'Lambda-Runtime-Deadline-Ms': String(Math.round(deadlineMs)),
      'Lambda-Runtime-Invoked-Function-Arn': request.invokedFunctionArn,
      'Lambda-Runtime-Trace-Id': request.traceId,
    };
    if (request.clientContext) headers['Lambda-Runtime-Client-Context'] = request.clientContext;
    res.writeHead(200, headers);
    res.end(request.payload);
  }

  /** The runtime's first `/next`, at the end of its Init. */
  parkFirst(res: ServerResponse): void {
    this.#parked.push(res);
  }

  /** `/next` after Init: an event if one waits, else the long-poll waits for one. */
  next(res: ServerResponse, waitingState: 'Ready' | 'Running'): RuntimeApiReply | undefined {
    const queued = this.#queue.shift();
    if (queued) {
      const deadlineMs = Date.now() + this.#c.spec.timeoutSeconds * 1000 - (performance.now() - queued.startedAt);
      this.#dispatch(queued, res, deadlineMs);
      return undefined;
    }
    if (!this.#c.managed) {
      const inv = this.#invocations.values().next().value;
      if (inv?.phase === 'post-runtime' && inv.runtimeReadyAt === undefined) {
        this.#parked.push(res);
        this.#runtimeReady(inv);
        return undefined;
      }
    }
    for (let i = this.#parked.length - 1; i >= 0; i--) if (this.#parked[i]!.destroyed) this.#parked.splice(i, 1);
    if (this.#parked.length >= this.#c.slots || (!this.#c.managed && this.#invocations.size > 0)) {
      return errorReply(403, 'InvalidStateTransition', `State transition from ${waitingState} to Ready failed for runtime. Error: State transition is not allowed`);
    }
    this.#parked.push(res);
    return undefined;
  }

  response(requestId: string, body: Buffer, contentType: string | undefined, timing: ResponseTiming): RuntimeApiReply {
    const inv = this.#running(requestId);
    if (!inv) return this.#lateOrInvalid(requestId);
    inv.response = timing;
    inv.producedBytes = body.length;
    this.#runtimeAnswered(inv, { kind: 'success', payload: body, contentType });
    return accepted;
  }

  /**
   * A streamed response: the caller gets the stream at once; the runtime is answered
   * (and the response phase ends) when the stream does. Bytes past Lambda's streamed
   * response limit end the stream with Function.ResponseSizeTooLarge.
   */
  responseStream(requestId: string, req: IncomingMessage, contentType: string | undefined, startedAt: number): Promise<RuntimeApiReply> {
    const inv = this.#running(requestId);
    if (!inv) {
      req.resume();
      return Promise.resolve(this.#lateOrInvalid(requestId));
    }
    let settle!: (completion: StreamCompletion) => void;
    const completion = new Promise<StreamCompletion>((resolve) => (settle = resolve));
    let producedBytes = 0;
    let tooLarge = false;
    const ended = new Promise<void>((resolve) => {
      req.once('end', () => resolve());
      req.once('close', () => resolve());
    });
    async function* body(): AsyncIterable<Buffer> {
      try {
        for await (const chunk of req as AsyncIterable<Buffer>) {
          producedBytes += chunk.length;
          if (producedBytes > maxStreamedResponseBytes) {
            tooLarge = true;
            break;
          }
          yield chunk;
        }
      } finally {
        // A caller that stops reading must not leave the runtime blocked on its writes.
        if (!req.readableEnded) req.resume();
      }
    }
    this.#runtimeAnswered(inv, { kind: 'stream', contentType, body: body(), completion }, true);
    return ended.then(() => {
      const trailers = req.trailers;
      const errorType = tooLarge ? RuntimeErrorType.ResponseSizeTooLarge : trailers['lambda-runtime-function-error-type'];
      const encoded = trailers['lambda-runtime-function-error-body'];
      const errorBody = tooLarge
        ? JSON.stringify({ errorMessage: `Response payload size exceeded maximum allowed payload size (${maxStreamedResponseBytes} bytes).`, errorType })
        : encoded
          ? Buffer.from(encoded, 'base64').toString('utf8')
          : undefined;
      inv.response = { startedAt, endedAt: performance.now() };
      inv.producedBytes = producedBytes;
      settle({ errorType, errorBody, producedBytes });
      return accepted;
    });
  }

  responseTooLarge(requestId: string, timing: ResponseTiming): RuntimeApiReply {
    const inv = this.#running(requestId);
    if (!inv) return this.#lateOrInvalid(requestId);
    inv.response = timing;
    const errorMessage = 'Response payload size exceeded maximum allowed payload size (6291556 bytes).';
    const errorType = RuntimeErrorType.ResponseSizeTooLarge;
    this.#runtimeAnswered(inv, { kind: 'function-error', errorType, payload: Buffer.from(JSON.stringify({ errorMessage, errorType })) });
    return errorReply(413, 'RequestEntityTooLarge', 'Exceeded maximum allowed payload size (6291556 bytes).');
  }

  error(requestId: string, body: Buffer, errorType: string, timing: ResponseTiming): RuntimeApiReply {
    const inv = this.#running(requestId);
    if (!inv) return this.#lateOrInvalid(requestId);
    inv.response = timing;
    inv.producedBytes = body.length;
    this.#runtimeAnswered(inv, { kind: 'function-error', payload: body, errorType });
    return accepted;
  }

  #running(requestId: string): Invocation | undefined {
    const inv = this.#invocations.get(requestId);
    return inv?.phase === 'running' ? inv : undefined;
  }

  /** Managed instances: a timed-out invocation's late answer frees its slot. */
  #lateOrInvalid(requestId: string): RuntimeApiReply {
    if (!this.#held.delete(requestId)) return errorReply(400, 'InvalidRequestID', 'Invalid request ID');
    this.#c.slotFreed();
    return accepted;
  }

  /** An extension called `event/next`: it is done with the INVOKE it had. */
  extensionReady(ext: Extension): void {
    for (const inv of this.#invocations.values()) if (inv.pendingExtensions.delete(ext)) this.#maybeFinish(inv);
  }

  /** The runtime answered: the caller gets the result; the post-runtime phase begins. */
  #runtimeAnswered(inv: Invocation, outcome: InvokeOutcome, streaming = false): void {
    inv.machine.transition('post-runtime');
    inv.answeredAt = performance.now();
    inv.outcome = outcome;
    // Without a log tail to return, the caller need not wait for END and REPORT; a
    // stream must reach its reader at once (its end is what lets the runtime go on).
    if (!inv.request.wantLogTail || streaming) inv.answer(inv.result(outcome, this.#c.memoryUsedMb(false)));
    this.#maybeFinish(inv);
  }

  /** On demand: the runtime asked for its next event; platform.runtimeDone. */
  #runtimeReady(inv: Invocation): void {
    inv.runtimeReadyAt = performance.now();
    const { hub } = this.#c;
    if (hub.active) {
      const failed = inv.outcome && inv.outcome.kind !== 'success' && inv.outcome.kind !== 'stream' ? inv.outcome : undefined;
      hub.platform(
        'platform.runtimeDone',
        events.runtimeDone({
          requestId: inv.id,
          status: failed ? 'error' : 'success',
          errorType: failed?.errorType,
          durationMs: inv.runtimeReadyAt - (inv.dispatchedAt ?? inv.startedAt),
          producedBytes: inv.producedBytes,
          spans: inv.runtimeSpans(),
          traceId: inv.request.traceId,
        }),
      );
    }
    this.#maybeFinish(inv);
  }

  /** The invocation ends once the runtime (on demand) and its INVOKE extensions called next. */
  #maybeFinish(inv: Invocation): void {
    if (inv.phase !== 'post-runtime' || inv.pendingExtensions.size > 0) return;
    if (!this.#c.managed && inv.runtimeReadyAt === undefined) return;
    this.#finish(inv);
  }

  /** Ends every invocation in flight with a platform error (a crash, or the environment stopping). */
  failAll(errorType: string, message: (requestId: string) => string, logEach = false): void {
    for (const inv of [...this.#invocations.values()]) {
      const errorMessage = message(inv.id);
      if (logEach) this.#c.logs.platform(`${errorMessage}\n${errorType}`, inv.id);
      if (this.#c.hub.active) this.#c.hub.logsApiPlatform('platform.fault', `${errorMessage}\n${errorType}`);
      this.#finish(inv, { status: 'error', outcome: platformError(errorType, errorMessage) });
    }
  }

  #timedOut(inv: Invocation): void {
    if (inv.phase === 'done') return;
    const { requestId } = inv.request;
    const seconds = this.#c.spec.timeoutSeconds;
    const outcome = platformError(RuntimeErrorType.SandboxTimeout, `RequestId: ${requestId} Error: Task timed out after ${seconds.toFixed(2)} seconds`);
    this.#c.logs.platform(lines.timeoutLine(requestId, seconds, new Date()), requestId);
    if (!this.#c.managed) {
      // The environment is reset: its slot must not be offered again before it stops.
      this.#finish(inv, { status: 'timeout', outcome, keepSlot: true });
      this.#c.stop('timeout');
      return;
    }
    // Other invocations share the process: this one's slot stays taken until the runtime answers.
    const withRuntime = inv.phase !== 'post-runtime';
    this.#finish(inv, { status: 'timeout', outcome, keepSlot: withRuntime });
    if (withRuntime) this.#held.add(requestId);
    if (this.#held.size >= this.#c.slots) this.#c.stop('timeout');
  }

  /**
   * Ends an invocation: answers the caller if it still waits, then writes END and REPORT
   * and sends platform.report. Deferred by one turn of the event loop so that output the
   * runtime wrote before answering (already in the pipe) is read first and lands before
   * END, as on Lambda. Then the slot is free.
   */
  #finish(inv: Invocation, failed?: Failure): void {
    if (inv.phase === 'done') return;
    const withRuntime = inv.phase !== 'post-runtime';
    inv.machine.transition('done');
    clearTimeout(inv.timer);
    this.#invocations.delete(inv.id);
    const queuedAt = this.#queue.indexOf(inv);
    if (queuedAt >= 0) this.#queue.splice(queuedAt, 1);
    if (this.#invocations.size === 0) this.#c.busy(false);
    // Until END and REPORT are written (next turn) the slot is about to be free, not yet
    // free: a sequential caller must wait for it, not start another environment.
    const releasing = !failed?.keepSlot;
    if (releasing) this.#releasing++;
    const endedAt = performance.now();
    // Rounded once, to the microsecond platform.report carries: the REPORT line and the
    // event then say the same duration (not two roundings of a slightly different one).
    const durationMs = events.ms(endedAt - inv.startedAt);
    const maxMemoryUsedMb = this.#c.memoryUsedMb(true);
    const outcome = failed && (withRuntime || !inv.outcome) ? failed.outcome : inv.outcome!;
    if (!inv.request.wantLogTail) inv.answer(inv.result(outcome, maxMemoryUsedMb));
    const errorType = failed?.outcome.kind === 'platform-error' ? failed.outcome.errorType : undefined;
    const { hub, logs } = this.#c;
    if (failed && withRuntime && !this.#c.managed && hub.active) {
      hub.platform('platform.runtimeDone', events.runtimeDone({ requestId: inv.id, status: failed.status, errorType, durationMs, spans: [], traceId: inv.request.traceId }));
    }
    setImmediate(() => {
      const { requestId } = inv.request;
      const billed = lines.billedDurationMs(durationMs);
      logs.platform(lines.endLine(requestId), requestId);
      const report = { requestId, durationMs, billedDurationMs: billed, memorySizeMb: this.#c.spec.memoryMb, maxMemoryUsedMb, initDurationMs: inv.initDurationMs };
      logs.platform(lines.reportLine({ ...report, status: failed?.status, errorType }), requestId);
      if (hub.active) this.#reportTelemetry(inv, durationMs, billed, maxMemoryUsedMb, endedAt, failed?.status, errorType);
      const logTail = logs.endInvoke(requestId);
      inv.answer(inv.result(outcome, maxMemoryUsedMb, logTail));
      if (releasing) {
        this.#releasing--;
        this.#c.slotFreed();
      }
    });
  }

  #reportTelemetry(inv: Invocation, durationMs: number, billed: number, maxMemoryUsedMb: number, endedAt: number, status?: 'timeout' | 'error', errorType?: string): void {
    const { hub, registry, facts } = this.#c;
    hub.logsApiPlatform('platform.end', { requestId: inv.id });
    // The post-runtime phase: from the runtime's next `/next` until the extensions' (§2.4).
    const postRuntimeFrom = inv.runtimeReadyAt ?? inv.answeredAt;
    const spans = this.#c.managed
      ? inv.responseSpans()
      : registry.size > 0 && postRuntimeFrom !== undefined
        ? [events.span('extensionOverhead', postRuntimeFrom, endedAt)]
        : [];
    const { requestId, traceId } = inv.request;
    hub.platform(
      'platform.report',
      events.report(facts, { requestId, status: status ?? 'success', errorType, durationMs, billedDurationMs: billed, maxMemoryUsedMb, initDurationMs: inv.initDurationMs, spans, traceId }),
    );
  }

  /** Closes the runtime's long-polls (the environment is going away). */
  destroyParked(): void {
    for (const res of this.#parked) res.destroy();
    this.#parked.length = 0;
  }
}
