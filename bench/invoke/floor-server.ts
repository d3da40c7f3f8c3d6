/**
 * The floor: the least work a Lambda-shaped invoke can take on this machine.
 *
 * One Node process with two HTTP servers: the invoke side takes
 * `POST /2015-03-31/functions/<name>/invocations` (any path, in fact) and hands the body
 * to a runtime process long-polling the Runtime API side
 * (`GET /2018-06-01/runtime/invocation/next`); what the runtime posts back to
 * `/2018-06-01/runtime/invocation/<id>/response` is the invoke's answer. No store, no
 * validation, no logs, no sandbox: whatever Nimbus does on top of this is its overhead.
 *
 * It starts `--runtimes N` runtime processes itself (one per concurrent invoke, as Lambda
 * and Nimbus do), all in its own process group, and prints
 * `listening http://127.0.0.1:<port>` then `ready` once every runtime has asked for work.
 * It exits, taking its runtimes along, on SIGTERM/SIGINT or when stdin closes (its parent
 * died).
 *
 * Usage: node floor-server.ts --runtimes N --runtime <script.mjs> --task-root <dir>
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    runtimes: { type: 'string', default: '1' },
    runtime: { type: 'string' },
    'task-root': { type: 'string' },
    handler: { type: 'string', default: 'index.handler' },
  },
});
if (!args.runtime || !args['task-root']) throw new Error('--runtime and --task-root are required');
const runtimeCount = Number(args.runtimes);
const FUNCTION_NAME = 'floor';
const FUNCTION_ARN = `arn:aws:lambda:us-east-1:000000000000:function:${FUNCTION_NAME}`;
const TIMEOUT_MS = 30_000;

interface Invocation {
  id: string;
  body: Buffer;
  res: ServerResponse;
}

const queued: Invocation[] = [];
const inFlight = new Map<string, Invocation>();
const waitingRuntimes: ServerResponse[] = [];
let runtimesSeen = 0;
let readyPrinted = false;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function dispatch(): void {
  while (queued.length > 0 && waitingRuntimes.length > 0) {
    const inv = queued.shift()!;
    const runtimeRes = waitingRuntimes.shift()!;
    inFlight.set(inv.id, inv);
    runtimeRes.writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Length': inv.body.length,
      'Lambda-Runtime-Aws-Request-Id': inv.id,
      'Lambda-Runtime-Deadline-Ms': String(Date.now() + TIMEOUT_MS),
      'Lambda-Runtime-Invoked-Function-Arn': FUNCTION_ARN,
    });
    runtimeRes.end(inv.body);
  }
}

const invokeServer = createServer(async (req, res) => {
  const body = await readBody(req);
  queued.push({ id: randomUUID(), body, res });
  dispatch();
});

const ACCEPTED = Buffer.from('{"status":"OK"}');
const RESULT_PATH = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/;

const runtimeApi = createServer(async (req, res) => {
  const url = req.url ?? '';
  if (req.method === 'GET' && url === '/2018-06-01/runtime/invocation/next') {
    if (!readyPrinted && ++runtimesSeen === runtimeCount) {
      readyPrinted = true;
      process.stdout.write('ready\n');
    }
    waitingRuntimes.push(res);
    dispatch();
    return;
  }
  const body = await readBody(req);
  const m = req.method === 'POST' ? url.match(RESULT_PATH) : null;
  if (!m) {
    if (url.endsWith('/init/error')) process.stderr.write(`runtime init error: ${body}\n`);
    res.writeHead(404).end();
    return;
  }
  const inv = inFlight.get(m[1]);
  if (!inv) {
    res.writeHead(400).end();
    return;
  }
  inFlight.delete(m[1]);
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json',
    'Content-Length': body.length,
  };
  if (m[2] === 'error') headers['X-Amz-Function-Error'] = 'Unhandled';
  inv.res.writeHead(200, headers).end(body);
  res.writeHead(202, { 'Content-Type': 'application/json', 'Content-Length': ACCEPTED.length }).end(ACCEPTED);
});
// A runtime's /next may wait for as long as no invoke comes.
runtimeApi.requestTimeout = 0;
runtimeApi.keepAliveTimeout = 600_000;

function listen(server: ReturnType<typeof createServer>): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

const runtimes: ChildProcess[] = [];
let stopping = false;
function shutdown(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const r of runtimes) r.kill('SIGKILL');
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.stdin.on('end', () => shutdown(0));
process.stdin.on('error', () => shutdown(0));
process.stdin.resume();

const invokePort = await listen(invokeServer);
const runtimePort = await listen(runtimeApi);

for (let i = 0; i < runtimeCount; i++) {
  const child = spawn(process.execPath, [args.runtime], {
    cwd: args['task-root'],
    // Lambda's own variables only (and PATH/HOME): nothing of ours leaks in.
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${runtimePort}`,
      _HANDLER: args.handler,
      LAMBDA_TASK_ROOT: args['task-root'],
      AWS_LAMBDA_FUNCTION_NAME: FUNCTION_NAME,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${FUNCTION_NAME}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `2026/01/01/[$LATEST]floor${i}`,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
      TZ: ':UTC',
    },
    // The runtime's own logs are not part of the floor; its errors go to our stderr.
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  child.once('exit', (code, sig) => {
    if (!stopping) {
      process.stderr.write(`floor runtime ${i} exited (code ${code}, signal ${sig})\n`);
      shutdown(1);
    }
  });
  runtimes.push(child);
}

process.stdout.write(`listening http://127.0.0.1:${invokePort} runtime-api 127.0.0.1:${runtimePort}\n`);
