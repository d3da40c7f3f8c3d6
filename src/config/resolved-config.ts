/**
 * Configuration is parsed once at start-up into a frozen ResolvedConfig. No other
 * module reads process.env: everything the server needs comes from here.
 *
 * Sources, later ones winning: Lambda's defaults, the config file
 * (`<dataDir>/nimbus.json` or --config), NIMBUS_* environment variables, CLI flags.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { systemClock, fixedClock, type Clock } from '../clock/clock.ts';

export type SandboxMode = 'auto' | 'bubblewrap' | 'process';

export interface ResolvedConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly region: string;
  readonly accountId: string;
  /** Where provisioned Node.js majors are cached. */
  readonly runtimesDir: string;
  /** Runtime id -> interpreter path, from the config file's `runtimes` map. */
  readonly interpreterOverrides: Readonly<Record<string, string>>;
  /** How long an idle environment is kept warm before it is shut down. */
  readonly idleTimeoutMs: number;
  /** Lambda's account concurrency limit (default 1000). */
  readonly accountConcurrencyLimit: number;
  /** New environments a function may start per 10 seconds (Lambda's scaling rate: 1000). */
  readonly scalingPer10Seconds: number;
  /** Lambda's Init phase limit: 10 s. */
  readonly initTimeoutMs: number;
  readonly sandbox: SandboxMode;
  readonly logRetentionPerFunction: number;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Print function log lines on the server's stderr too. */
  readonly echoFunctionLogs: boolean;
  /** Access key id -> secret access key: the callers AWS_IAM function URLs accept (SigV4). */
  readonly accessKeys: Readonly<Record<string, string>>;
  readonly clock: Clock;
  /** Delays before async retries after a function error (Lambda: about 1 and 2 minutes). */
  readonly asyncRetryDelaysMs: readonly number[];
  /** First back-off after an async throttle (Lambda: 1 s, doubling up to 5 minutes). */
  readonly asyncThrottleBaseMs: number;
  /** Agent telemetry older than this is purged (NIMBUS_TELEMETRY_RETENTION_HOURS, default 24). */
  readonly telemetryRetentionHours: number;
  /** Rows each telemetry table keeps at most, the most recent (NIMBUS_TELEMETRY_MAX_ROWS, default 1,000,000). */
  readonly telemetryMaxRows: number;
}

export interface CliServeOptions {
  host?: string;
  port?: string | number;
  dataDir?: string;
  region?: string;
  accountId?: string;
  config?: string;
}

interface ConfigFile {
  region?: string;
  accountId?: string;
  runtimesDir?: string;
  runtimes?: Record<string, string>;
  idleTimeoutMs?: number;
  accountConcurrencyLimit?: number;
  sandbox?: SandboxMode;
  logRetentionPerFunction?: number;
  logLevel?: ResolvedConfig['logLevel'];
  echoFunctionLogs?: boolean;
  accessKeys?: Record<string, string>;
  telemetryRetentionHours?: number;
  telemetryMaxRows?: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 9000,
  dataDir: './.nimbus',
  region: 'us-east-1',
  accountId: '000000000000',
  // Lambda keeps idle environments for minutes; ten is in the range observed.
  idleTimeoutMs: 10 * 60 * 1000,
  accountConcurrencyLimit: 1000,
  initTimeoutMs: 10_000,
  logRetentionPerFunction: 10_000,
  telemetryRetentionHours: 24,
  telemetryMaxRows: 1_000_000,
} as const;

function readConfigFile(file: string | undefined): ConfigFile {
  if (!file || !existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ConfigFile;
  } catch (err) {
    throw new ConfigError(`Cannot read config file ${file}: ${(err as Error).message}`);
  }
}

/** `accessKeys` in the config file: `{"AKIA...": "secret"}`, access key ids as IAM spells them. */
function accessKeysFrom(value: unknown): Readonly<Record<string, string>> {
  if (value === undefined) return Object.freeze({});
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError('accessKeys must be an object of access key id -> secret access key');
  const out: Record<string, string> = {};
  for (const [id, secret] of Object.entries(value)) {
    if (!/^[A-Z0-9]{16,128}$/.test(id)) throw new ConfigError(`accessKeys: ${id} is not an access key id (16-128 upper-case letters and digits)`);
    if (typeof secret !== 'string' || secret.length === 0) throw new ConfigError(`accessKeys: the secret of ${id} must be a non-empty string`);
    out[id] = secret;
  }
  return Object.freeze(out);
}

function intFrom(name: string, value: string | number | undefined, min: number, max: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  return n;
}

