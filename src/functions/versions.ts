/**
 * Published versions: immutable snapshots of a function's code and configuration,
 * numbered 1, 2, 3… per function and never reused after deletion. Kept in the
 * ResourceStore as `function-version` records keyed `<function>/<zero-padded number>`.
 */
import { randomUUID } from 'node:crypto';
import type { ResourceStore, ListPage } from '../store/types.ts';
import type { Clock } from '../clock/clock.ts';
import type { FunctionRecord } from './types.ts';
import { lambdaTimestamp } from './arn.ts';

const VERSION = 'function-version';
const COUNTER = 'function-version-counter';

export const versionKey = (functionName: string, version: string): string => `${functionName}/${version.padStart(10, '0')}`;

export class FunctionVersions {
  readonly #store: ResourceStore;
  readonly #clock: Clock;
  /** Versions are immutable: once read, a record can be served from memory. */
  readonly #cache = new Map<string, FunctionRecord>();

  constructor(store: ResourceStore, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  async get(functionName: string, version: string): Promise<FunctionRecord | undefined> {
    const key = versionKey(functionName, version);
    const cached = this.#cache.get(key);
    if (cached) return cached;
    const record = await this.#store.getResource<FunctionRecord>(VERSION, key);
    if (record) this.#cache.set(key, record);
    return record;
  }

  async latest(functionName: string): Promise<FunctionRecord | undefined> {
    const counter = await this.#store.getResource<{ last: number }>(COUNTER, functionName);
    for (let n = counter?.last ?? 0; n > 0; n--) {
      const record = await this.get(functionName, String(n));
      if (record) return record;
    }
    return undefined;
  }

  /**
   * Publishes `$LATEST` as the next version, unless the latest published version already
   * has the same code and configuration (Lambda then returns that version).
   */
  async publish(latest: FunctionRecord, description: string | undefined): Promise<FunctionRecord> {
    const previous = await this.latest(latest.functionName);
    if (previous && sameSnapshot(previous, latest)) return previous;
    const counter = await this.#store.getResource<{ last: number }>(COUNTER, latest.functionName);
    const number = (counter?.last ?? 0) + 1;
    const record: FunctionRecord = {
      ...latest,
      version: String(number),
      description: description ?? latest.description,
      lastModified: lambdaTimestamp(this.#clock.now()),
      revisionId: randomUUID(),
    };
    await this.#store.putResource(VERSION, versionKey(latest.functionName, record.version), record);
    await this.#store.putResource(COUNTER, latest.functionName, { last: number });
    return record;
  }

  async list(functionName: string, options: { marker?: string; maxItems: number }): Promise<ListPage<FunctionRecord>> {
    const page = await this.#store.listResources<FunctionRecord>(VERSION, { prefix: `${functionName}/`, ...options });
    return { items: page.items.map((i) => i.record), nextMarker: page.nextMarker };
  }

  async delete(functionName: string, version: string): Promise<boolean> {
    this.#cache.delete(versionKey(functionName, version));
    return this.#store.deleteResource(VERSION, versionKey(functionName, version));
  }

  /** Removes every version of a deleted function (the counter too: a new function starts at 1). */
  async deleteAll(functionName: string): Promise<void> {
    for (const key of this.#cache.keys()) if (key.startsWith(`${functionName}/`)) this.#cache.delete(key);
    await this.#store.deleteResources(VERSION, `${functionName}/`);
    await this.#store.deleteResource(COUNTER, functionName);
  }
}

/** Same code and same configuration: publishing again would change nothing. */
function sameSnapshot(a: FunctionRecord, b: FunctionRecord): boolean {
  const strip = (r: FunctionRecord) => ({ ...r, version: '', description: '', lastModified: '', revisionId: '', tags: {}, createdAtMs: 0, state: '', lastUpdateStatus: '' });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
