/**
 * Collects function log lines and writes them to the store in batches, off the invoke
 * path: one transaction every `flushIntervalMs` or every `maxBatch` lines. Bounded: if
 * the store falls behind, the oldest unwritten lines are dropped and counted.
 */
import type { FunctionLogLine, FunctionLogSink } from '../environments/types.ts';
import type { LogStore } from '../store/types.ts';
import type { Logger } from '../logging/logger.ts';

export interface BatchingLogSinkOptions {
  store: LogStore;
  logger: Logger;
  flushIntervalMs?: number;
  maxBatch?: number;
  maxBuffered?: number;
  /** Also hand every line to this callback (server echo, followers). */
  echo?: (line: FunctionLogLine) => void;
}

export class BatchingLogSink implements FunctionLogSink {
  readonly #o: Required<Omit<BatchingLogSinkOptions, 'echo'>> & Pick<BatchingLogSinkOptions, 'echo'>;
  #buffer: FunctionLogLine[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  dropped = 0;

  constructor(options: BatchingLogSinkOptions) {
    this.#o = { flushIntervalMs: 100, maxBatch: 1000, maxBuffered: 100_000, ...options };
  }

  write(line: FunctionLogLine): void {
    this.#o.echo?.(line);
    if (this.#buffer.length >= this.#o.maxBuffered) {
      this.#buffer.shift();
      this.dropped++;
    }
    this.#buffer.push(line);
    if (this.#buffer.length >= this.#o.maxBatch) void this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => void this.flush(), this.#o.flushIntervalMs);
      this.#timer.unref();
    }
  }

  /** Writes everything buffered so far; resolves when it is in the store. */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#buffer;
    this.#buffer = [];
    if (batch.length > 0) {
      this.#writing = this.#writing.then(() =>
        this.#o.store.appendLogs(batch).catch((err: unknown) => {
          this.dropped += batch.length;
          this.#o.logger.error('could not store function logs', { error: (err as Error).message, lines: batch.length });
        }),
      );
    }
    return this.#writing;
  }
}
