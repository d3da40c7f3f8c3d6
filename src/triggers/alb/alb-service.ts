/**
 * ALB targets: a name (the load balancer's host label), the function behind it, and the
 * target group attribute `lambda.multi_value_headers.enabled`. Configured with
 * `PUT /nimbus/v1/alb-targets/<name>`; kept in the Store's generic resources (kind
 * `alb-target`) with a write-through cache.
 */
import { randomBytes } from 'node:crypto';
import { InvalidParameterValueException, ResourceNotFoundException } from '../../errors/platform-errors.ts';
import type { ResourceStore } from '../../store/types.ts';
import type { Clock } from '../../clock/clock.ts';

const KIND = 'alb-target';
/** Target group names: letters, digits and hyphens, 1 to 32, no hyphen at either end (lower case: it is a host label here). */
export const albNamePattern = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

export interface AlbTargetRecord {
  name: string;
  functionName: string;
  qualifier?: string;
  multiValueHeaders: boolean;
  /** `arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<16 hex>` */
  targetGroupArn: string;
  createdTime: string;
}

export interface AlbServiceOptions {
  store: ResourceStore;
  clock: Clock;
  region: string;
  accountId: string;
  checkFunction: (ref: { functionName: string; qualifier?: string }) => Promise<unknown>;
}

export class AlbService {
  readonly #o: AlbServiceOptions;
  readonly #targets = new Map<string, AlbTargetRecord>();
  #loaded: Promise<void> | undefined;

  constructor(options: AlbServiceOptions) {
    this.#o = options;
  }

  #load(): Promise<void> {
    this.#loaded ??= (async () => {
      let marker: string | undefined;
      do {
        const page = await this.#o.store.listResources<AlbTargetRecord>(KIND, { marker, maxItems: 1000 });
        for (const { record } of page.items) this.#targets.set(record.name, record);
        marker = page.nextMarker;
      } while (marker);
    })();
    return this.#loaded;
  }

  async put(name: string, input: Record<string, unknown>): Promise<AlbTargetRecord> {
    if (!albNamePattern.test(name)) throw new InvalidParameterValueException(`Target name ${name} must be 1 to 32 lower-case letters, digits and hyphens, not starting or ending with a hyphen.`);
    if (typeof input.FunctionName !== 'string') throw new InvalidParameterValueException('FunctionName is required.');
    if (input.MultiValueHeaders !== undefined && typeof input.MultiValueHeaders !== 'boolean') throw new InvalidParameterValueException('MultiValueHeaders must be a boolean.');
    const qualifier = input.Qualifier === undefined ? undefined : String(input.Qualifier);
    await this.#o.checkFunction({ functionName: input.FunctionName, qualifier });
    await this.#load();
    const existing = this.#targets.get(name);
    const record: AlbTargetRecord = {
      name,
      functionName: input.FunctionName,
      ...(qualifier !== undefined ? { qualifier } : {}),
      multiValueHeaders: input.MultiValueHeaders === true,
      targetGroupArn: existing?.targetGroupArn ?? `arn:aws:elasticloadbalancing:${this.#o.region}:${this.#o.accountId}:targetgroup/${name}/${randomBytes(8).toString('hex')}`,
      createdTime: existing?.createdTime ?? this.#o.clock.now().toISOString(),
    };
    await this.#o.store.putResource(KIND, name, record);
    this.#targets.set(name, record);
    return record;
  }

  async get(name: string): Promise<AlbTargetRecord> {
    await this.#load();
    const record = this.#targets.get(name);
    if (!record) throw new ResourceNotFoundException(`No ALB target named ${name}.`);
    return record;
  }

  async list(): Promise<AlbTargetRecord[]> {
    await this.#load();
    return [...this.#targets.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  async delete(name: string): Promise<void> {
    await this.get(name);
    await this.#o.store.deleteResource(KIND, name);
    this.#targets.delete(name);
  }

  /** For serving: the target, or undefined. */
  async find(name: string): Promise<AlbTargetRecord | undefined> {
    await this.#load();
    return this.#targets.get(name);
  }
}
