/**
 * The telemetry of one environment: every platform event and every function and
 * extension log line goes through here to each Telemetry API or Logs API subscriber that
 * asked for its type, in the form that API and schema version use
 * (shared/reference/lambda-interfaces.md §3.2, §3.3).
 *
 * Extensions subscribe during Init, after things have already happened (platform.initStart
 * comes first), so until subscriptions close at the end of Init the hub keeps what was
 * emitted (bounded) and replays it to each new subscriber. Without subscribers after Init
 * it costs nothing: `active` is false and callers skip building events.
 */
import { TelemetrySubscriber } from './telemetry-buffer.ts';
import type { Subscription, SubscriptionApi, TelemetryCategory } from './telemetry-api.ts';

interface HubEvent {
  time: string;
  type: string;
  category: TelemetryCategory;
  /** An object for platform events; the line for function and extension logs. */
  record: unknown;
  /** Logs API only (platform.end, platform.fault): the Telemetry API has no such events. */
  logsApiOnly?: boolean;
  /** The line parsed as a JSON object, when it is one (JSON log format). */
  parsed?: Record<string, unknown> | null;
}

interface Entry {
  extensionName: string;
  sub: Subscription;
  types: ReadonlySet<TelemetryCategory>;
  subscriber: TelemetrySubscriber;
}

/** How much of Init the hub keeps for subscribers that come later: events, and bytes. */
const backlogLimit = 10_000;
const backlogBytesLimit = 4 * 1024 * 1024;
/** What a platform event is counted as in the backlog's bytes. */
const platformEventBytes = 256;

function parsedLine(ev: HubEvent): Record<string, unknown> | null {
  if (ev.parsed !== undefined) return ev.parsed;
  ev.parsed = null;
  const line = ev.record as string;
  if (line.startsWith('{')) {
    try {
      const v: unknown = JSON.parse(line);
      if (v && typeof v === 'object' && !Array.isArray(v)) ev.parsed = v as Record<string, unknown>;
    } catch {
      // a text line that starts with a brace
    }
  }
  return ev.parsed;
}

/** The Logs API's form of a platform event, or undefined when that API has no such event. */
function logsApiForm(ev: HubEvent, schemaVersion: string): { type: string; record: unknown } | undefined {
  const r = ev.record as Record<string, unknown>;
  switch (ev.type) {
    case 'platform.start':
      return { type: ev.type, record: { requestId: r.requestId } };
    case 'platform.report':
      return { type: ev.type, record: { requestId: r.requestId, metrics: r.metrics } };
    case 'platform.runtimeDone':
      return schemaVersion === '2021-03-18' ? { type: ev.type, record: { requestId: r.requestId, status: r.status } } : undefined;
    case 'platform.telemetrySubscription':
      return { type: 'platform.logsSubscription', record: r };
    case 'platform.end':
    case 'platform.fault':
    case 'platform.extension':
    case 'platform.logsDropped':
      return { type: ev.type, record: r };
    default:
      return undefined;
  }
}

export class TelemetryHub {
  readonly #logFormat: 'Text' | 'JSON';
  /** Where subscribers listen: the environment's own loopback address (sandbox-addresses.ts). */
  readonly #destinationHost: string;
  readonly #extensionBusy: (name: string) => boolean;
  readonly #entries: Entry[] = [];
  #backlog: HubEvent[] | undefined = [];
  #backlogBytes = 0;
  #backlogDropped = 0;
  #backlogDroppedBytes = 0;

  /**
   * @param extensionBusy whether an extension is still on its INVOKE (not yet back at
   *   `event/next`): only then does its subscriber get platform.runtimeDone at once.
   */
  constructor(logFormat: 'Text' | 'JSON', destinationHost = '127.0.0.1', extensionBusy: (name: string) => boolean = () => true) {
    this.#logFormat = logFormat;
    this.#destinationHost = destinationHost;
    this.#extensionBusy = extensionBusy;
  }

  /** Someone may want events: subscriptions are open, or there are subscribers. */
  get active(): boolean {
    return this.#backlog !== undefined || this.#entries.length > 0;
  }

  get open(): boolean {
    return this.#backlog !== undefined;
  }

