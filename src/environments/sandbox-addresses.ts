/**
 * Each environment's own loopback address. On Lambda every execution environment has its
 * own network namespace, so an agent extension listens on localhost:8125 (DogStatsD),
 * :8126 (traces), :4318 (OTLP) and :8999 (Telemetry API) in every one of them at once.
 * Nimbus environments share the host's network, but Linux routes all of 127.0.0.0/8 to
 * loopback: giving each live environment an address of its own (127.77.x.y) keeps those
 * well-known ports, without one environment's agent taking another's.
 *
 * The address reaches the environment as NIMBUS_SANDBOX_ADDRESS and as `sandbox` in its
 * hosts file; Telemetry API deliveries go to it.
 */

const base = (127 << 24) | (77 << 16);
/** 127.77.0.1 .. 127.77.255.254: more than the account concurrency limit allows. */
const capacity = 65_534;

export class SandboxAddressPool {
  readonly #inUse = new Set<number>();
  #next = 1;

  /** The lowest-numbered free address after the last one handed out (wrapping around). */
  acquire(): string {
    if (this.#inUse.size >= capacity) throw new Error('no free sandbox loopback address');
    while (this.#inUse.has(this.#next)) this.#next = (this.#next % capacity) + 1;
    const n = this.#next;
    this.#inUse.add(n);
    this.#next = (n % capacity) + 1;
    return toDotted(base + n);
  }

  release(address: string): void {
    this.#inUse.delete(fromDotted(address) - base);
  }
}

function toDotted(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function fromDotted(address: string): number {
  return address.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** Addresses must be unique across every environment of this server process. */
export const sandboxAddresses = new SandboxAddressPool();
