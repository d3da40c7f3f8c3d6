/**
 * Invocations whose `platform.report` has not reached the agent yet. The report comes
 * after the agent's own /next, so at SHUTDOWN the last invocation's report is usually
 * still on its way: the agent waits for it briefly (Datadog's extension waits up to
 * 300 ms for the Telemetry API's last batch) so its duration and memory metrics go out.
 */
export class PendingReports {
  readonly #pending = new Set<string>();
  #wake: (() => void) | undefined;

  invoked(requestId: string): void {
    this.#pending.add(requestId);
    // Bounded: a report that never came (a crashed environment) is not waited for forever.
    if (this.#pending.size > 64) this.#pending.delete(this.#pending.values().next().value as string);
  }

  reported(requestId: string): void {
    this.#pending.delete(requestId);
    if (this.#pending.size === 0) this.#wake?.();
  }

  /** Resolves when every report is in, or after `maxWaitMs`. */
  async settled(maxWaitMs: number): Promise<void> {
    if (this.#pending.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, maxWaitMs);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
  }
}
