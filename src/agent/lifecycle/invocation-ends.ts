/**
 * "This invocation is over": the first of the runtime's response or error seen by the
 * Runtime API proxy, or `platform.runtimeDone` from the Telemetry API. The agent loop
 * waits on it before an end-of-invocation flush; the end may also come before the wait
 * starts (the proxy is faster than the INVOKE event), so ends are remembered briefly.
 */

/** Ends remembered for invocations nobody waits on yet; a handful covers any reordering. */
const rememberedEnds = 64;

export class InvocationEnds {
  readonly #waiting = new Map<string, () => void>();
  readonly #ended = new Set<string>();

  ended(requestId: string): void {
    const wake = this.#waiting.get(requestId);
    if (wake) {
      this.#waiting.delete(requestId);
      wake();
      return;
    }
    this.#ended.add(requestId);
    if (this.#ended.size > rememberedEnds) this.#ended.delete(this.#ended.values().next().value as string);
  }

  /** Resolves when `requestId` has ended (at once if it already has). */
  wait(requestId: string): Promise<void> {
    if (this.#ended.delete(requestId)) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.set(requestId, resolve));
  }

  /** Wakes every waiter: the environment is shutting down. */
  releaseAll(): void {
    for (const wake of this.#waiting.values()) wake();
    this.#waiting.clear();
  }
}
