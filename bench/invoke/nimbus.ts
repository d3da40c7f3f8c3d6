/**
 * Nimbus as a contender: `node src/cli/main.ts serve` on a free port with a throw-away data
 * dir, the fixture created as a function through the AWS SDK (as a user would), and
 * invoked over plain HTTP (`POST /2015-03-31/functions/<name>/invocations`), no SDK in
 * the load loop.
 */
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionConfigurationCommand,
  LambdaClient,
} from '@aws-sdk/client-lambda';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yazl from 'yazl';
import { FIXTURE_DIR, REPO_ROOT } from './floor.ts';
import { PAYLOAD, post, probe } from './http.ts';
import { baseEnv, freePort, start, stop } from './procs.ts';
import { median } from './stats.ts';
import type { Median, Target } from './types.ts';

const NIMBUS_MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const ROLE = 'arn:aws:iam::000000000000:role/bench';

/** Undefined when Nimbus can be started, else why not. */
export function nimbusMissing(): string | undefined {
  return existsSync(NIMBUS_MAIN) ? undefined : 'src/cli/main.ts not present yet';
}

/** The fixture handler as a Lambda zip (fixed timestamps: same bytes, same CodeSha256, every run). */
export function fixtureZip(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    const mtime = new Date('2026-01-01T00:00:00Z');
    for (const f of ['index.js', 'package.json']) {
      zip.addBuffer(readFileSync(path.join(FIXTURE_DIR, f)), f, { mtime, mode: 0o100644 });
    }
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
    zip.end();
  });
}

export interface NimbusServer {
  endpoint: string;
  /** The line Nimbus printed when listening (it names the sandbox in use). */
  banner: string;
  pid: number;
  client: LambdaClient;
  stop(): Promise<void>;
}

/** @param env extra variables for the server (NIMBUS_* settings). */
export async function startNimbus(env: Record<string, string> = {}): Promise<NimbusServer> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'nimbus-bench-data-'));
  const port = await freePort();
  const proc = start(
    'nimbus serve',
    process.execPath,
    [NIMBUS_MAIN, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir],
    { cwd: REPO_ROOT, env: baseEnv(env) },
  );
  const cleanup = async () => {
    // SIGTERM first: Nimbus shuts its environments down itself; stop() kills what is left.
    await stop(proc, 10_000);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const banner = (await proc.waitFor(/^.*http:\/\/127\.0\.0\.1:\d+.*$/m, 30_000))[0];
    const endpoint = banner.match(/http:\/\/127\.0\.0\.1:\d+/)![0];
    const client = new LambdaClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    return {
      endpoint,
      banner: banner.trim(),
      pid: proc.pid,
      client,
      stop: async () => {
        client.destroy();
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

export function invokeUrl(server: NimbusServer, name: string): string {
  return `${server.endpoint}/2015-03-31/functions/${encodeURIComponent(name)}/invocations`;
}

export async function createFunction(server: NimbusServer, name: string, zip: Buffer): Promise<void> {
  await server.client.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'nodejs24.x',
      Handler: 'index.handler',
      Role: ROLE,
      MemorySize: 128,
      Timeout: 30,
      Code: { ZipFile: zip },
    }),
  );
}

/** Lambda answers CreateFunction with State Pending; wait until it is Active. */
export async function waitActive(server: NimbusServer, name: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const cfg = await server.client.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
    if (cfg.State === undefined || cfg.State === 'Active') return;
    if (cfg.State === 'Failed') throw new Error(`${name}: State Failed (${cfg.StateReasonCode}: ${cfg.StateReason})`);
    if (Date.now() > deadline) throw new Error(`${name}: still ${cfg.State} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Creates the function the warm runs and the RSS run load. */
export async function warmTarget(server: NimbusServer, zip: Buffer): Promise<Target> {
  const name = 'bench-warm';
  await createFunction(server, name, zip);
  await waitActive(server, name);
  const url = invokeUrl(server, name);
  await probe(url);
  return { url, pid: server.pid, stop: async () => {} };
}

const INIT_DURATION = /Init Duration: ([\d.]+) ms/;

/** `nimbus logs <fn>`, for when the Tail log of the first invoke has no REPORT line. */
async function initDurationFromLogs(server: NimbusServer, name: string): Promise<number | undefined> {
  const proc = start('nimbus logs', process.execPath, [NIMBUS_MAIN, 'logs', name, '--endpoint', server.endpoint], {
    cwd: REPO_ROOT,
    env: baseEnv(),
  });
  try {
    await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 15_000).unref())]);
    const m = proc.output().match(INIT_DURATION);
    return m ? Number(m[1]) : undefined;
  } finally {
    await stop(proc);
  }
}

export interface ColdStart {
  firstInvoke: Median;
  initDuration?: Median;
  initDurationSource?: string;
}

/**
 * Cold start as a user meets it: CreateFunction returns, then the first invoke, timed
 * until its answer (retrying while the function is Pending, as a client must). One
 * throw-away round first, so the server's own first-use costs are not counted.
 */
export async function measureCold(server: NimbusServer, zip: Buffer, runs: number): Promise<ColdStart> {
  const times: number[] = [];
  const inits: number[] = [];
  let source: string | undefined;
  for (let i = 0; i <= runs; i++) {
    const name = `bench-cold-${i}`;
    await createFunction(server, name, zip);
    const t0 = process.hrtime.bigint();
    let reply = await post(invokeUrl(server, name), PAYLOAD, { 'X-Amz-Log-Type': 'Tail' });
    while (reply.status === 409) {
      await new Promise((r) => setTimeout(r, 1));
      reply = await post(invokeUrl(server, name), PAYLOAD, { 'X-Amz-Log-Type': 'Tail' });
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (reply.status !== 200 || reply.headers['x-amz-function-error']) {
      throw new Error(`cold invoke of ${name}: status ${reply.status}, body ${reply.body.slice(0, 300)}`);
    }
    if (i > 0) {
      times.push(ms);
      const tail = reply.headers['x-amz-log-result'];
      const m = typeof tail === 'string' ? Buffer.from(tail, 'base64').toString('utf8').match(INIT_DURATION) : null;
      if (m) {
        source ??= 'X-Amz-Log-Result (LogType Tail)';
        inits.push(Number(m[1]));
      } else {
        const fromLogs = await initDurationFromLogs(server, name);
        if (fromLogs !== undefined) {
          source ??= 'nimbus logs';
          inits.push(fromLogs);
        }
      }
    }
    // Free the environment: idle environments would otherwise sit beside the warm runs.
    await server.client.send(new DeleteFunctionCommand({ FunctionName: name }));
  }
  return {
    firstInvoke: median(times),
    ...(inits.length > 0 ? { initDuration: median(inits), initDurationSource: source } : {}),
  };
}
