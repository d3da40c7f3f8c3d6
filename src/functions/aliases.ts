/**
 * Aliases: named pointers to a version, optionally splitting traffic with a second
 * version by weight (RoutingConfig.AdditionalVersionWeights). Kept in the ResourceStore
 * as `alias` records keyed `<function>/<alias>`.
 */
import { randomUUID } from 'node:crypto';
import {
  InvalidParameterValueException,
  PreconditionFailedException,
  ResourceConflictException,
  ResourceNotFoundException,
  validationError,
} from '../errors/platform-errors.ts';
import type { ResourceStore, ListPage } from '../store/types.ts';

const ALIAS = 'alias';

export interface AliasRecord {
  functionName: string;
  name: string;
  functionVersion: string;
  description: string;
  /** Additional version -> weight (0-1) of traffic it receives. */
  additionalVersionWeights: Record<string, number>;
  revisionId: string;
}

const aliasNamePattern = /^(?!^[0-9]+$)[a-zA-Z0-9-_]{1,128}$/;
const versionPattern = /^(\$LATEST|[0-9]+)$/;

/** Checks that a version exists (`$LATEST` always does). */
export type VersionExists = (functionName: string, version: string) => Promise<boolean>;

export class FunctionAliases {
  readonly #store: ResourceStore;
  readonly #versionExists: VersionExists;
  readonly #cache = new Map<string, AliasRecord | null>();

  constructor(store: ResourceStore, versionExists: VersionExists) {
    this.#store = store;
    this.#versionExists = versionExists;
  }

  static isAliasName(qualifier: string): boolean {
    return aliasNamePattern.test(qualifier);
  }

  async get(functionName: string, name: string): Promise<AliasRecord | undefined> {
    const key = `${functionName}/${name}`;
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const record = await this.#store.getResource<AliasRecord>(ALIAS, key);
    this.#cache.set(key, record ?? null);
    return record;
  }

  async require(functionName: string, name: string, arn: string): Promise<AliasRecord> {
    const alias = await this.get(functionName, name);
    if (!alias) throw new ResourceNotFoundException(`Alias not found: ${arn}`);
    return alias;
  }

  async create(functionName: string, input: Record<string, unknown>, arnOf: (alias: string) => string): Promise<AliasRecord> {
    const name = input.Name;
    if (typeof name !== 'string' || !aliasNamePattern.test(name)) {
      throw validationError(name, 'name', 'Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)');
    }
    const record: AliasRecord = {
      functionName,
      name,
      functionVersion: await this.#checkVersion(functionName, input.FunctionVersion),
      description: checkDescription(input.Description),
      additionalVersionWeights: {},
      revisionId: randomUUID(),
    };
    record.additionalVersionWeights = await this.#checkRouting(functionName, record.functionVersion, input.RoutingConfig);
    const created = await this.#store.putResource(ALIAS, `${functionName}/${name}`, record, { ifAbsent: true });
    if (!created) throw new ResourceConflictException(`Alias already exists: ${arnOf(name)}`);
    this.#cache.delete(`${functionName}/${name}`);
    return record;
  }

  async update(functionName: string, name: string, input: Record<string, unknown>, arn: string): Promise<AliasRecord> {
    const current = await this.require(functionName, name, arn);
    if (input.RevisionId !== undefined && input.RevisionId !== current.revisionId) {
      throw new PreconditionFailedException('The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id');
    }
    const functionVersion = input.FunctionVersion === undefined ? current.functionVersion : await this.#checkVersion(functionName, input.FunctionVersion);
    const next: AliasRecord = {
      ...current,
      functionVersion,
      description: input.Description === undefined ? current.description : checkDescription(input.Description),
      additionalVersionWeights:
        input.RoutingConfig === undefined
          ? await this.#checkRouting(functionName, functionVersion, { AdditionalVersionWeights: current.additionalVersionWeights })
          : await this.#checkRouting(functionName, functionVersion, input.RoutingConfig),
      revisionId: randomUUID(),
    };
    await this.#store.putResource(ALIAS, `${functionName}/${name}`, next);
    this.#cache.delete(`${functionName}/${name}`);
    return next;
  }

