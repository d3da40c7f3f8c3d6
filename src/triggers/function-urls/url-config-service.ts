/**
 * Function URL configurations: create, read, update, delete, list, and the lookup by
 * URL id that serving needs on every request. Records live in the Store's generic
 * resources (kind `function-url`, key `<function>:<qualifier or $LATEST>`; kind
 * `function-url-id`, key `<url id>`) and in a write-through cache loaded once, so the
 * serving path never touches the store.
 */
import { randomBytes } from 'node:crypto';
import { InvalidParameterValueException, ResourceConflictException, ResourceNotFoundException } from '../../errors/platform-errors.ts';
import type { ResourceStore } from '../../store/types.ts';
import type { Clock } from '../../clock/clock.ts';
import type { FunctionLookup, UrlConfigRecord } from './types.ts';
import { checkAuthType, checkCors, checkInvokeMode, checkQualifier } from './validation.ts';

const KIND = 'function-url';
const ID_KIND = 'function-url-id';
const LATEST = '$LATEST';

export interface UrlRef {
  functionName: string;
  qualifier?: string;
}

const keyOf = (ref: UrlRef): string => `${ref.functionName}:${ref.qualifier ?? LATEST}`;

/** 32 characters from [a-z0-9], like Lambda's url ids. */
export function newUrlId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(32);
  let id = '';
  // 252 = 7 * 36: rejecting larger bytes keeps every character equally likely.
  for (let i = 0; id.length < 32; i++) {
    const b = i < bytes.length ? bytes[i]! : randomBytes(1)[0]!;
    if (b < 252) id += alphabet[b % 36];
  }
  return id;
}

export interface UrlConfigServiceOptions {
  store: ResourceStore;
  functions: FunctionLookup;
  clock: Clock;
}

export class UrlConfigService {
  readonly #o: UrlConfigServiceOptions;
  readonly #byKey = new Map<string, UrlConfigRecord>();
  readonly #byId = new Map<string, UrlConfigRecord>();
  #loaded: Promise<void> | undefined;

  constructor(options: UrlConfigServiceOptions) {
    this.#o = options;
  }

