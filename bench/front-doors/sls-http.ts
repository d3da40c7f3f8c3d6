/**
 * serverless-offline's HTTP event as the peer of Nimbus's front doors: the fixture
 * handler behind an `httpApi` event (`POST /echo`), in serverless-offline's default mode
 * (worker threads). Installed by bench/invoke/peers.ts (`npm ci --prefix bench/peers`),
 * started with telemetry and update checks off, as bench/invoke does.
 */
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, stop } from '../invoke/procs.ts';
import { serverlessEnv, serverlessOfflineArgs } from '../invoke/peers.ts';
import type { Target } from '../invoke/types.ts';

const PEERS_MODULES = fileURLToPath(new URL('../peers/node_modules/', import.meta.url));
export const FIXTURE = fileURLToPath(new URL('./fixture/', import.meta.url));

const SERVERLESS_YML = `service: frontdoors
frameworkVersion: "3"
provider:
  name: aws
  runtime: nodejs24.x
  stage: dev
  region: us-east-1
functions:
  echo:
    handler: index.handler
    events:
      - httpApi:
          path: /echo
          method: post
plugins:
  - serverless-offline
`;

export async function startServerlessOfflineHttp(): Promise<Target> {
  const serviceDir = mkdtempSync(path.join(tmpdir(), 'nimbus-bench-sls-http-'));
  for (const f of ['index.js', 'package.json']) copyFileSync(path.join(FIXTURE, f), path.join(serviceDir, f));
  symlinkSync(PEERS_MODULES, path.join(serviceDir, 'node_modules'), 'dir');
  writeFileSync(path.join(serviceDir, 'serverless.yml'), SERVERLESS_YML);
  const { args, httpPort } = await serverlessOfflineArgs();
  const proc = start('serverless-offline http', process.execPath, args, { cwd: serviceDir, env: serverlessEnv() });
  const cleanup = async () => {
    await stop(proc);
    rmSync(serviceDir, { recursive: true, force: true });
  };
  try {
    await proc.waitFor(/Server ready: http:\/\/\S+/, 90_000);
    return { url: `http://127.0.0.1:${httpPort}/echo`, pid: proc.pid, stop: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
