/**
 * Lambda's scaling rate: each function can add at most 1,000 execution environments every
 * 10 seconds (a token bucket refilled continuously). Invokes that would need an environment
 * beyond that are throttled, as on Lambda; warm environments are not affected.
 */
import { TooManyRequestsException } from '../errors/platform-errors.ts';

export class ScalingLimit {
  readonly #perWindow: number;
  readonly #windowMs: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(perWindow: number, windowMs = 10_000) {
    this.#perWindow = perWindow;
    this.#windowMs = windowMs;
  }

  /** Takes one new-environment token for a function, or throws Lambda's 429. */
  take(functionName: string, now = performance.now()): void {
    const bucket = this.#buckets.get(functionName) ?? { tokens: this.#perWindow, at: now };
    bucket.tokens = Math.min(this.#perWindow, bucket.tokens + ((now - bucket.at) * this.#perWindow) / this.#windowMs);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.#buckets.set(functionName, bucket);
      throw new TooManyRequestsException(
        `Rate Exceeded. The function is scaling faster than ${this.#perWindow} new execution environments per ${this.#windowMs / 1000} seconds.`,
        'ConcurrentInvocationLimitExceeded',
      );
    }
    bucket.tokens -= 1;
    this.#buckets.set(functionName, bucket);
  }
}
