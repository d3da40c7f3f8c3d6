/**
 * When to flush, as the Datadog extension decides it (bottlecap `lifecycle/flush_control.rs`
 * and `invocation_times.rs`; datadog-extension-notes.md §2). This class only decides; the
 * agent's loop does the flushing and reports back, so the rules can be tested with a fake clock.
 *
 * How the loop uses it, per invocation:
 *   1. `invocationStarted()` when an INVOKE arrives: records the start and fixes this
 *      invocation's `decision()` (evaluated once, as Datadog does).
 *   2. `atInvocationStart()`: `blocking` → flush and wait before handing the event on;
 *      `background` → start a flush and do not wait (`flushStarted()`, then `flushSettled()`).
 *   3. While waiting for the invocation to end, a timer of `raceIntervalMs()` (when defined)
 *      does blocking flushes, so that a long invocation still ships its data.
 *   4. `atInvocationEnd()` once `platform.runtimeDone` arrives: `blocking` → flush before `/next`.
 *   Every flush that starts is reported with `flushed()` (blocking) or `flushStarted()` (background).
 *
 * In a managed-instance environment there are no INVOKE events to hang flushes on, and an
 * invoke must never wait: a `backgroundIntervalMs()` timer calls `atBackgroundTick()` instead,
 * and the per-invocation answers are always `none`.
 */

import { formatFlushStrategy, type FlushStrategy } from './strategy.ts';

export type FlushDecision = 'end' | 'periodic' | 'continuous' | 'dont';
export type InvocationStartAction = 'none' | 'blocking' | 'background';
export type InvocationEndAction = 'none' | 'blocking';
export type BackgroundTickAction = 'none' | 'background';

export interface FlushControlOptions {
  strategy: FlushStrategy;
  /** `DD_FLUSH_TIMEOUT`: the adaptive default goes continuous when 20 invocations fit in it. */
  flushTimeoutMs: number;
  /** `AWS_LAMBDA_INITIALIZATION_TYPE=lambda-managed-instances`. */
  managedInstances: boolean;
  now?: () => number;
}

/** The adaptive default looks at this many recent invocation starts. */
const INVOCATION_WINDOW = 20;
/** Mean gap between invocations below which the default stops flushing at every end. */
const FREQUENT_MEAN_GAP_MS = 120_000;
/** The interval the default uses once it adapts to periodic or continuous flushing. */
const ADAPTED_INTERVAL_MS = 20_000;
/** The default's race timer: a long invocation still flushes once a minute. */
const DEFAULT_RACE_INTERVAL_MS = 60_000;
/** Managed instances flush in the background this often unless `continuously,N` says otherwise. */
const MANAGED_INTERVAL_MS = 30_000;

export class FlushControl {
  /** The strategy in force: the configured one, or the managed-instance override. */
  readonly strategy: FlushStrategy;
  /** Set when a managed-instance environment overrode the configured strategy. */
  readonly warning: string | undefined;

  readonly #flushTimeoutMs: number;
  readonly #managed: boolean;
  readonly #now: () => number;
  /** Ring of the last INVOCATION_WINDOW start times; `#startCount` of them are filled. */
  readonly #starts = new Float64Array(INVOCATION_WINDOW);
  #startCount = 0;
  #nextStart = 0;
  #lastFlushAt: number | undefined;
  #pendingFlushes = 0;
  #decision: FlushDecision | undefined;

  constructor(options: FlushControlOptions) {
    this.#flushTimeoutMs = options.flushTimeoutMs;
    this.#managed = options.managedInstances;
    this.#now = options.now ?? Date.now;
    const configured = options.strategy;
    if (!this.#managed || configured.kind === 'continuously') {
      this.strategy = configured;
      this.warning = undefined;
    } else {
      this.strategy = { kind: 'continuously', intervalMs: MANAGED_INTERVAL_MS };
      this.warning =
        configured.kind === 'default'
          ? undefined
          : `flush strategy ${formatFlushStrategy(configured)} does not apply to managed instances, which only flush in the background; using continuously,${MANAGED_INTERVAL_MS}`;
    }
  }

