/**
 * Per function, version or alias settings for asynchronous invocation
 * (Put/Update/Get/Delete/ListFunctionEventInvokeConfigs): retry attempts, maximum event
 * age and destinations, with Lambda's ranges and defaults.
 */
import { InvalidParameterValueException, ResourceNotFoundException, validationError } from '../../errors/platform-errors.ts';
import type { ResourceStore, ListPage } from '../../store/types.ts';
import type { Clock } from '../../clock/clock.ts';
import { parseDestinationArn } from './destinations.ts';

const KIND = 'event-invoke-config';

export interface EventInvokeConfig {
  functionName: string;
  /** `$LATEST`, a version or an alias. */
  qualifier: string;
  maximumRetryAttempts?: number;
  maximumEventAgeInSeconds?: number;
  onSuccess?: string;
  onFailure?: string;
  /** Epoch seconds with milliseconds, as Lambda reports LastModified here. */
  lastModified: number;
}

/** Lambda's defaults when no config (or no value) is set. */
export const asyncDefaults = Object.freeze({ maximumRetryAttempts: 2, maximumEventAgeInSeconds: 21_600 });

const key = (functionName: string, qualifier: string): string => `${functionName}/${qualifier}`;

export class EventInvokeConfigs {
  readonly #store: ResourceStore;
  readonly #clock: Clock;
  readonly #cache = new Map<string, EventInvokeConfig | null>();

  constructor(store: ResourceStore, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  async get(functionName: string, qualifier: string): Promise<EventInvokeConfig | undefined> {
    const k = key(functionName, qualifier);
    const cached = this.#cache.get(k);
    if (cached !== undefined) return cached ?? undefined;
    const record = await this.#store.getResource<EventInvokeConfig>(KIND, k);
    this.#cache.set(k, record ?? null);
    return record;
  }

  async require(functionName: string, qualifier: string, arn: string): Promise<EventInvokeConfig> {
    const config = await this.get(functionName, qualifier);
    if (!config) throw new ResourceNotFoundException(`The function ${arn} doesn't have an EventInvokeConfig`);
    return config;
  }

  /** Put replaces the whole config; update patches the given fields. */
  async put(functionName: string, qualifier: string, input: Record<string, unknown>, mode: 'put' | 'update', arn: string): Promise<EventInvokeConfig> {
    const base: EventInvokeConfig =
      mode === 'update' ? await this.require(functionName, qualifier, arn) : { functionName, qualifier, lastModified: 0 };
    const next: EventInvokeConfig = { ...base, lastModified: Math.round(this.#clock.now().getTime()) / 1000 };
    if (input.MaximumRetryAttempts !== undefined) next.maximumRetryAttempts = checkRange(input.MaximumRetryAttempts, 'maximumRetryAttempts', 0, 2);
    if (input.MaximumEventAgeInSeconds !== undefined) next.maximumEventAgeInSeconds = checkRange(input.MaximumEventAgeInSeconds, 'maximumEventAgeInSeconds', 60, 21_600);
    if (input.DestinationConfig !== undefined) {
      const dc = input.DestinationConfig as { OnSuccess?: { Destination?: unknown }; OnFailure?: { Destination?: unknown } } | null;
      if (typeof dc !== 'object' || dc === null) throw new InvalidParameterValueException('DestinationConfig must be an object.');
      if (dc.OnSuccess !== undefined) next.onSuccess = checkDestination(dc.OnSuccess?.Destination);
      if (dc.OnFailure !== undefined) next.onFailure = checkDestination(dc.OnFailure?.Destination);
      if (next.onSuccess === undefined) delete next.onSuccess;
      if (next.onFailure === undefined) delete next.onFailure;
    }
    await this.#store.putResource(KIND, key(functionName, qualifier), next);
    this.#cache.delete(key(functionName, qualifier));
    return next;
  }

  async delete(functionName: string, qualifier: string, arn: string): Promise<void> {
    await this.require(functionName, qualifier, arn);
    await this.#store.deleteResource(KIND, key(functionName, qualifier));
    this.#cache.delete(key(functionName, qualifier));
  }

  async list(functionName: string, options: { marker?: string; maxItems: number }): Promise<ListPage<EventInvokeConfig>> {
    const page = await this.#store.listResources<EventInvokeConfig>(KIND, { prefix: `${functionName}/`, ...options });
    return { items: page.items.map((i) => i.record), nextMarker: page.nextMarker };
  }

  async deleteAll(functionName: string): Promise<void> {
    for (const k of this.#cache.keys()) if (k.startsWith(`${functionName}/`)) this.#cache.delete(k);
    await this.#store.deleteResources(KIND, `${functionName}/`);
  }
}

function checkRange(value: unknown, member: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new InvalidParameterValueException(`${member} must be an integer.`);
  if (value < min) throw validationError(value, member, `Member must have value greater than or equal to ${min}`);
  if (value > max) throw validationError(value, member, `Member must have value less than or equal to ${max}`);
  return value;
}

function checkDestination(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new InvalidParameterValueException('Destination must be an ARN string.');
  parseDestinationArn(value);
  return value;
}