  #load(): Promise<void> {
    this.#loaded ??= (async () => {
      let marker: string | undefined;
      do {
        const page = await this.#o.store.listResources<UrlConfigRecord>(KIND, { marker, maxItems: 1000 });
        for (const { record } of page.items) this.#remember(record);
        marker = page.nextMarker;
      } while (marker);
    })();
    return this.#loaded;
  }

  #remember(record: UrlConfigRecord): void {
    this.#byKey.set(keyOf(record), record);
    this.#byId.set(record.urlId, record);
  }

  async #forget(record: UrlConfigRecord): Promise<void> {
    this.#byKey.delete(keyOf(record));
    this.#byId.delete(record.urlId);
    await this.#o.store.deleteResource(KIND, keyOf(record));
    await this.#o.store.deleteResource(ID_KIND, record.urlId);
  }

  /** Resolves the ref's qualifier (from `name:alias` or `?Qualifier`) and checks the function exists. */
  async #resolve(ref: UrlRef): Promise<{ ref: UrlRef; createdAtMs: number }> {
    if (ref.qualifier !== undefined) checkQualifier(ref.qualifier);
    const fn = await this.#o.functions.get({ functionName: ref.functionName });
    if (ref.qualifier !== undefined) await this.#o.functions.get(ref);
    return { ref, createdAtMs: fn.createdAtMs };
  }

  /** The live record for a ref, dropping one left behind by a deleted function. */
  async #current(ref: UrlRef, createdAtMs: number): Promise<UrlConfigRecord | undefined> {
    await this.#load();
    const record = this.#byKey.get(keyOf(ref));
    if (record && record.functionCreatedAtMs !== createdAtMs) {
      await this.#forget(record);
      return undefined;
    }
    return record;
  }

  #notFound(): ResourceNotFoundException {
    return new ResourceNotFoundException('The resource you requested does not exist.');
  }

  async create(rawRef: UrlRef, input: Record<string, unknown>): Promise<UrlConfigRecord> {
    const authType = checkAuthType(input.AuthType);
    const cors = checkCors(input.Cors);
    const invokeMode = checkInvokeMode(input.InvokeMode);
    const { ref, createdAtMs } = await this.#resolve(rawRef);
    if (await this.#current(ref, createdAtMs)) {
      throw new ResourceConflictException(
        `Failed to create function url config for [functionArn = ${this.#o.functions.arn(ref.functionName, ref.qualifier)}]. Error message:  FunctionUrlConfig exists for this Lambda function`,
      );
    }
    const now = this.#o.clock.now().toISOString();
    const record: UrlConfigRecord = {
      functionName: ref.functionName,
      ...(ref.qualifier !== undefined ? { qualifier: ref.qualifier } : {}),
      urlId: newUrlId(),
      authType,
      ...(cors ? { cors } : {}),
      invokeMode,
      creationTime: now,
      lastModifiedTime: now,
      functionCreatedAtMs: createdAtMs,
    };
    await this.#o.store.putResource(ID_KIND, record.urlId, { key: keyOf(record) });
    if (!(await this.#o.store.putResource(KIND, keyOf(record), record, { ifAbsent: true }))) {
      await this.#o.store.deleteResource(ID_KIND, record.urlId);
      throw new ResourceConflictException('FunctionUrlConfig exists for this Lambda function');
    }
    this.#remember(record);
    return record;
  }

  async get(rawRef: UrlRef): Promise<UrlConfigRecord> {
    const { ref, createdAtMs } = await this.#resolve(rawRef);
    const record = await this.#current(ref, createdAtMs);
    if (!record) throw this.#notFound();
    return record;
  }

  async update(rawRef: UrlRef, input: Record<string, unknown>): Promise<UrlConfigRecord> {
    const authType = input.AuthType === undefined ? undefined : checkAuthType(input.AuthType);
    const cors = input.Cors === undefined ? undefined : checkCors(input.Cors);
    const invokeMode = input.InvokeMode === undefined ? undefined : checkInvokeMode(input.InvokeMode);
    const current = await this.get(rawRef);
    const next: UrlConfigRecord = {
      ...current,
      ...(authType ? { authType } : {}),
      ...(invokeMode ? { invokeMode } : {}),
      lastModifiedTime: this.#o.clock.now().toISOString(),
    };
    // Cors: {} clears the configuration; an absent Cors leaves it as it was.
    if (input.Cors !== undefined) {
      if (cors && Object.keys(cors).length > 0) next.cors = cors;
      else delete next.cors;
    }
    await this.#o.store.putResource(KIND, keyOf(next), next);
    this.#remember(next);
    return next;
  }

  async delete(rawRef: UrlRef): Promise<void> {
    const record = await this.get(rawRef);
    await this.#forget(record);
  }

  async list(functionName: string, marker: string | undefined, maxItems: number): Promise<{ items: UrlConfigRecord[]; nextMarker?: string }> {
    const fn = await this.#o.functions.get({ functionName });
    await this.#load();
    const page = await this.#o.store.listResources<UrlConfigRecord>(KIND, { prefix: `${functionName}:`, marker, maxItems });
    const items = page.items.map((i) => i.record).filter((r) => r.functionCreatedAtMs === fn.createdAtMs);
    return { items, ...(page.nextMarker ? { nextMarker: page.nextMarker } : {}) };
  }

  /** Drops every URL of a deleted function (its aliases' too), as Lambda does. */
  async deleteAll(functionName: string): Promise<void> {
    await this.#load();
    for (const record of [...this.#byKey.values()]) if (record.functionName === functionName) await this.#forget(record);
  }

  /**
   * The configuration behind a URL id, for serving. Undefined when there is none, or when
   * its function is gone (the stale record is dropped).
   */
  async byUrlId(urlId: string): Promise<UrlConfigRecord | undefined> {
    await this.#load();
    const record = this.#byId.get(urlId);
    if (!record) return undefined;
    try {
      const fn = await this.#o.functions.get({ functionName: record.functionName });
      if (fn.createdAtMs === record.functionCreatedAtMs) return record;
    } catch (err) {
      if (!(err instanceof ResourceNotFoundException)) throw err;
    }
    await this.#forget(record);
    return undefined;
  }
}

/** `?Qualifier` and a `name:alias` FunctionName must agree. */
export function mergeQualifier(fromName: string | undefined, fromQuery: string | undefined): string | undefined {
  if (fromName !== undefined && fromQuery !== undefined && fromName !== fromQuery) {
    throw new InvalidParameterValueException('The derived qualifier from the function name does not match the specified qualifier.');
  }
  return fromQuery ?? fromName;
}
