/**
 * HTTP and request validation of the Telemetry API 2022-07-01 (`PUT /2022-07-01/telemetry`)
 * and the older Logs API 2020-08-15 (`PUT /2020-08-15/logs`)
 * (shared/reference/lambda-interfaces.md §3.1, §3.3): schema versions, event types, the
 * HTTP destination on the sandbox's own address, and buffering with Lambda's defaults and
 * ranges. A request that breaks several rules is told all of them, `; `-separated, as
 * Lambda words its ValidationError.
 */
import type { IncomingMessage } from 'node:http';
import { extensionIdentifier, maxExtensionRequestBytes } from './extensions-api.ts';
import { errorReply, readBody, respond, type RouteInstaller, type RuntimeApiReply } from './runtime-api-server.ts';

export type TelemetryCategory = 'platform' | 'function' | 'extension';
export type SubscriptionApi = 'telemetry' | 'logs';

export interface Subscription {
  api: SubscriptionApi;
  schemaVersion: string;
  /** The types as the extension sent them (for platform.telemetrySubscription). */
  types: TelemetryCategory[];
  /** Where batches are POSTed: the sandbox's address is this machine's loopback. */
  destination: { host: string; port: number; path: string };
  maxItems: number;
  maxBytes: number;
  timeoutMs: number;
}

export interface TelemetryApiCore {
  subscribe(api: SubscriptionApi, extensionId: string, body: Buffer): RuntimeApiReply;
}

const categories: readonly TelemetryCategory[] = ['platform', 'function', 'extension'];
const telemetrySchemas = ['2022-07-01', '2022-12-13', '2025-01-29'];
/** Lambda Managed Instances take the 2025-01-29 schema only. */
const managedInstancesSchemas = ['2025-01-29'];
const logsSchemas = ['2020-08-15', '2021-03-18'];
/** `sandbox.localdomain` is the sandbox itself (and `sandbox` in the Logs API's examples). */
const localHosts = new Set(['sandbox.localdomain', 'sandbox', 'localhost', '127.0.0.1']);

export const bufferingRanges = {
  maxItems: { min: 1000, max: 10_000, default: 10_000 },
  maxBytes: { min: 262_144, max: 1_048_576, default: 262_144 },
  timeoutMs: { min: 25, max: 30_000, default: 1000 },
} as const;

export function validationErrorType(api: SubscriptionApi): string {
  return api === 'telemetry' ? 'ValidationError' : 'Logs.ValidationError';
}

/** Telemetry.SubscriptionClosed / Logs.SubscriptionClosed (RIE's TurnOff after Init). */
export function subscriptionClosed(api: SubscriptionApi): RuntimeApiReply {
  return api === 'telemetry'
    ? errorReply(403, 'Telemetry.SubscriptionClosed', 'Telemetry API subscription is closed')
    : errorReply(403, 'Logs.SubscriptionClosed', 'Logs API subscription is closed');
}

function checkDestination(value: unknown, problems: string[]): Subscription['destination'] | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    problems.push('destination is required');
    return undefined;
  }
  const { protocol, URI } = value as { protocol?: unknown; URI?: unknown };
  if (protocol === 'TCP') {
    problems.push('destination protocol TCP is not available in Nimbus; use HTTP');
    return undefined;
  }
  if (protocol !== 'HTTP') {
    problems.push('destination protocol should be HTTP or TCP');
    return undefined;
  }
  if (typeof URI !== 'string' || URI === '') {
    problems.push('URI is not provided');
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(URI);
  } catch {
    problems.push('URI is not a valid URL');
    return undefined;
  }
  const before = problems.length;
  if (url.protocol !== 'http:') problems.push('URI scheme should be http (HTTPS is not supported)');
  if (!localHosts.has(url.hostname)) problems.push('URI host should be sandbox.localdomain');
  if (url.port === '') problems.push('URI port is not provided');
  else if (url.port === '0') problems.push('URI port should be from 1 to 65535');
  if (problems.length > before) return undefined;
  return { host: '127.0.0.1', port: Number(url.port), path: `${url.pathname}${url.search}` };
}

function checkBuffering(value: unknown, problems: string[]): Pick<Subscription, 'maxItems' | 'maxBytes' | 'timeoutMs'> {
  const out: Pick<Subscription, 'maxItems' | 'maxBytes' | 'timeoutMs'> = { maxItems: bufferingRanges.maxItems.default, maxBytes: bufferingRanges.maxBytes.default, timeoutMs: bufferingRanges.timeoutMs.default };
  if (value === undefined || value === null) return out;
  if (typeof value !== 'object' || Array.isArray(value)) {
    problems.push('buffering should be an object');
    return out;
  }
  for (const key of ['maxItems', 'maxBytes', 'timeoutMs'] as const) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined) continue;
    const { min, max } = bufferingRanges[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      problems.push(`buffering.${key} should be an integer from ${min} to ${max}`);
      continue;
    }
    out[key] = v;
  }
  return out;
}

/** Validates a subscription request; returns it, or the 400 to send. */
export function parseSubscription(api: SubscriptionApi, body: Buffer, managedInstances: boolean): Subscription | RuntimeApiReply {
  const fail = (message: string) => errorReply(400, validationErrorType(api), message);
  if (api === 'logs' && managedInstances) {
    return fail('The Logs API is not available on Lambda Managed Instances; subscribe to the Telemetry API with schema version 2025-01-29');
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return fail(`failed to parse JSON: ${(err as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return fail('the request body should be a JSON object');
  const input = value as Record<string, unknown>;
  const problems: string[] = [];

  const allowed = api === 'logs' ? logsSchemas : managedInstances ? managedInstancesSchemas : telemetrySchemas;
  let schemaVersion = input.schemaVersion;
  if (schemaVersion === undefined && api === 'logs') schemaVersion = '2020-08-15';
  if (schemaVersion === undefined) problems.push('schemaVersion is not provided');
  else if (typeof schemaVersion !== 'string' || !allowed.includes(schemaVersion)) {
    problems.push(`schemaVersion should be one of ${allowed.join(', ')}`);
  }

  const types = input.types;
  if (!Array.isArray(types) || types.length === 0) problems.push('types should not be empty');
  else if (!types.every((t) => typeof t === 'string' && (categories as readonly string[]).includes(t))) {
    problems.push(`types should only contain ${categories.join(', ')}`);
  }

  const destination = checkDestination(input.destination, problems);
  const buffering = checkBuffering(input.buffering, problems);
  if (problems.length > 0 || !destination) return fail(problems.join('; '));
  return { api, schemaVersion: schemaVersion as string, types: types as TelemetryCategory[], destination, ...buffering };
}

async function subscribeBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return readBody(req, maxExtensionRequestBytes);
}

export function telemetryRoutes(core: TelemetryApiCore): RouteInstaller {
  return (route) => {
    for (const [api, path] of [
      ['telemetry', '/2022-07-01/telemetry'],
      ['logs', '/2020-08-15/logs'],
    ] as const) {
      route('PUT', path, (req, res) => {
        void respond(req, res, async () => {
          const id = extensionIdentifier(req);
          const body = await subscribeBody(req);
          if (typeof id !== 'string') return id;
          if (body === undefined) return errorReply(400, validationErrorType(api), `The request body is larger than ${maxExtensionRequestBytes} bytes`);
          return core.subscribe(api, id, body);
        });
      });
    }
  };
}
