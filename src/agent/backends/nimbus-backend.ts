/**
 * The Nimbus server's telemetry store: the batch as it is, in JSON, to `NIMBUS_TELEMETRY_ENDPOINT`
 * (the full URL of the server's intake). The server speaks our model, so there is nothing
 * to translate.
 */

import type { TelemetryBackend, TelemetryBatch } from '../model.ts';
import { postAccepted } from './http-post.ts';

export interface NimbusBackendOptions {
  endpoint: string;
}

/**
 * A 4xx other than 429 says the server will never take this batch (malformed, too large,
 * unknown function): retrying would only block the ones behind it.
 */
function isPermanent(status: number): boolean {
  return status >= 400 && status < 500 && status !== 429;
}

export class NimbusBackend implements TelemetryBackend {
  readonly name = 'nimbus';
  readonly #endpoint: string;

  constructor(options: NimbusBackendOptions) {
    this.#endpoint = options.endpoint;
  }

  async send(batch: TelemetryBatch, signal?: AbortSignal): Promise<void> {
    const body = JSON.stringify(batch);
    await postAccepted(this.name, this.#endpoint, body, { headers: { 'Content-Type': 'application/json' }, signal }, isPermanent);
  }
}
