/**
 * The warm environments of one function version and configuration revision. Hands out
 * a ready environment when there is one (warm start), waits for one that is about to
 * be ready rather than starting another, and starts a new one otherwise (cold start).
 */
import type { Environment } from '../environments/environment.ts';

export interface Lease {
  env: Environment;
  /** True when the environment was created for this invoke (it must be initialized). */
  cold: boolean;
}

export class FunctionPool {
  readonly revisionId: string;
  readonly #create: () => Environment;
  /** Ready environments, most recently used last (reused first, so others can idle out). */
  readonly #idle: Environment[] = [];
  readonly #all = new Set<Environment>();
  readonly #waiters: Array<(lease: Lease) => void> = [];
  #retired = false;

  constructor(revisionId: string, create: () => Environment) {
    this.revisionId = revisionId;
    this.#create = create;
  }

  get size(): number {
    return this.#all.size;
  }

  acquire(): Lease | Promise<Lease> {
    const warm = this.#idle.pop();
    if (warm) return { env: warm, cold: false };
    let finishing = 0;
    for (const env of this.#all) if (env.state === 'finishing') finishing++;
    if (finishing > this.#waiters.length) {
      return new Promise<Lease>((resolve) => this.#waiters.push(resolve));
    }
    const env = this.#create();
    this.#all.add(env);
    return { env, cold: true };
  }

  /** An environment's runtime is waiting on `/next` again. */
  ready(env: Environment): void {
    if (this.#retired) {
      void env.stop('spindown');
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter({ env, cold: false });
    else this.#idle.push(env);
  }

  /** An environment stopped (failure, timeout, reaping, shutdown). */
  stopped(env: Environment): void {
    this.#all.delete(env);
    const at = this.#idle.indexOf(env);
    if (at >= 0) this.#idle.splice(at, 1);
    // Someone waiting for this environment to finish must start a fresh one instead.
    const waiter = this.#waiters.shift();
    if (waiter) {
      const fresh = this.#create();
      this.#all.add(fresh);
      waiter({ env: fresh, cold: true });
    }
  }

  /** Stops environments idle since before `cutoffMs` (epoch ms). */
  reapIdle(cutoffMs: number): void {
    for (const env of [...this.#idle]) {
      if (env.lastUsedAt < cutoffMs) {
        this.#idle.splice(this.#idle.indexOf(env), 1);
        void env.stop('spindown');
      }
    }
  }

  /** The configuration changed: no new leases; idle environments stop now, busy ones when done. */
  retire(): Promise<void> {
    this.#retired = true;
    const idle = this.#idle.splice(0);
    return Promise.all(idle.map((env) => env.stop('spindown'))).then(() => undefined);
  }

  /** Stops everything (server shutdown). */
  async close(): Promise<void> {
    this.#retired = true;
    this.#idle.length = 0;
    await Promise.all([...this.#all].map((env) => env.stop('shutdown')));
  }
}
