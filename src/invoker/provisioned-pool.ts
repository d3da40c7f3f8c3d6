/**
 * Provisioned concurrency for one function version: environments initialized ahead of
 * any invoke (AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency), kept warm, never
 * reaped, and replaced when one stops. Invokes take an idle one first; when none is
 * idle they spill over to on-demand environments.
 */
import type { Environment } from '../environments/environment.ts';

export type ProvisionedStatus = 'IN_PROGRESS' | 'READY' | 'FAILED';

export interface ProvisionedPoolOptions {
  count: number;
  /** Creates an environment whose ready/stopped events come back to this pool. */
  create: (onReady: (env: Environment) => void, onStopped: (env: Environment) => void) => Environment;
  onStatus?: (status: ProvisionedStatus, reason?: string) => void;
}

export class ProvisionedPool {
  readonly #o: ProvisionedPoolOptions;
  readonly #all = new Set<Environment>();
  readonly #idle: Environment[] = [];
  readonly #initialized = new Set<Environment>();
  #status: ProvisionedStatus = 'IN_PROGRESS';
  #statusReason: string | undefined;
  #closed = false;

  constructor(options: ProvisionedPoolOptions) {
    this.#o = options;
    for (let i = 0; i < options.count; i++) this.#startOne();
  }

  get status(): ProvisionedStatus {
    return this.#status;
  }

  get statusReason(): string | undefined {
    return this.#statusReason;
  }

  /** Environments that finished Init and are available (idle or serving). */
  get allocated(): number {
    return this.#initialized.size;
  }

  /** An idle, initialized environment, if any (no cold start). */
  takeIdle(): Environment | undefined {
    return this.#idle.pop();
  }

  #startOne(): void {
    const env = this.#o.create(
      (ready) => this.#ready(ready),
      (stopped) => this.#stopped(stopped),
    );
    this.#all.add(env);
    void env.init().then((outcome) => {
      if (outcome.ok) {
        this.#initialized.add(env);
        this.#ready(env);
        if (this.#initialized.size >= this.#o.count && this.#status === 'IN_PROGRESS') this.#setStatus('READY');
      } else {
        this.#setStatus('FAILED', `FUNCTION_ERROR_INIT_FAILURE: ${outcome.errorType}: ${outcome.errorMessage}`);
      }
    });
  }

  #ready(env: Environment): void {
    if (this.#closed) {
      void env.stop('spindown');
      return;
    }
    if (env.state === 'ready' && !this.#idle.includes(env)) this.#idle.push(env);
  }

  #stopped(env: Environment): void {
    this.#all.delete(env);
    this.#initialized.delete(env);
    const at = this.#idle.indexOf(env);
    if (at >= 0) this.#idle.splice(at, 1);
    // Keep the requested count: a provisioned environment that fails is replaced.
    if (!this.#closed && this.#status !== 'FAILED') this.#startOne();
  }

  #setStatus(status: ProvisionedStatus, reason?: string): void {
    this.#status = status;
    this.#statusReason = reason;
    this.#o.onStatus?.(status, reason);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#idle.length = 0;
    await Promise.all([...this.#all].map((env) => env.stop('spindown')));
  }
}
