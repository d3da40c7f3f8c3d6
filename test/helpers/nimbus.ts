/**
 * End-to-end test harness: a real Nimbus server, started as its own process on a
 * loopback port with a fresh data dir, and an AWS SDK v3 Lambda client pointed at it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LambdaClient, CreateFunctionCommand, type CreateFunctionCommandInput } from '@aws-sdk/client-lambda';
import { buildZip } from './zip.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cliPath = path.join(repoRoot, 'src', 'cli', 'main.ts');
/** Provisioned Node majors are shared by every test server (one download per machine). */
export const sharedRuntimesDir = path.join(os.tmpdir(), 'nimbus-test-runtimes');

export interface TestServerOptions {
  /** Extra NIMBUS_* variables (idle timeout, clock, sandbox...). */
  env?: Record<string, string>;
  /** Reuse a data dir (restart tests); a fresh one otherwise. */
  dataDir?: string;
}

export class TestServer {
  readonly url: string;
  readonly dataDir: string;
  readonly process: ChildProcess;
  readonly client: LambdaClient;
  output = '';
  readonly #ownsDataDir: boolean;

  private constructor(url: string, dataDir: string, child: ChildProcess, ownsDataDir: boolean) {
    this.url = url;
    this.dataDir = dataDir;
    this.process = child;
    this.#ownsDataDir = ownsDataDir;
    this.client = new LambdaClient({
      endpoint: url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
      maxAttempts: 1,
    });
  }

  static async start(options: TestServerOptions = {}): Promise<TestServer> {
    const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'nimbus-e2e-')));
    const child = spawn(process.execPath, [cliPath, 'serve', '--port', '0', '--data-dir', dataDir], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        NIMBUS_RUNTIMES_DIR: sharedRuntimesDir,
        NIMBUS_LOG_LEVEL: 'warn',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 20_000);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        const m = /listening on (http:\/\/\S+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${output}`)));
    });
    const server = new TestServer(url, dataDir, child, options.dataDir === undefined);
    server.output = output;
    child.stdout!.on('data', (c: Buffer) => (server.output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (server.output += c.toString()));
    return server;
  }

  /** SIGTERM and wait for a clean exit; returns the exit code. */
  async stop(): Promise<number | null> {
    this.client.destroy();
    if (this.process.exitCode !== null) return this.process.exitCode;
    const exited = new Promise<number | null>((resolve) => this.process.once('exit', (code) => resolve(code)));
    this.process.kill('SIGTERM');
    const code = await exited;
    if (this.#ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
    return code;
  }

  /** SIGKILL: the server dies with no chance to clean up. */
  async kill(): Promise<void> {
    this.client.destroy();
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    this.process.kill('SIGKILL');
    await exited;
  }

  /** Raw HTTP to the server (for what the SDK would refuse to send). */
  fetch(pathAndQuery: string, init?: RequestInit): Promise<Response> {
    return fetch(this.url + pathAndQuery, init);
  }

  /** Function log lines as the server keeps them. */
  async logs(functionName: string): Promise<string[]> {
    const res = await this.fetch(`/nimbus/v1/functions/${functionName}/logs?limit=10000`);
    const body = (await res.json()) as { records: Array<{ message: string }> };
    return body.records.map((r) => r.message);
  }

  async createFunction(input: Partial<CreateFunctionCommandInput> & { FunctionName: string; files: Record<string, string | { data: string; mode: number }> }) {
    const { files, ...rest } = input;
    const zip = await zipOf(files);
    return this.client.send(
      new CreateFunctionCommand({
        Runtime: 'nodejs24.x',
        Handler: 'index.handler',
        Role: 'arn:aws:iam::000000000000:role/test',
        // Max Memory Used counts every process of the environment: a Node.js runtime and a
        // Node.js extension together measure some 110 MB, too close to Lambda's 128 MB
        // default on a loaded machine. Functions with layers get 256 MB unless they say.
        ...(rest.Layers?.length ? { MemorySize: 256 } : {}),
        ...rest,
        Code: { ZipFile: zip },
      } as CreateFunctionCommandInput),
    );
  }
}

export function zipOf(files: Record<string, string | { data: string; mode: number }>): Promise<Buffer> {
  return buildZip(
    Object.entries(files).map(([name, content]) =>
      typeof content === 'string' ? { name, data: content } : { name, data: content.data, mode: content.mode },
    ),
  );
}

/** Decodes an SDK Invoke payload as JSON. */
export function payloadJson(payload: Uint8Array | undefined): unknown {
  return JSON.parse(Buffer.from(payload ?? new Uint8Array()).toString('utf8'));
}

export function logResult(logResult: string | undefined): string {
  return Buffer.from(logResult ?? '', 'base64').toString('utf8');
}
