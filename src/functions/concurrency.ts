/**
 * Reserved concurrency per function (PutFunctionConcurrency): kept in the ResourceStore
 * and mirrored in memory, because the invoker consults it synchronously on every invoke.
 */
import { InvalidParameterValueException, validationError } from '../errors/platform-errors.ts';
import type { ResourceStore } from '../store/types.ts';

const KIND = 'reserved-concurrency';

/** Lambda keeps at least this much of the account's concurrency unreserved. */
export const minimumUnreservedConcurrency = 100;

export class ReservedConcurrency {
  readonly #store: ResourceStore;
  readonly #accountLimit: number;
  readonly #reserved = new Map<string, number>();
  #total = 0;

  constructor(store: ResourceStore, accountLimit: number) {
    this.#store = store;
    this.#accountLimit = accountLimit;
  }

  /** Reads the stored reservations into memory; call once before serving. */
  async load(): Promise<void> {
    const all = await this.#store.listResources<{ reserved: number }>(KIND);
    for (const { key, record } of all.items) this.#set(key, record.reserved);
  }

  get accountLimit(): number {
    return this.#accountLimit;
  }

  /** The function's reserved concurrency, or undefined when it uses the unreserved pool. */
  reservedFor(functionName: string): number | undefined {
    return this.#reserved.get(functionName);
  }

  /** What functions without a reservation share. */
  get unreserved(): number {
    return this.#accountLimit - this.#total;
  }

  async put(functionName: string, value: unknown): Promise<number> {
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      throw new InvalidParameterValueException('ReservedConcurrentExecutions must be an integer.');
    }
    if (value < 0) throw validationError(value, 'reservedConcurrentExecutions', 'Member must have value greater than or equal to 0');
    const others = this.#total - (this.#reserved.get(functionName) ?? 0);
    if (this.#accountLimit - others - value < minimumUnreservedConcurrency) {
      throw new InvalidParameterValueException(
        `Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [${minimumUnreservedConcurrency}].`,
      );
    }
    await this.#store.putResource(KIND, functionName, { reserved: value });
    this.#set(functionName, value);
    return value;
  }

  async delete(functionName: string): Promise<void> {
    await this.#store.deleteResource(KIND, functionName);
    this.#set(functionName, undefined);
  }

  #set(functionName: string, value: number | undefined): void {
    this.#total -= this.#reserved.get(functionName) ?? 0;
    if (value === undefined) this.#reserved.delete(functionName);
    else {
      this.#reserved.set(functionName, value);
      this.#total += value;
    }
  }
}
