/**
 * The warm environments of one function version and configuration revision. Hands out
 * a free invocation slot of a ready environment when there is one (warm start; one slot
 * per environment on demand, MaxConcurrency on managed instances), waits for one that is
 * about to be free rather than starting another, and starts a new one otherwise (cold start).
 */
import type { Environment } from '../environments/environment.ts';

export interface Lease {
  env: Environment;
  /** True when the environment was created for this invoke (it must be initialized). */
  cold: boolean;
}

const usable = (env: Environment): boolean => env.state === 'ready' || env.state === 'invoking';

export class FunctionPool {
  readonly revisionId: string;
  readonly #create: () => Environment;
  /**
   * Free slots: an environment once per slot it has free, most recently freed last (reused
   * first, so others can idle out).
   */
  readonly #idle: Environment[] = [];
  readonly #all = new Set<Environment>();
  readonly #waiters: Array<{ resolve: (lease: Lease) => void; reject: (err: unknown) => void }> = [];
  #retired = false;

  constructor(revisionId: string, create: () => Environment) {
    this.revisionId = revisionId;
    this.#create = create;
  }

  get size(): number {
    return this.#all.size;
  }

  acquire(): Lease | Promise<Lease> {
    let warm = this.#idle.pop();
    // An environment that began stopping after it was offered (a reset) is not reusable.
    while (warm && !usable(warm)) warm = this.#idle.pop();
    if (warm) return { env: warm, cold: false };
    if (this.#soonFree() > this.#waiters.length) {
      return new Promise<Lease>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    }
    const env = this.#create();
    this.#all.add(env);
    return { env, cold: true };
  }

  /** Slots about to be free: post-runtime phases ending, managed instances initializing. */
  #soonFree(): number {
    let n = 0;
    for (const env of this.#all) n += env.slotsSoonFree;
    return n;
  }

  #removeIdle(env: Environment): void {
    for (let i = this.#idle.length - 1; i >= 0; i--) if (this.#idle[i] === env) this.#idle.splice(i, 1);
  }

  /** A slot of an environment is free (its runtime waits on `/next`). */
  ready(env: Environment): void {
    if (!usable(env)) return;
    if (this.#retired) {
      if (env.inFlight === 0) void env.stop('spindown');
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve({ env, cold: false });
    else this.#idle.push(env);
  }

  /** An environment stopped (failure, timeout, reaping, shutdown). */
  stopped(env: Environment): void {
    this.#all.delete(env);
    this.#removeIdle(env);
    // Those waiting for slots that will not come now must start fresh environments instead.
    while (this.#waiters.length > this.#soonFree()) {
      const waiter = this.#waiters.shift()!;
      let fresh: Environment;
      try {
        fresh = this.#create();
      } catch (err) {
        // Throttled by the scaling rate: the waiting invoke gets the 429.
        waiter.reject(err);
        continue;
      }
      this.#all.add(fresh);
      waiter.resolve({ env: fresh, cold: true });
    }
  }

  /** Stops environments idle since before `cutoffMs` (epoch ms). */
  reapIdle(cutoffMs: number): void {
    for (const env of new Set(this.#idle)) {
      if (env.inFlight === 0 && env.lastUsedAt < cutoffMs) {
        this.#removeIdle(env);
        void env.stop('spindown');
      }
    }
  }

  /** The configuration changed: no new leases; idle environments stop now, busy ones when done. */
  retire(): Promise<void> {
    this.#retired = true;
    const idle = [...new Set(this.#idle.splice(0))].filter((env) => env.inFlight === 0);
    return Promise.all(idle.map((env) => env.stop('spindown'))).then(() => undefined);
  }

  /** Stops everything (server shutdown). */
  async close(): Promise<void> {
    this.#retired = true;
    this.#idle.length = 0;
    await Promise.all([...this.#all].map((env) => env.stop('shutdown')));
  }
}
