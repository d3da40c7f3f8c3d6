/**
 * Provisioned concurrency configs (Put/Get/Delete/ListProvisionedConcurrencyConfigs) on a
 * version or alias. The records live in the ResourceStore; the environments in the
 * invoker's provisioned pools, rebuilt from the records when the server starts.
 */
import { InvalidParameterValueException, ResourceConflictException, validationError } from '../errors/platform-errors.ts';
import { ProvisionedConcurrencyConfigNotFoundException } from '../errors/platform-errors.ts';
import type { ResourceStore, ListPage } from '../store/types.ts';
import type { FunctionService } from '../functions/function-service.ts';
import type { Clock } from '../clock/clock.ts';
import type { Logger } from '../logging/logger.ts';
import type { Invoker } from './invoker.ts';
import type { ProvisionedStatus } from './provisioned-pool.ts';

const KIND = 'provisioned-concurrency';

export interface ProvisionedConcurrencyRecord {
  functionName: string;
  /** The version or alias it was put on. */
  qualifier: string;
  /** The version its environments run (an alias's version when provisioned). */
  version: string;
  requested: number;
  /** `2019-12-31T20:28:49+0000` */
  lastModified: string;
}

export interface ProvisionedConcurrencyView extends ProvisionedConcurrencyRecord {
  allocated: number;
  status: ProvisionedStatus;
  statusReason?: string;
}

export class ProvisionedConcurrency {
  readonly #store: ResourceStore;
  readonly #functions: FunctionService;
  readonly #invoker: Invoker;
  readonly #reservedFor: (functionName: string) => number | undefined;
  readonly #clock: Clock;
  readonly #logger: Logger;

  constructor(o: { store: ResourceStore; functions: FunctionService; invoker: Invoker; reservedFor: (fn: string) => number | undefined; clock: Clock; logger: Logger }) {
    this.#store = o.store;
    this.#functions = o.functions;
    this.#invoker = o.invoker;
    this.#reservedFor = o.reservedFor;
    this.#clock = o.clock;
    this.#logger = o.logger;
  }

  async put(functionName: string, qualifier: string | undefined, value: unknown): Promise<ProvisionedConcurrencyView> {
    if (qualifier === undefined || qualifier === '$LATEST') {
      throw new InvalidParameterValueException('Provisioned Concurrency Configs cannot be applied to unpublished function versions.');
    }
    if (typeof value !== 'number' || !Number.isInteger(value)) throw new InvalidParameterValueException('ProvisionedConcurrentExecutions must be an integer.');
    if (value < 1) throw validationError(value, 'provisionedConcurrentExecutions', 'Member must have value greater than or equal to 1');
    const record = await this.#functions.get({ functionName, qualifier });
    const others = (await this.list(functionName)).items.filter((c) => c.qualifier !== qualifier).reduce((n, c) => n + c.requested, 0);
    const reserved = this.#reservedFor(functionName);
    if (reserved !== undefined && others + value > reserved) {
      throw new InvalidParameterValueException(
        `Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function (${reserved}).`,
      );
    }
    const existing = (await this.list(functionName)).items.find((c) => c.version === record.version && c.qualifier !== qualifier);
    if (existing) {
      throw new ResourceConflictException(`Version ${record.version} already has provisioned concurrency through ${existing.qualifier}.`);
    }
    const stored: ProvisionedConcurrencyRecord = {
      functionName,
      qualifier,
      version: record.version,
      requested: value,
      lastModified: this.#clock.now().toISOString().replace(/\.\d{3}Z$/, '+0000'),
    };
    await this.#store.putResource(KIND, `${functionName}/${qualifier}`, stored);
    await this.#start(stored);
    return this.#view(stored);
  }

  async get(functionName: string, qualifier: string | undefined): Promise<ProvisionedConcurrencyView> {
    const record = await this.#store.getResource<ProvisionedConcurrencyRecord>(KIND, `${functionName}/${qualifier ?? '$LATEST'}`);
    if (!record) throw new ProvisionedConcurrencyConfigNotFoundException('No Provisioned Concurrency Config found for this function');
    return this.#view(record);
  }

  async delete(functionName: string, qualifier: string | undefined): Promise<void> {
    const record = await this.#store.getResource<ProvisionedConcurrencyRecord>(KIND, `${functionName}/${qualifier ?? '$LATEST'}`);
    if (!record) throw new ProvisionedConcurrencyConfigNotFoundException('No Provisioned Concurrency Config found for this function');
    await this.#store.deleteResource(KIND, `${functionName}/${record.qualifier}`);
    await this.#invoker.deprovision(functionName, record.version);
  }

  async list(functionName: string, options: { marker?: string; maxItems?: number } = {}): Promise<ListPage<ProvisionedConcurrencyView>> {
    const page = await this.#store.listResources<ProvisionedConcurrencyRecord>(KIND, { prefix: `${functionName}/`, ...options });
    return { items: page.items.map((i) => this.#view(i.record)), nextMarker: page.nextMarker };
  }

  async deleteAll(functionName: string): Promise<void> {
    for (const c of (await this.list(functionName)).items) await this.#invoker.deprovision(functionName, c.version);
    await this.#store.deleteResources(KIND, `${functionName}/`);
  }

  /** Re-creates every provisioned pool from the stored configs (server start). */
  async restore(): Promise<void> {
    const all = await this.#store.listResources<ProvisionedConcurrencyRecord>(KIND);
    for (const { record } of all.items) {
      try {
        await this.#start(record);
      } catch (err) {
        this.#logger.warn('could not restore provisioned concurrency', { functionName: record.functionName, qualifier: record.qualifier, error: (err as Error).message });
      }
    }
  }

  async #start(record: ProvisionedConcurrencyRecord): Promise<void> {
    const version = await this.#functions.get({ functionName: record.functionName, qualifier: record.version });
    const spec = await this.#functions.environmentSpec(version);
    this.#invoker.provision(spec, record.requested, (status, reason) =>
      this.#logger.info('provisioned concurrency', { functionName: record.functionName, qualifier: record.qualifier, status, reason }),
    );
  }

  #view(record: ProvisionedConcurrencyRecord): ProvisionedConcurrencyView {
    const pool = this.#invoker.provisionedPool(record.functionName, record.version);
    return { ...record, allocated: pool?.allocated ?? 0, status: pool?.status ?? 'IN_PROGRESS', statusReason: pool?.statusReason };
  }
}