export function resolveConfig(cli: CliServeOptions, env: NodeJS.ProcessEnv): ResolvedConfig {
  const dataDir = path.resolve(cli.dataDir ?? env.NIMBUS_DATA_DIR ?? DEFAULTS.dataDir);
  const file = readConfigFile(cli.config ? path.resolve(cli.config) : path.join(dataDir, 'nimbus.json'));
  const accountId = cli.accountId ?? env.NIMBUS_ACCOUNT_ID ?? file.accountId ?? DEFAULTS.accountId;
  if (!/^\d{12}$/.test(accountId)) throw new ConfigError(`account id must be 12 digits, got ${accountId}`);
  const region = cli.region ?? env.NIMBUS_REGION ?? file.region ?? DEFAULTS.region;
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new ConfigError(`region must look like us-east-1, got ${region}`);
  const sandbox = (env.NIMBUS_SANDBOX ?? file.sandbox ?? 'auto') as SandboxMode;
  if (!['auto', 'bubblewrap', 'process'].includes(sandbox)) throw new ConfigError(`sandbox must be auto, bubblewrap or process`);
  let clock = systemClock;
  if (env.NIMBUS_NOW) {
    const at = new Date(env.NIMBUS_NOW);
    if (Number.isNaN(at.getTime())) throw new ConfigError(`NIMBUS_NOW is not a date: ${env.NIMBUS_NOW}`);
    clock = fixedClock(at);
  }
  const logLevel = (env.NIMBUS_LOG_LEVEL ?? file.logLevel ?? 'info') as ResolvedConfig['logLevel'];
  return Object.freeze({
    host: cli.host ?? env.NIMBUS_HOST ?? DEFAULTS.host,
    port: intFrom('port', cli.port ?? env.NIMBUS_PORT, 0, 65535) ?? DEFAULTS.port,
    dataDir,
    region,
    accountId,
    runtimesDir: path.resolve(env.NIMBUS_RUNTIMES_DIR ?? file.runtimesDir ?? path.join(dataDir, 'runtimes')),
    interpreterOverrides: Object.freeze({ ...(file.runtimes ?? {}) }),
    idleTimeoutMs: intFrom('idle timeout', env.NIMBUS_IDLE_TIMEOUT_MS ?? file.idleTimeoutMs, 100, 24 * 3600_000) ?? DEFAULTS.idleTimeoutMs,
    scalingPer10Seconds: intFrom('scaling rate', env.NIMBUS_SCALING_PER_10S, 1, 100_000) ?? 1000,
    accountConcurrencyLimit:
      intFrom('account concurrency limit', env.NIMBUS_ACCOUNT_CONCURRENCY ?? file.accountConcurrencyLimit, 1, 100_000) ??
      DEFAULTS.accountConcurrencyLimit,
    initTimeoutMs: DEFAULTS.initTimeoutMs,
    sandbox,
    logRetentionPerFunction: file.logRetentionPerFunction ?? DEFAULTS.logRetentionPerFunction,
    logLevel,
    echoFunctionLogs: env.NIMBUS_ECHO_FUNCTION_LOGS === '1' || file.echoFunctionLogs === true,
    accessKeys: accessKeysFrom(file.accessKeys),
    clock,
    asyncRetryDelaysMs: Object.freeze(delaysFrom(env.NIMBUS_ASYNC_RETRY_DELAYS_MS) ?? [60_000, 120_000]),
    asyncThrottleBaseMs: intFrom('async throttle back-off', env.NIMBUS_ASYNC_THROTTLE_BASE_MS, 1, 300_000) ?? 1000,
    telemetryRetentionHours:
      intFrom('telemetry retention hours', env.NIMBUS_TELEMETRY_RETENTION_HOURS ?? file.telemetryRetentionHours, 1, 24 * 366) ??
      DEFAULTS.telemetryRetentionHours,
    telemetryMaxRows: intFrom('telemetry max rows', env.NIMBUS_TELEMETRY_MAX_ROWS ?? file.telemetryMaxRows, 1, 1_000_000_000) ?? DEFAULTS.telemetryMaxRows,
  });
}

function delaysFrom(value: string | undefined): number[] | undefined {
  if (!value) return undefined;
  const delays = value.split(',').map((v) => intFrom('async retry delay', v.trim(), 0, 3_600_000)!);
  if (delays.length < 1) throw new ConfigError('NIMBUS_ASYNC_RETRY_DELAYS_MS takes a comma-separated list of milliseconds');
  return delays;
}


/** Where client commands find the server: --endpoint, then NIMBUS_ENDPOINT, then the default. */
export function resolveEndpoint(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const endpoint = flag ?? env.NIMBUS_ENDPOINT ?? `http://${DEFAULTS.host}:${DEFAULTS.port}`;
  try {
    return new URL(endpoint).toString().replace(/\/$/, '');
  } catch {
    throw new ConfigError(`endpoint must be a URL like http://127.0.0.1:9000, got ${endpoint}`);
  }
}
