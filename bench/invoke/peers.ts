/**
 * The peer: serverless-offline (13.x on serverless 3.x, the newest pair that installs
 * offline: serverless 4 downloads its framework at install time), installed on first run
 * into bench/peers/ from its lock file, serving the same fixture handler through its
 * Lambda-invoke endpoint so that it gets the very request the others get.
 *
 * Modes: default (each function in a worker thread) and `--useInProcess` (the handler runs
 * inside serverless-offline's own server process: no isolation at all).
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURE_DIR } from './floor.ts';
import { baseEnv, freePort, start, stop } from './procs.ts';
import type { Target } from './types.ts';

const PEERS_DIR = fileURLToPath(new URL('../peers/', import.meta.url));
const PEERS_MODULES = path.join(PEERS_DIR, 'node_modules');
const SLS_BIN = path.join(PEERS_MODULES, 'serverless/bin/serverless.js');

/**
 * serverless 3 validates provider.runtime against a list that ends at nodejs20.x; for
 * nodejs24.x it prints "Invalid configuration" as a warning and goes on (its default
 * configValidationMode is `warn`), and serverless-offline 13 knows nodejs24.x. Either way
 * serverless-offline runs the handler on the Node that runs it: ours, Node 24.
 */
export const SLS_RUNTIME = 'nodejs24.x';

/** Names the service `bench`, stage `dev`, function `echo`: Lambda name `bench-dev-echo`. */
const SERVERLESS_YML = `service: bench
frameworkVersion: "3"
provider:
  name: aws
  runtime: ${SLS_RUNTIME}
  stage: dev
  region: us-east-1
functions:
  echo:
    handler: index.handler
plugins:
  - serverless-offline
`;

export function peersVersions(): { serverless?: string; serverlessOffline?: string } {
  const read = (name: string): string | undefined => {
    try {
      return (JSON.parse(readFileSync(path.join(PEERS_MODULES, name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return undefined;
    }
  };
  return { serverless: read('serverless'), serverlessOffline: read('serverless-offline') };
}

/** Installs bench/peers from its lock file unless already there. Resolves to a reason on failure. */
export async function ensurePeers(log: (s: string) => void): Promise<string | undefined> {
  if (existsSync(SLS_BIN) && existsSync(path.join(PEERS_MODULES, 'serverless-offline/package.json'))) return undefined;
  log('installing serverless@3 + serverless-offline@13 into bench/peers (first run only): npm ci --prefix bench/peers');
  // npm is not measured, and needs the registry settings of this machine: full environment.
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
  const proc = start('npm ci', 'npm', ['ci', '--prefix', PEERS_DIR, '--no-audit', '--no-fund'], { env });
  const code = await Promise.race([proc.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 300_000).unref())]);
  await stop(proc);
  if (code !== 0) return `npm ci --prefix bench/peers failed (${code}): ${proc.output().trim().split('\n').slice(-5).join(' | ')}`;
  return undefined;
}

/** Starts serverless-offline in a throw-away service dir holding the fixture handler. */
/** serverless-offline's environment: no telemetry, notifications, update checks or set-up; nothing leaves the machine. */
export function serverlessEnv(): Record<string, string> {
  return baseEnv({
    SLS_TELEMETRY_DISABLED: '1',
    SLS_TRACKING_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
    SLS_DEPRECATION_DISABLE: '*',
    SLS_INTERACTIVE_SETUP_DISABLE: '1',
    SLS_DISABLE_AUTO_UPDATE: '1',
    SLS_GEO_LOCATION: 'us',
    CI: '1',
  });
}

/** `serverless offline start` on free loopback ports. */
export async function serverlessOfflineArgs(): Promise<{ args: string[]; httpPort: number; lambdaPort: number }> {
  const [httpPort, lambdaPort, websocketPort, albPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const args = [SLS_BIN, 'offline', 'start', '--host', '127.0.0.1', '--httpPort', String(httpPort), '--lambdaPort', String(lambdaPort),
    '--websocketPort', String(websocketPort), '--albPort', String(albPort)];
  return { args, httpPort, lambdaPort };
}

export async function startServerlessOffline(mode: 'default' | 'in-process'): Promise<Target> {
  const serviceDir = mkdtempSync(path.join(tmpdir(), 'nimbus-bench-sls-'));
  for (const f of ['index.js', 'package.json']) copyFileSync(path.join(FIXTURE_DIR, f), path.join(serviceDir, f));
  symlinkSync(PEERS_MODULES, path.join(serviceDir, 'node_modules'), 'dir');
  writeFileSync(path.join(serviceDir, 'serverless.yml'), SERVERLESS_YML);

  const { args, httpPort, lambdaPort } = await serverlessOfflineArgs();
  if (mode === 'in-process') args.push('--useInProcess');
  const proc = start(`serverless-offline ${mode}`, process.execPath, args, {
    cwd: serviceDir,
    env: serverlessEnv(),
  });
  const cleanup = async () => {
    await stop(proc);
    rmSync(serviceDir, { recursive: true, force: true });
  };
  try {
    const m = await proc.waitFor(/Offline \[http for lambda\] listening on (http:\/\/\S+)/, 90_000);
    const base = m[1].replace('localhost', '127.0.0.1').replace(/\/$/, '');
    return { url: `${base}/2015-03-31/functions/bench-dev-echo/invocations`, pid: proc.pid, stop: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
