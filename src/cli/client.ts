/**
 * What the client commands share: the --endpoint and --json options, an AWS SDK
 * Lambda client pointed at Nimbus (loaded only when a command needs it), and output.
 */
import type { Command } from 'commander';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { resolveEndpoint } from '../config/resolved-config.ts';

export interface ClientOptions {
  endpoint?: string;
  json?: boolean;
}

export function withClientOptions(command: Command): Command {
  return command
    .option('--endpoint <url>', 'Nimbus server (default $NIMBUS_ENDPOINT or http://127.0.0.1:9000)')
    .option('--json', 'print machine-readable JSON');
}

export function endpointOf(options: ClientOptions): string {
  return resolveEndpoint(options.endpoint, process.env);
}

export async function lambdaClient(options: ClientOptions): Promise<{ client: LambdaClient; sdk: typeof import('@aws-sdk/client-lambda') }> {
  const sdk = await import('@aws-sdk/client-lambda');
  const client = new sdk.LambdaClient({
    endpoint: endpointOf(options),
    region: process.env.AWS_REGION ?? 'us-east-1',
    // Nimbus accepts any well-formed signature; local placeholders keep the SDK from
    // searching for credentials it does not need.
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'nimbus', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'nimbus' },
    maxAttempts: 1,
  });
  return { client, sdk };
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Fetches a Nimbus route and throws the server's AWS-shaped error as a readable Error. */
export async function fetchNimbus(options: ClientOptions, pathAndQuery: string): Promise<unknown> {
  const res = await fetch(endpointOf(options) + pathAndQuery);
  const text = await res.text();
  const body: unknown = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    const err = new Error((body as { message?: string } | undefined)?.message ?? `HTTP ${res.status}`);
    err.name = res.headers.get('x-amzn-errortype') ?? 'Error';
    throw err;
  }
  return body;
}

/** Commander's collector for a repeatable option (`--env A=1 --env B=2`). */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];