  wants(category: TelemetryCategory): boolean {
    if (this.#backlog) return true;
    for (const e of this.#entries) if (e.types.has(category)) return true;
    return false;
  }

  /** Which API an extension subscribed through, if it did. */
  subscribedApi(extensionName: string): SubscriptionApi | undefined {
    return this.#entries.find((e) => e.extensionName === extensionName)?.sub.api;
  }

  platform(type: string, record: Record<string, unknown>): void {
    this.#emit({ time: new Date().toISOString(), type, category: 'platform', record });
  }

  /** A Logs API-only platform event (platform.end, platform.fault). */
  logsApiPlatform(type: 'platform.end' | 'platform.fault', record: unknown): void {
    this.#emit({ time: new Date().toISOString(), type, category: 'platform', record, logsApiOnly: true });
  }

  log(category: 'function' | 'extension', line: string, timeMs: number): void {
    if (!this.wants(category)) return;
    this.#emit({ time: new Date(timeMs).toISOString(), type: category, category, record: line });
  }

  #emit(ev: HubEvent): void {
    if (this.#backlog) {
      const bytes = typeof ev.record === 'string' ? ev.record.length : platformEventBytes;
      if (this.#backlog.length < backlogLimit && this.#backlogBytes + bytes <= backlogBytesLimit) {
        this.#backlog.push(ev);
        this.#backlogBytes += bytes;
      } else {
        this.#backlogDropped++;
        this.#backlogDroppedBytes += bytes;
      }
    }
    for (const entry of this.#entries) this.#offer(entry, ev);
  }

  #offer(entry: Entry, ev: HubEvent): void {
    if (!entry.types.has(ev.category)) return;
    const serialized = this.#serialize(entry, ev);
    if (serialized === undefined) return;
    entry.subscriber.push(serialized);
    // The buffering settings are upper bounds. An agent that flushes at the end of each
    // invocation waits for runtimeDone before it calls /next, and every millisecond it
    // waits is post-runtime duration the caller pays: deliver that batch at once. One that
    // is already back at /next is not waiting, and its events keep batching (a POST saved
    // per invocation).
    if (ev.type === 'platform.runtimeDone' && this.#extensionBusy(entry.extensionName)) entry.subscriber.flushNow();
  }

  #serialize(entry: Entry, ev: HubEvent): string | undefined {
    const { api, schemaVersion } = entry.sub;
    if (ev.category !== 'platform') {
      // Structured records need the 2022-12-13 schema (or later) and the JSON log format.
      const structured = api === 'telemetry' && schemaVersion >= '2022-12-13' && this.#logFormat === 'JSON' ? parsedLine(ev) : null;
      return JSON.stringify({ time: ev.time, type: ev.type, record: structured ?? ev.record });
    }
    if (api === 'telemetry') return ev.logsApiOnly ? undefined : JSON.stringify({ time: ev.time, type: ev.type, record: ev.record });
    const form = logsApiForm(ev, schemaVersion);
    return form && JSON.stringify({ time: ev.time, type: form.type, record: form.record });
  }

  /** Adds a validated subscription: replays what Init emitted so far, then announces it. */
  subscribe(extensionName: string, sub: Subscription): void {
    const entry: Entry = {
      extensionName,
      sub,
      types: new Set(sub.types),
      subscriber: new TelemetrySubscriber({
        name: extensionName,
        destination: { ...sub.destination, host: this.#destinationHost },
        maxItems: sub.maxItems,
        maxBytes: sub.maxBytes,
        timeoutMs: sub.timeoutMs,
        logsDropped: (droppedBytes, droppedRecords, reason) =>
          this.#serialize(entry, { time: new Date().toISOString(), type: 'platform.logsDropped', category: 'platform', record: { droppedBytes, droppedRecords, reason } })!,
      }),
    };
    for (const ev of this.#backlog ?? []) this.#offer(entry, ev);
    if (this.#backlogDropped > 0) {
      this.#offer(entry, {
        time: new Date().toISOString(),
        type: 'platform.logsDropped',
        category: 'platform',
        record: { droppedBytes: this.#backlogDroppedBytes, droppedRecords: this.#backlogDropped, reason: 'Some logs were dropped because the Init phase produced more than the buffer holds' },
      });
    }
    this.#entries.push(entry);
    this.platform('platform.telemetrySubscription', { name: extensionName, state: 'Subscribed', types: sub.types });
  }

  /** Init is over: no more subscriptions, and nothing is kept for later subscribers. */
  closeSubscriptions(): void {
    this.#backlog = undefined;
  }

  /** Sends whatever is buffered now (the environment is shutting down). */
  flushNow(): void {
    for (const e of this.#entries) e.subscriber.flushNow();
  }

  close(): void {
    this.#backlog = undefined;
    for (const e of this.#entries) e.subscriber.close();
    this.#entries.length = 0;
  }
}
