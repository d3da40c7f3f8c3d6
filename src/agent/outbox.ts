/**
 * The outbox: where everything the agent produces waits for the next flush, and what makes
 * a flush safe when a backend is down.
 *
 * - Intake: each kind (metrics, spans, logs, security signals) has its own ring of at most
 *   `maxBuffered` items; when full, the oldest is dropped and counted. Adding never throws
 *   and never waits, because the intakes sit on the function's hot path.
 * - Flush: the rings are drained into one batch, sent to every backend at once, each send
 *   bounded by `sendTimeoutMs`. A backend that fails keeps its own copy of what it was sent
 *   (again at most `maxBuffered` per kind, oldest dropped and counted) and gets it back, ahead
 *   of newer items, on the next flush. So one dead backend neither delays the others beyond the
 *   timeout nor loses data within the bound, and the others never receive anything twice.
 * - Flushes are serialized: a flush asked for while one runs starts when it ends (requests
 *   arriving meanwhile share that next flush), so a backend never has two sends in flight.
 *
 * A backend's error may say more (see BackendSendError in backends/http-post.ts, read here by
 * shape so that any backend can use it): `permanent: true` drops the batch for good, counted;
 * `accepted` lists kinds that were delivered anyway; `rejected` lists kinds refused for good.
 */

import type {
  AgentResource,
  DropCounts,
  LogRecord,
  MetricPoint,
  MetricSource,
  SecuritySignal,
  Span,
  TelemetryBackend,
  TelemetryBatch,
  TelemetrySink,
} from './model.ts';

export interface OutboxOptions {
  resource: AgentResource;
  backends: TelemetryBackend[];
  sources?: MetricSource[];
  /** Items of each kind kept in the intake, and again per backend while it is failing. */
  maxBuffered: number;
  /**
   * Called when a kind's intake buffer reaches `fillingAt` items (default: half of
   * `maxBuffered`): a flush now (in the background) keeps a burst from pushing out what it
   * just buffered, and memory low. Called again only after a flush has taken the intake.
   */
  onFilling?(): void;
  fillingAt?: number;
  /** One backend's send is abandoned (and retried next flush) after this long. */
  sendTimeoutMs: number;
  now?: () => number;
  onError?(message: string): void;
}

/** Per-kind item counts; the same shape as DropCounts. */
export type ItemCounts = DropCounts;
type ItemKind = keyof ItemCounts;
const KINDS: readonly ItemKind[] = ['metrics', 'spans', 'logs', 'security'];

interface Items {
  metrics: MetricPoint[];
  spans: Span[];
  logs: LogRecord[];
  security: SecuritySignal[];
}

export interface BackendFlushResult {
  backend: string;
  /** True when the backend took everything it was given this flush (or had nothing to take). */
  ok: boolean;
  /** Items delivered by this flush. */
  sent: ItemCounts;
  /** Items this backend still holds for the next flush. */
  pending: number;
  /** Everything dropped for this backend since start: the intake's drops plus its own. */
  dropped: ItemCounts;
  error?: string;
  /** The error was permanent: what was sent is dropped, not retried. */
  permanent?: boolean;
}

export interface FlushResult {
  /** New items taken from the intake (and the metric sources) by this flush. */
  collected: ItemCounts;
  /** One entry per backend that had something to send; empty when nothing was sent. */
  backends: BackendFlushResult[];
}

