/**
 * One invocation inside an environment, with its phase machine (lifecycle.ts) and the
 * moments Lambda's telemetry measures: when the runtime got the event, when its answer
 * started and ended, when it asked for the next event, and which extensions still work
 * on the INVOKE event (the post-runtime phase).
 */
import { StateMachine } from '../lifecycle/state-machine.ts';
import type { Extension } from './extension-registry.ts';
import { invocationTransitions, type InvocationPhase } from './lifecycle.ts';
import type { ResponseTiming } from './runtime-api-server.ts';
import type { InvokeOutcome, InvokeRequest, InvokeResult } from './types.ts';
import { billedDurationMs } from './platform-log-lines.ts';
import { span, type Span } from './telemetry-events.ts';

export class Invocation {
  readonly request: InvokeRequest;
  readonly machine: StateMachine<InvocationPhase>;
  readonly startedAt = performance.now();
  readonly initDurationMs: number | undefined;
  readonly #resolve: (result: InvokeResult) => void;
  timer: NodeJS.Timeout | undefined;
  /** Extensions that got this INVOKE and have not called `event/next` since. */
  readonly pendingExtensions = new Set<Extension>();
  /** When the event went to the runtime. */
  dispatchedAt: number | undefined;
  /** When the runtime's answer started and ended. */
  response: ResponseTiming | undefined;
  producedBytes: number | undefined;
  /** When the runtime asked for its next event after answering. */
  runtimeReadyAt: number | undefined;
  /** When the runtime answered; the post-runtime phase starts here. */
  answeredAt: number | undefined;
  outcome: InvokeOutcome | undefined;
  /** The caller has its result. */
  answered = false;

  constructor(request: InvokeRequest, initDurationMs: number | undefined, resolve: (result: InvokeResult) => void) {
    this.request = request;
    this.initDurationMs = initDurationMs;
    this.#resolve = resolve;
    this.machine = new StateMachine<InvocationPhase>('invocation', 'queued', invocationTransitions);
  }

  get id(): string {
    return this.request.requestId;
  }

  get phase(): InvocationPhase {
    return this.machine.state;
  }

  /** The caller's result at this moment (duration so far). */
  result(outcome: InvokeOutcome, maxMemoryUsedMb: number, logTail?: string): InvokeResult {
    const durationMs = performance.now() - this.startedAt;
    return {
      outcome,
      requestId: this.id,
      durationMs,
      billedDurationMs: billedDurationMs(durationMs),
      maxMemoryUsedMb,
      initDurationMs: this.initDurationMs,
      ...(logTail !== undefined ? { logTail } : {}),
    };
  }

  /** Answers the caller once; later calls are ignored. */
  answer(result: InvokeResult): void {
    if (this.answered) return;
    this.answered = true;
    this.#resolve(result);
  }

  /** platform.runtimeDone spans: to the first byte, the whole answer, then until `/next`. */
  runtimeSpans(): Span[] {
    const spans: Span[] = [];
    const from = this.dispatchedAt;
    const r = this.response;
    if (from === undefined || !r) return spans;
    spans.push(span('responseLatency', from, r.startedAt), span('responseDuration', r.startedAt, r.endedAt));
    if (this.runtimeReadyAt !== undefined) spans.push(span('runtimeOverhead', r.endedAt, this.runtimeReadyAt));
    return spans;
  }

  /** Managed instances report the response spans on platform.report. */
  responseSpans(): Span[] {
    return this.runtimeSpans().filter((s) => s.name !== 'runtimeOverhead');
  }
}