  /** Records an invocation's start and fixes its decision; returns that decision. */
  invocationStarted(at: number = this.#now()): FlushDecision {
    this.#starts[this.#nextStart] = at;
    this.#nextStart = (this.#nextStart + 1) % INVOCATION_WINDOW;
    if (this.#startCount < INVOCATION_WINDOW) this.#startCount++;
    this.#decision = this.#evaluate(at);
    return this.#decision;
  }

  /** The current invocation's decision (evaluated now when no invocation has started yet). */
  decision(): FlushDecision {
    return this.#decision ?? this.#evaluate(this.#now());
  }

  /** What the default has adapted to right now; the configured strategy otherwise. */
  effectiveStrategy(at: number = this.#now()): FlushStrategy {
    return this.strategy.kind === 'default' ? this.#adapt(at) : this.strategy;
  }

  atInvocationStart(): InvocationStartAction {
    const decision = this.decision();
    if (decision === 'periodic') return 'blocking';
    if (decision === 'continuous' && this.#pendingFlushes === 0) return 'background';
    return 'none';
  }

  atInvocationEnd(): InvocationEndAction {
    return this.decision() === 'end' ? 'blocking' : 'none';
  }

  /**
   * The period of the timer that flushes (blocking) while an invocation runs long: `end,N` → N,
   * the default → 60 s. `end` has none (Datadog's is 15 min, past any invocation's timeout),
   * and neither have `periodically`/`continuously`, whose flushes happen between invocations.
   */
  raceIntervalMs(): number | undefined {
    if (this.#managed) return undefined;
    if (this.strategy.kind === 'end-periodically') return this.strategy.intervalMs;
    if (this.strategy.kind === 'default') return DEFAULT_RACE_INTERVAL_MS;
    return undefined;
  }

  /** The period of the background flush timer: managed instances only. */
  backgroundIntervalMs(): number | undefined {
    return this.#managed && this.strategy.kind === 'continuously' ? this.strategy.intervalMs : undefined;
  }

  /** A background tick starts a flush only when none is still running (Datadog's MissedTickBehavior::Skip). */
  atBackgroundTick(): BackgroundTickAction {
    return this.#pendingFlushes === 0 ? 'background' : 'none';
  }

  /** A flush began at `at`: the interval strategies count from here. */
  flushed(at: number = this.#now()): void {
    this.#lastFlushAt = at;
  }

  /** A background flush began: it counts as a flush, and is pending until `flushSettled()`. */
  flushStarted(at: number = this.#now()): void {
    this.flushed(at);
    this.#pendingFlushes++;
  }

  flushSettled(): void {
    if (this.#pendingFlushes > 0) this.#pendingFlushes--;
  }

  get flushPending(): boolean {
    return this.#pendingFlushes > 0;
  }

  #evaluate(at: number): FlushDecision {
    if (this.#managed) return 'dont';
    const strategy = this.effectiveStrategy(at);
    switch (strategy.kind) {
      case 'default': // #adapt never returns it
      case 'end':
        return 'end';
      case 'end-periodically':
        return this.#due(at, strategy.intervalMs) ? 'end' : 'dont';
      case 'periodically':
        return this.#due(at, strategy.intervalMs) ? 'periodic' : 'dont';
      case 'continuously':
        return this.#due(at, strategy.intervalMs) ? 'continuous' : 'dont';
    }
  }

  /**
   * The adaptive default: End until 20 invocations have been seen; then, if they came with a
   * mean gap under 120 s, Continuously (all 20 within the flush timeout) or Periodically, 20 s.
   */
  #adapt(at: number): FlushStrategy {
    if (this.#startCount < INVOCATION_WINDOW) return { kind: 'end' };
    // The ring is full, so the slot about to be overwritten holds the oldest start.
    const elapsed = at - this.#starts[this.#nextStart];
    if (elapsed / (INVOCATION_WINDOW - 1) >= FREQUENT_MEAN_GAP_MS) return { kind: 'end' };
    return elapsed < this.#flushTimeoutMs
      ? { kind: 'continuously', intervalMs: ADAPTED_INTERVAL_MS }
      : { kind: 'periodically', intervalMs: ADAPTED_INTERVAL_MS };
  }

  /**
   * Datadog compares whole seconds (`now_s - last_flush_s > interval_ms / 1000`); we compare
   * milliseconds, so `periodically,1500` means 1.5 s here rather than "more than 1 s".
   */
  #due(at: number, intervalMs: number): boolean {
    return this.#lastFlushAt === undefined || at - this.#lastFlushAt > intervalMs;
  }
}