/** An oldest-first ring that drops its oldest item when full (O(1), unlike Array#shift). */
class BoundedQueue<T> {
  readonly #capacity: number;
  #items: (T | undefined)[] = [];
  #head = 0;
  #size = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#size;
  }

  /** Returns true when the oldest item had to go to make room. */
  push(item: T): boolean {
    if (this.#size < this.#capacity) {
      this.#items[(this.#head + this.#size) % this.#capacity] = item;
      this.#size++;
      return false;
    }
    this.#items[this.#head] = item;
    this.#head = (this.#head + 1) % this.#capacity;
    return true;
  }

  drain(): T[] {
    const out = new Array<T>(this.#size);
    for (let i = 0; i < this.#size; i++) out[i] = this.#items[(this.#head + i) % this.#capacity] as T;
    this.#items = [];
    this.#head = 0;
    this.#size = 0;
    return out;
  }
}

interface BackendState {
  backend: TelemetryBackend;
  /** What it failed to deliver, oldest first, to be sent ahead of newer items. */
  held: Items;
  /** Items dropped for this backend alone (its held copy overflowed, or it refused them). */
  dropped: ItemCounts;
}

class OutboxSendTimeoutError extends Error {
  override readonly name = 'OutboxSendTimeoutError';
}

export class Outbox implements TelemetrySink {
  readonly #resource: AgentResource;
  readonly #sources: MetricSource[];
  readonly #maxBuffered: number;
  readonly #onFilling: (() => void) | undefined;
  readonly #fillingAt: number;
  /** onFilling was called and no flush has taken the intake since. */
  #filling = false;
  readonly #sendTimeoutMs: number;
  readonly #now: () => number;
  readonly #onError: (message: string) => void;
  readonly #states: BackendState[];
  readonly #metrics: BoundedQueue<MetricPoint>;
  readonly #spans: BoundedQueue<Span>;
  readonly #logs: BoundedQueue<LogRecord>;
  readonly #security: BoundedQueue<SecuritySignal>;
  /** Dropped before reaching any backend: lost for all of them. */
  readonly #intakeDropped: ItemCounts = zeroCounts();
  #running: Promise<FlushResult> | undefined;
  #queued: Promise<FlushResult> | undefined;

  constructor(options: OutboxOptions) {
    if (!Number.isInteger(options.maxBuffered) || options.maxBuffered < 1) {
      throw new RangeError(`maxBuffered must be a positive integer, got ${options.maxBuffered}`);
    }
    if (!(options.sendTimeoutMs > 0)) throw new RangeError(`sendTimeoutMs must be positive, got ${options.sendTimeoutMs}`);
    this.#resource = options.resource;
    this.#sources = options.sources ?? [];
    this.#maxBuffered = options.maxBuffered;
    this.#onFilling = options.onFilling;
    this.#fillingAt = Math.max(1, Math.min(options.fillingAt ?? Infinity, Math.ceil(options.maxBuffered / 2)));
    this.#sendTimeoutMs = options.sendTimeoutMs;
    this.#now = options.now ?? Date.now;
    const onError = options.onError;
    // A throwing logger must not turn a flush into a rejection (or wedge the flushes queued behind it).
    this.#onError = (message) => {
      try {
        onError?.(message);
      } catch {
        // nowhere left to report it
      }
    };
    this.#states = options.backends.map((backend) => ({ backend, held: emptyItems(), dropped: zeroCounts() }));
    this.#metrics = new BoundedQueue(options.maxBuffered);
    this.#spans = new BoundedQueue(options.maxBuffered);
    this.#logs = new BoundedQueue(options.maxBuffered);
    this.#security = new BoundedQueue(options.maxBuffered);
  }

  addMetric(point: MetricPoint): void {
    if (this.#metrics.push(point)) this.#intakeDropped.metrics++;
    this.#watch(this.#metrics.size);
  }

  addSpans(spans: Span[]): void {
    if (!Array.isArray(spans)) return;
    for (const span of spans) if (this.#spans.push(span)) this.#intakeDropped.spans++;
    this.#watch(this.#spans.size);
  }

  addLog(record: LogRecord): void {
    if (this.#logs.push(record)) this.#intakeDropped.logs++;
    this.#watch(this.#logs.size);
  }

  addSecurity(signal: SecuritySignal): void {
    if (this.#security.push(signal)) this.#intakeDropped.security++;
    this.#watch(this.#security.size);
  }

  #watch(size: number): void {
    if (this.#filling || size < this.#fillingAt || !this.#onFilling) return;
    this.#filling = true;
    this.#onFilling();
  }

  /** Items held in memory: the intake's plus every backend's retry copy. */
  pending(): number {
    let total = this.#metrics.size + this.#spans.size + this.#logs.size + this.#security.size;
    for (const state of this.#states) total += countItems(state.held);
    return total;
  }

  /** Dropped since start: by the intake alone, or, with a backend's name, what that backend lost. */
  dropped(backend?: string): DropCounts {
    const state = backend === undefined ? undefined : this.#states.find((s) => s.backend.name === backend);
    return state === undefined ? { ...this.#intakeDropped } : addCounts(this.#intakeDropped, state.dropped);
  }

  /** Sends everything buffered. Never rejects: failures are in the result (and given to onError). */
  flush(): Promise<FlushResult> {
    if (this.#queued !== undefined) return this.#queued;
    if (this.#running === undefined) return this.#start();
    const next = (): Promise<FlushResult> => {
      this.#queued = undefined;
      return this.#start();
    };
    const queued = this.#running.then(next, next);
    this.#queued = queued;
    return queued;
  }

  #start(): Promise<FlushResult> {
    const run: Promise<FlushResult> = this.#run().finally(() => {
      if (this.#running === run) this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  async #run(): Promise<FlushResult> {
    const now = this.#now();
    this.#collectSources(now);
    const fresh: Items = {
      metrics: this.#metrics.drain(),
      spans: this.#spans.drain(),
      logs: this.#logs.drain(),
      security: this.#security.drain(),
    };
    this.#filling = false;
    const collected = itemCounts(fresh);
    const anyFresh = countItems(fresh) > 0;
    const busy = this.#states.filter((state) => anyFresh || countItems(state.held) > 0);
    const backends = await Promise.all(busy.map((state) => this.#sendTo(state, fresh, now)));
    return { collected, backends };
  }

  #collectSources(now: number): void {
    for (const source of this.#sources) {
      try {
        for (const point of source.collect(now)) this.addMetric(point);
      } catch (error) {
        this.#onError(`a metric source failed to hand over its points: ${describe(error)}`);
      }
    }
  }

  async #sendTo(state: BackendState, fresh: Items, now: number): Promise<BackendFlushResult> {
    const items = this.#mergeHeld(state, fresh);
    state.held = emptyItems();
    const batch: TelemetryBatch = {
      resource: this.#resource,
      ...items,
      dropped: addCounts(this.#intakeDropped, state.dropped),
      sentAt: now,
    };
    const name = state.backend.name;
    try {
      await this.#sendWithTimeout(state.backend, batch);
      return { backend: name, ok: true, sent: itemCounts(items), pending: 0, dropped: this.dropped(name) };
    } catch (error) {
      const sent = zeroCounts();
      const verdict = readFailure(error);
      for (const kind of KINDS) {
        const count = items[kind].length;
        if (count === 0) continue;
        if (verdict.accepted.has(kind)) sent[kind] = count;
        else if (verdict.permanent || verdict.rejected.has(kind)) state.dropped[kind] += count;
        else setKind(state.held, kind, items[kind]);
      }
      const pending = countItems(state.held);
      this.#onError(
        verdict.permanent
          ? `backend ${name} refused the batch for good; dropped it: ${describe(error)}`
          : `backend ${name} failed; keeping ${pending} items for the next flush: ${describe(error)}`,
      );
      return {
        backend: name,
        ok: false,
        sent,
        pending,
        dropped: this.dropped(name),
        error: describe(error),
        ...(verdict.permanent ? { permanent: true } : {}),
      };
    }
  }

  /** The backend's held items ahead of the fresh ones, trimmed to the bound (oldest dropped, counted). */
  #mergeHeld(state: BackendState, fresh: Items): Items {
    const merged = emptyItems();
    for (const kind of KINDS) {
      const held = state.held[kind] as unknown[];
      let list = held.length === 0 ? (fresh[kind] as unknown[]) : held.concat(fresh[kind]);
      const excess = list.length - this.#maxBuffered;
      if (excess > 0) {
        state.dropped[kind] += excess;
        list = list.slice(excess);
      }
      setKind(merged, kind, list);
    }
    return merged;
  }

  async #sendWithTimeout(backend: TelemetryBackend, batch: TelemetryBatch): Promise<void> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new OutboxSendTimeoutError(`no answer within ${this.#sendTimeoutMs} ms`);
        controller.abort(error);
        reject(error);
      }, this.#sendTimeoutMs);
    });
    try {
      // Through an async step so that a backend throwing synchronously is a failure like any other.
      await Promise.race([(async () => backend.send(batch, controller.signal))(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

interface FailureVerdict {
  permanent: boolean;
  accepted: Set<string>;
  rejected: Set<string>;
}

function readFailure(error: unknown): FailureVerdict {
  const shape = typeof error === 'object' && error !== null ? (error as Record<string, unknown>) : {};
  const kinds = (value: unknown): Set<string> =>
    new Set(Array.isArray(value) ? value.filter((k): k is string => typeof k === 'string') : []);
  return { permanent: shape.permanent === true, accepted: kinds(shape.accepted), rejected: kinds(shape.rejected) };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function emptyItems(): Items {
  return { metrics: [], spans: [], logs: [], security: [] };
}

/** Items' four lists share one element-agnostic handling here; the batch keeps them typed. */
function setKind(items: Items, kind: ItemKind, list: unknown[]): void {
  (items as Record<ItemKind, unknown[]>)[kind] = list;
}

function zeroCounts(): ItemCounts {
  return { metrics: 0, spans: 0, logs: 0, security: 0 };
}

function itemCounts(items: Items): ItemCounts {
  return { metrics: items.metrics.length, spans: items.spans.length, logs: items.logs.length, security: items.security.length };
}

function countItems(items: Items): number {
  return items.metrics.length + items.spans.length + items.logs.length + items.security.length;
}

function addCounts(a: ItemCounts, b: ItemCounts): ItemCounts {
  return { metrics: a.metrics + b.metrics, spans: a.spans + b.spans, logs: a.logs + b.logs, security: a.security + b.security };
}
