/**
 * Watches the memory of environments that are running an invocation, and tells each
 * when its process tree goes past MemorySize (Lambda then kills the sandbox and reports
 * Runtime.OutOfMemory). One timer for all environments, running only while some are busy.
 */
export interface MemoryWatched {
  /** Current resident set of the tree in KiB, when running. */
  readRssKb(): number | undefined;
  readonly memoryLimitKb: number;
  overMemoryLimit(rssKb: number): void;
}

export class MemoryMonitor {
  readonly #watched = new Set<MemoryWatched>();
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(intervalMs = 50) {
    this.#intervalMs = intervalMs;
  }

  watch(target: MemoryWatched): void {
    this.#watched.add(target);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  unwatch(target: MemoryWatched): void {
    this.#watched.delete(target);
    if (this.#watched.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #tick(): void {
    for (const target of this.#watched) {
      const rssKb = target.readRssKb();
      if (rssKb !== undefined && rssKb > target.memoryLimitKb) target.overMemoryLimit(rssKb);
    }
  }

  close(): void {
    this.#watched.clear();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
