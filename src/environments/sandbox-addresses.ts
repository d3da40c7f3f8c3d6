/**
 * Each environment's own loopback address. On Lambda every execution environment has its
 * own network namespace, so an agent extension listens on localhost:8125 (DogStatsD),
 * :8126 (traces), :4318 (OTLP) and :8999 (Telemetry API) in every one of them at once.
 * Nimbus environments share the host's network, but Linux routes all of 127.0.0.0/8 to
 * loopback: giving each live environment an address of its own keeps those well-known
 * ports, without one environment's agent taking another's.
 *
 * Addresses are drawn at random from 127.64.0.0/10 (four million of them), never twice
 * among this server's live environments: several Nimbus servers on one host (a developer's
 * and a test run's) then meet only by a chance of about n²/8M for n live environments,
 * with no coordination between them.
 *
 * The address reaches the environment as NIMBUS_SANDBOX_ADDRESS and as `sandbox` in its
 * hosts file; Telemetry API deliveries go to it.
 */
import { randomInt } from 'node:crypto';

const first = (127 << 24) | (64 << 16);
/** 127.64.0.0/10, without the network and broadcast-looking .0 and .255 addresses. */
const span = 1 << 22;

export class SandboxAddressPool {
  readonly #inUse = new Set<string>();
  readonly #draw: () => number;

  constructor(draw: () => number = () => randomInt(span)) {
    this.#draw = draw;
  }

  acquire(): string {
    for (;;) {
      const n = first + this.#draw();
      const last = n & 255;
      if (last === 0 || last === 255) continue;
      const address = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, last].join('.');
      if (this.#inUse.has(address)) continue;
      this.#inUse.add(address);
      return address;
    }
  }

  release(address: string): void {
    this.#inUse.delete(address);
  }
}

/** Addresses must be unique across every environment of this server process. */
export const sandboxAddresses = new SandboxAddressPool();
