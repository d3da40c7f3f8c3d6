/**
 * One Telemetry (or Logs) API subscriber: its buffer and its deliveries
 * (shared/reference/lambda-interfaces.md §3.1). Events are batched until `maxItems`,
 * `maxBytes` or `timeoutMs`, and each batch is POSTed as a JSON array to the
 * subscriber's address, one delivery at a time, retried a few times with backoff.
 *
 * A slow or dead subscriber never blocks the function and never grows memory without
 * bound: at most the batch in flight, one sealed batch waiting behind it and the batch
 * being filled are kept; anything past that is dropped and counted, and once a delivery
 * succeeds again the subscriber gets a `platform.logsDropped` event with the counts.
 */
import http from 'node:http';

export interface SubscriberOptions {
  name: string;
  destination: { host: string; port: number; path: string };
  maxItems: number;
  maxBytes: number;
  timeoutMs: number;
  /** Serializes the platform.logsDropped event this subscriber gets after losing events. */
  logsDropped: (droppedBytes: number, droppedRecords: number, reason: string) => string;
  /** How long one POST may take before it counts as failed. */
  deliveryTimeoutMs?: number;
  /** Delays before the 2nd, 3rd... attempt of a batch; then the batch is dropped. */
  retryDelaysMs?: readonly number[];
}

interface Batch {
  events: string[];
  bytes: number;
}

const emptyBatch = (): Batch => ({ events: [], bytes: 0 });

/** RIE's reason when a subscriber cannot keep up. */
export const slowConsumerReason = 'Some logs were dropped because the downstream consumer is slower than the logs production rate';

export class TelemetrySubscriber {
  readonly name: string;
  readonly #o: Required<SubscriberOptions>;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  #open = emptyBatch();
  /** A full batch waiting for the delivery in flight to finish. */
  #waiting: Batch | undefined;
  #inFlight: Batch | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The buffer timeout passed while a delivery was in flight. */
  #due = false;
  #droppedRecords = 0;
  #droppedBytes = 0;
  #dropReason = slowConsumerReason;
  #closed = false;
  delivered = 0;

  constructor(options: SubscriberOptions) {
    this.name = options.name;
    this.#o = { deliveryTimeoutMs: 5000, retryDelaysMs: [100, 400], ...options };
  }

  /** Queues one serialized event. Never blocks; drops (and counts) when the buffer is full. */
  push(event: string): void {
    if (this.#closed) return;
    const bytes = Buffer.byteLength(event);
    const open = this.#open;
    if (open.events.length > 0 && (open.events.length >= this.#o.maxItems || open.bytes + bytes > this.#o.maxBytes)) {
      if (!this.#seal()) {
        this.#droppedRecords++;
        this.#droppedBytes += bytes;
        return;
      }
    }
    this.#open.events.push(event);
    this.#open.bytes += bytes;
    if (this.#open.events.length >= this.#o.maxItems || this.#open.bytes >= this.#o.maxBytes) this.#seal();
    else this.#timer ??= setTimeout(() => this.#onTimeout(), this.#o.timeoutMs).unref();
  }

  /** Sends what is buffered now, without waiting for the buffer timeout (at shutdown). */
  flushNow(): void {
    if (this.#closed) return;
    if (!this.#seal()) this.#due = true;
  }

  /** Stops for good: timers cleared, connections closed, buffered events discarded. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#open = emptyBatch();
    this.#waiting = undefined;
    this.#agent.destroy();
  }

  #onTimeout(): void {
    this.#timer = undefined;
    if (!this.#seal()) this.#due = true;
  }

  /** Moves the open batch out: to delivery if none is in flight, else to the waiting slot. */
  #seal(): boolean {
    if (this.#open.events.length === 0) return true;
    if (this.#inFlight && this.#waiting) return false;
    const batch = this.#open;
    this.#open = emptyBatch();
    this.#due = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#inFlight) this.#waiting = batch;
    else this.#send(batch);
    return true;
  }

  #send(batch: Batch): void {
    this.#inFlight = batch;
    void this.#deliver(batch).then((ok) => this.#delivered(batch, ok));
  }

  #delivered(batch: Batch, ok: boolean): void {
    this.#inFlight = undefined;
    if (this.#closed) return;
    if (ok) {
      this.delivered += batch.events.length;
      if (this.#droppedRecords > 0) {
        // The subscriber keeps up again: tell it what it missed.
        const event = this.#o.logsDropped(this.#droppedBytes, this.#droppedRecords, this.#dropReason);
        this.#droppedRecords = 0;
        this.#droppedBytes = 0;
        this.#dropReason = slowConsumerReason;
        this.push(event);
      }
    } else {
      this.#droppedRecords += batch.events.length;
      this.#droppedBytes += batch.bytes;
      this.#dropReason = `Some logs were dropped because they could not be delivered to ${this.name}`;
    }
    const next = this.#waiting;
    this.#waiting = undefined;
    if (next) this.#send(next);
    else if (this.#due || this.#open.events.length >= this.#o.maxItems || this.#open.bytes >= this.#o.maxBytes) this.#seal();
  }

  async #deliver(batch: Batch): Promise<boolean> {
    const body = `[${batch.events.join(',')}]`;
    const delays = this.#o.retryDelaysMs;
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) return false;
      if (await this.#post(body)) return true;
      if (attempt >= delays.length) return false;
      await new Promise((resolve) => setTimeout(resolve, delays[attempt]).unref());
    }
  }

  #post(body: string): Promise<boolean> {
    const { host, port, path } = this.#o.destination;
    return new Promise<boolean>((resolve) => {
      const req = http.request(
        {
          host,
          port,
          path,
          method: 'POST',
          agent: this.#agent,
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
          timeout: this.#o.deliveryTimeoutMs,
        },
        (res) => {
          res.resume();
          res.once('end', () => resolve((res.statusCode ?? 500) < 300));
          res.once('error', () => resolve(false));
        },
      );
      req.once('timeout', () => req.destroy(new Error('delivery timed out')));
      req.once('error', () => resolve(false));
      req.end(body);
    });
  }
}