  async delete(functionName: string, name: string): Promise<void> {
    this.#cache.delete(`${functionName}/${name}`);
    await this.#store.deleteResource(ALIAS, `${functionName}/${name}`);
  }

  async list(functionName: string, options: { marker?: string; maxItems: number; functionVersion?: string }): Promise<ListPage<AliasRecord>> {
    const page = await this.#store.listResources<AliasRecord>(ALIAS, { prefix: `${functionName}/`, marker: options.marker, maxItems: options.maxItems });
    const items = page.items.map((i) => i.record).filter((a) => options.functionVersion === undefined || a.functionVersion === options.functionVersion);
    return { items, nextMarker: page.nextMarker };
  }

  /** Aliases that route any traffic to `version` (deleting it would break them). */
  async referencing(functionName: string, version: string): Promise<string[]> {
    const all = await this.#store.listResources<AliasRecord>(ALIAS, { prefix: `${functionName}/` });
    return all.items.map((i) => i.record).filter((a) => a.functionVersion === version || version in a.additionalVersionWeights).map((a) => a.name);
  }

  async deleteAll(functionName: string): Promise<void> {
    for (const key of this.#cache.keys()) if (key.startsWith(`${functionName}/`)) this.#cache.delete(key);
    await this.#store.deleteResources(ALIAS, `${functionName}/`);
  }

  /** Picks the version an invoke through this alias runs, by weight. */
  static pickVersion(alias: AliasRecord, random: number = Math.random()): string {
    let threshold = 0;
    for (const [version, weight] of Object.entries(alias.additionalVersionWeights)) {
      threshold += weight;
      if (random < threshold) return version;
    }
    return alias.functionVersion;
  }

  async #checkVersion(functionName: string, value: unknown): Promise<string> {
    if (typeof value !== 'string' || !versionPattern.test(value)) {
      throw validationError(value, 'functionVersion', 'Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)');
    }
    if (!(await this.#versionExists(functionName, value))) {
      throw new ResourceNotFoundException(`Function not found: version ${value} of ${functionName} does not exist`);
    }
    return value;
  }

  async #checkRouting(functionName: string, primary: string, value: unknown): Promise<Record<string, number>> {
    if (value === undefined || value === null) return {};
    const weights = (value as { AdditionalVersionWeights?: unknown }).AdditionalVersionWeights ?? {};
    if (typeof weights !== 'object' || weights === null || Array.isArray(weights)) {
      throw new InvalidParameterValueException('RoutingConfig.AdditionalVersionWeights must be a map of version to weight.');
    }
    const entries = Object.entries(weights as Record<string, unknown>);
    if (entries.length === 0) return {};
    if (entries.length > 1) throw new InvalidParameterValueException('Number of items in AdditionalVersionWeights cannot be greater than 1');
    if (primary === '$LATEST') throw new InvalidParameterValueException('$LATEST is not supported for an alias pointing to more than 1 version');
    const [version, weight] = entries[0]!;
    if (!/^[0-9]+$/.test(version)) throw new InvalidParameterValueException('$LATEST is not supported for an alias pointing to more than 1 version');
    if (typeof weight !== 'number' || !(weight >= 0 && weight <= 1)) {
      throw validationError(weight, 'routingConfig.additionalVersionWeights', 'Member must have value between 0.0 and 1.0');
    }
    if (version === primary) throw new InvalidParameterValueException(`Invalid function version ${version}. Function version ${version} is already included in routing configuration.`);
    if (!(await this.#versionExists(functionName, version))) {
      throw new InvalidParameterValueException(`Invalid function version ${version}: it does not exist.`);
    }
    return { [version]: weight };
  }
}

function checkDescription(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new InvalidParameterValueException('Description must be a string.');
  if (value.length > 256) throw validationError(value, 'description', 'Member must have length less than or equal to 256');
  return value;
}
