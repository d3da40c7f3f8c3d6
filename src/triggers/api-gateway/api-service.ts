/**
 * API Gateway APIs as resources: validated and stored in the Store's generic resources
 * (kind `api-gateway`, key = API id) with a write-through cache of compiled route tables,
 * so serving never touches the store.
 */
import { randomBytes } from 'node:crypto';
import { InvalidParameterValueException, ResourceNotFoundException } from '../../errors/platform-errors.ts';
import type { ResourceStore } from '../../store/types.ts';
import type { Clock } from '../../clock/clock.ts';
import type { ApiRecord, ApiRoute, ApiProtocol, PayloadFormatVersion } from './types.ts';
import { parseRouteKey, RouteTable } from './route-table.ts';

const KIND = 'api-gateway';
export const apiIdPattern = /^[a-z0-9]{10}$/;
const stagePattern = /^[A-Za-z0-9_-]{1,128}$/;

/** A new API id: 10 characters from [a-z0-9], like API Gateway's. */
export function newApiId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(10)].map((b) => alphabet[b % 36]).join('');
}

export interface DeployedApi {
  record: ApiRecord;
  table: RouteTable;
}

export interface ApiServiceOptions {
  store: ResourceStore;
  clock: Clock;
  /** Throws ResourceNotFoundException when the function does not exist. */
  checkFunction: (ref: { functionName: string; qualifier?: string }) => Promise<unknown>;
}

function bad(message: string): InvalidParameterValueException {
  return new InvalidParameterValueException(message);
}

function stringMap(value: unknown, member: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw bad(`${member} must be an object of strings.`);
  for (const [k, v] of Object.entries(value)) if (typeof v !== 'string') throw bad(`${member}.${k} must be a string.`);
  return value as Record<string, string>;
}

export class ApiService {
  readonly #o: ApiServiceOptions;
  readonly #apis = new Map<string, DeployedApi>();
  #loaded: Promise<void> | undefined;

  constructor(options: ApiServiceOptions) {
    this.#o = options;
  }

  #load(): Promise<void> {
    this.#loaded ??= (async () => {
      let marker: string | undefined;
      do {
        const page = await this.#o.store.listResources<ApiRecord>(KIND, { marker, maxItems: 1000 });
        for (const { record } of page.items) this.#apis.set(record.apiId, { record, table: new RouteTable(record.routes) });
        marker = page.nextMarker;
      } while (marker);
    })();
    return this.#loaded;
  }

  /** Creates or replaces an API from its wire shape (see README: `PUT /nimbus/v1/apis/<id>`). */
  async put(apiId: string, input: Record<string, unknown>): Promise<ApiRecord> {
    if (!apiIdPattern.test(apiId)) throw bad(`API id ${apiId} must be 10 lower-case letters and digits.`);
    const protocol = input.ProtocolType;
    if (protocol !== 'REST' && protocol !== 'HTTP') throw bad('ProtocolType must be REST or HTTP.');
    const stageName = input.StageName ?? (protocol === 'HTTP' ? '$default' : undefined);
    if (typeof stageName !== 'string' || !(stagePattern.test(stageName) || (protocol === 'HTTP' && stageName === '$default'))) {
      throw bad(`StageName must match [A-Za-z0-9_-]{1,128}${protocol === 'HTTP' ? ' or be $default' : ''}.`);
    }
    const name = input.Name ?? apiId;
    if (typeof name !== 'string' || name.length === 0 || name.length > 1024) throw bad('Name must be a string of 1 to 1024 characters.');
    const binary = input.BinaryMediaTypes ?? [];
    if (!Array.isArray(binary) || binary.some((t) => typeof t !== 'string')) throw bad('BinaryMediaTypes must be a list of media types.');
    if (!Array.isArray(input.Routes)) throw bad('Routes must be a list of {RouteKey, FunctionName}.');
    const routes = await this.#routes(input.Routes, protocol);
    await this.#load();
    const now = this.#o.clock.now().toISOString();
    const record: ApiRecord = {
      apiId,
      name,
      protocol,
      stageName,
      stageVariables: stringMap(input.StageVariables, 'StageVariables'),
      binaryMediaTypes: binary as string[],
      routes,
      createdTime: this.#apis.get(apiId)?.record.createdTime ?? now,
      lastUpdatedTime: now,
    };
    const table = new RouteTable(routes);
    await this.#o.store.putResource(KIND, apiId, record);
    this.#apis.set(apiId, { record, table });
    return record;
  }

  async #routes(raw: unknown[], protocol: ApiProtocol): Promise<ApiRoute[]> {
    const routes: ApiRoute[] = [];
    const seen = new Set<string>();
    for (const [i, item] of raw.entries()) {
      if (typeof item !== 'object' || item === null) throw bad(`Routes[${i}] must be an object.`);
      const r = item as Record<string, unknown>;
      const routeKey = r.RouteKey;
      if (typeof routeKey !== 'string') throw bad(`Routes[${i}].RouteKey must be a string.`);
      if (routeKey === '$default') {
        if (protocol === 'REST') throw bad('REST APIs have no $default route: use ANY /{proxy+}.');
      } else {
        const parsed = parseRouteKey(routeKey);
        if (typeof parsed === 'string') throw bad(parsed);
      }
      if (seen.has(routeKey)) throw bad(`Route key ${routeKey} appears twice.`);
      seen.add(routeKey);
      if (typeof r.FunctionName !== 'string') throw bad(`Routes[${i}].FunctionName must be a function name.`);
      const qualifier = r.Qualifier === undefined ? undefined : String(r.Qualifier);
      await this.#o.checkFunction({ functionName: r.FunctionName, qualifier });
      const version = r.PayloadFormatVersion ?? (protocol === 'REST' ? '1.0' : '2.0');
      if (version !== '1.0' && version !== '2.0') throw bad(`Routes[${i}].PayloadFormatVersion must be 1.0 or 2.0.`);
      if (protocol === 'REST' && version !== '1.0') throw bad('REST APIs send payload format 1.0 only.');
      routes.push({ routeKey, functionName: r.FunctionName, ...(qualifier !== undefined ? { qualifier } : {}), payloadFormatVersion: version as PayloadFormatVersion });
    }
    return routes;
  }

  async get(apiId: string): Promise<ApiRecord> {
    await this.#load();
    const api = this.#apis.get(apiId);
    if (!api) throw new ResourceNotFoundException(`Invalid API identifier specified ${apiId}`);
    return api.record;
  }

  async list(): Promise<ApiRecord[]> {
    await this.#load();
    return [...this.#apis.values()].map((a) => a.record).sort((a, b) => a.apiId.localeCompare(b.apiId));
  }

  async delete(apiId: string): Promise<void> {
    await this.get(apiId);
    await this.#o.store.deleteResource(KIND, apiId);
    this.#apis.delete(apiId);
  }

  /** The API and its compiled routes, for serving. */
  async deployed(apiId: string): Promise<DeployedApi | undefined> {
    await this.#load();
    return this.#apis.get(apiId);
  }
}
