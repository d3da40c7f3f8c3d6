/**
 * Nimbus's Node.js runtime client (src/runtimes/clients/node/index.mjs), run as
 * a real child process against a small but real Runtime API 2018-06-01 server.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const CLIENT = fileURLToPath(new URL('../../src/runtimes/clients/node/index.mjs', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url));
/** The interpreter for the client; set NIMBUS_TEST_CLIENT_NODE to try another Node. */
const NODE = process.env.NIMBUS_TEST_CLIENT_NODE || process.execPath;
const ARN = 'arn:aws:lambda:us-east-1:123456789012:function:nimbus-test';
const TRACE = 'Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface Chunk {
  at: number;
  data: Buffer;
}

/** What the runtime posted for one invoke (or for init). */
interface Posted {
  kind: 'response' | 'error' | 'init-error';
  headers: IncomingHttpHeaders;
  body: Buffer;
  chunks: Chunk[];
  trailers: NodeJS.Dict<string>;
  /** ms between the event being handed out and the post completing */
  elapsed: number;
}

interface InvokeOptions {
  /** sent verbatim instead of JSON.stringify(event) */
  raw?: string;
  headers?: Record<string, string>;
}

interface Pending {
  id: string;
  body: string;
  headers: Record<string, string>;
  resolve: (p: Posted) => void;
  handedOutAt: number;
}

/** A minimal Runtime API 2018-06-01 server. */
class FakeRuntimeApi {
  server: Server;
  port = 0;
  queue: Pending[] = [];
  waiting: ServerResponse[] = [];
  active = new Map<string, Pending>();
  initErrors: Posted[] = [];
  initErrorWaiters: Array<(p: Posted) => void> = [];
  nextInFlight = 0;
  maxNextInFlight = 0;
  /** status answered to /response, by request id (default 202) */
  responseStatus = new Map<string, number>();

  constructor() {
    this.server = createServer((req, res) => this.route(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return `127.0.0.1:${this.port}`;
  }

  close(): Promise<void> {
    for (const res of this.waiting) res.destroy();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Queues an invoke; resolves with what the runtime posted for it. */
  invoke(event: unknown, options: InvokeOptions = {}): { id: string; result: Promise<Posted> } {
    const id = randomUUID();
    let resolve!: (p: Posted) => void;
    const result = new Promise<Posted>((r) => (resolve = r));
    const pending: Pending = {
      id,
      body: options.raw ?? JSON.stringify(event),
      headers: options.headers ?? {},
      resolve,
      handedOutAt: 0,
    };
    const waiter = this.waiting.shift();
    if (waiter) this.handOut(waiter, pending);
    else this.queue.push(pending);
    return { id, result };
  }

  nextInitError(): Promise<Posted> {
    const done = this.initErrors.shift();
    if (done) return Promise.resolve(done);
    return new Promise((resolve) => this.initErrorWaiters.push(resolve));
  }

  private handOut(res: ServerResponse, p: Pending): void {
    this.nextInFlight--;
    p.handedOutAt = performance.now();
    this.active.set(p.id, p);
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Aws-Request-Id': p.id,
      'Lambda-Runtime-Deadline-Ms': String(Date.now() + 30_000),
      'Lambda-Runtime-Invoked-Function-Arn': ARN,
      'Lambda-Runtime-Trace-Id': TRACE,
      ...p.headers,
    });
    res.end(p.body);
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    if (req.method === 'GET' && url === '/2018-06-01/runtime/invocation/next') {
      this.nextInFlight++;
      this.maxNextInFlight = Math.max(this.maxNextInFlight, this.nextInFlight);
      const p = this.queue.shift();
      if (p) {
        this.handOut(res, p);
      } else {
        this.waiting.push(res);
        res.on('close', () => {
          const i = this.waiting.indexOf(res);
          if (i >= 0) {
            this.waiting.splice(i, 1);
            this.nextInFlight--;
          }
        });
      }
      return;
    }
    const m = /^\/2018-06-01\/runtime\/(?:invocation\/([^/]+)\/(response|error)|(init)\/error)$/.exec(url);
    if (req.method !== 'POST' || !m) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Chunk[] = [];
    req.on('data', (data: Buffer) => chunks.push({ at: performance.now(), data }));
    req.on('end', () => {
      const id = m[1] ? decodeURIComponent(m[1]) : undefined;
      const pending = id ? this.active.get(id) : undefined;
      const status = m[2] === 'response' && id ? (this.responseStatus.get(id) ?? 202) : 202;
      if (status === 413) {
        res.writeHead(413, { 'Content-Type': 'application/json' });
        res.end('{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}');
      } else {
        res.writeHead(202, { 'Content-Type': 'application/json' }).end('{"status":"OK"}');
      }
      const posted: Posted = {
        kind: m[3] ? 'init-error' : (m[2] as 'response' | 'error'),
        headers: req.headers,
        body: Buffer.concat(chunks.map((c) => c.data)),
        chunks,
        trailers: req.trailers,
        elapsed: pending ? performance.now() - pending.handedOutAt : 0,
      };
      if (posted.kind === 'init-error') {
        const waiter = this.initErrorWaiters.shift();
        if (waiter) waiter(posted);
        else this.initErrors.push(posted);
      } else if (pending) {
        this.active.delete(pending.id);
        pending.resolve(posted);
      }
    });
  }
}

/** The runtime client as a child process. */
class ClientProcess {
  child: ChildProcess;
  stdout = '';
  stderr = '';
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(taskRoot: string, handler: string, runtimeApi: string, extraEnv: Record<string, string>) {
    this.child = spawn(NODE, [CLIENT], {
      cwd: taskRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Only Lambda's variables: never the test runner's environment.
      env: {
        AWS_LAMBDA_RUNTIME_API: runtimeApi,
        _HANDLER: handler,
        LAMBDA_TASK_ROOT: taskRoot,
        AWS_LAMBDA_FUNCTION_NAME: 'nimbus-test',
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
        AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/nimbus-test',
        AWS_LAMBDA_LOG_STREAM_NAME: '2024/01/02/[$LATEST]0123456789abcdef0123456789abcdef',
        ...extraEnv,
      },
    });
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal })));
  }

  /** Complete stdout lines, split on tabs. */
  lines(): string[][] {
    return this.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('\t'));
  }

  jsonLines(): Record<string, unknown>[] {
    return this.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async waitForStdout(text: string, ms = 5000): Promise<void> {
    const until = Date.now() + ms;
    while (!this.stdout.includes(text)) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${JSON.stringify(text)} in: ${this.stdout}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

interface Env {
  api: FakeRuntimeApi;
  client: ClientProcess;
}

/** Starts a server and a client for `handler` in `taskRoot`, runs `body`, cleans up. */
async function withRuntime(
  fixture: string,
  handler: string,
  body: (env: Env) => Promise<void>,
  extraEnv: Record<string, string> = {},
): Promise<void> {
  const api = new FakeRuntimeApi();
  const address = await api.start();
  const taskRoot = fixture.startsWith('/') ? fixture : join(FIXTURES, fixture);
  const client = new ClientProcess(taskRoot, handler, address, extraEnv);
  try {
    await body({ api, client });
  } catch (err) {
    if (err instanceof Error) err.message += `\n--- client stdout ---\n${client.stdout}\n--- client stderr ---\n${client.stderr}`;
    throw err;
  } finally {
    client.stop();
    await client.exited;
    await api.close();
  }
}

const json = (p: Posted): unknown => JSON.parse(p.body.toString('utf8'));

interface ErrorBody {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

/** The JSON after `Uncaught Exception \t` (Text format) in a log line. */
function loggedError(line: string[]): Record<string, unknown> {
  assert.match(line[0], ISO);
  assert.equal(line[1], 'undefined');
  assert.equal(line[2], 'ERROR');
  assert.equal(line[3], 'Uncaught Exception ');
  return JSON.parse(line[4]) as Record<string, unknown>;
}

describe('node runtime client: handlers', () => {
  test('CommonJS async handler gets the event and the full context', async () => {
    await withRuntime('node-cjs', 'index.handler', async ({ api, client }) => {
      const identity = { cognitoIdentityId: 'us-east-1:abc', cognitoIdentityPoolId: 'us-east-1:pool' };
      const clientContext = { client: { app_title: 'nimbus' }, custom: { k: 'v' }, env: { locale: 'en' } };
      const { id, result } = api.invoke(
        { hello: 'world', n: 1 },
        {
          headers: {
            'Lambda-Runtime-Cognito-Identity': JSON.stringify(identity),
            'Lambda-Runtime-Client-Context': JSON.stringify(clientContext),
          },
        },
      );
      const posted = await result;
      assert.equal(posted.kind, 'response');
      assert.equal(posted.headers['content-type'], 'application/json');
      const out = json(posted) as { context: Record<string, unknown> } & Record<string, unknown>;
      assert.deepEqual(out.event, { hello: 'world', n: 1 });
      assert.equal(out.traceId, TRACE);
      assert.equal(out.typeofRequire, 'function');
      const ctx = out.context;
      const remaining = ctx.remainingTimeInMillis as number;
      assert.ok(remaining > 25_000 && remaining <= 30_000, `remaining ${remaining}`);
      delete ctx.remainingTimeInMillis;
      assert.deepEqual(ctx, {
        awsRequestId: id,
        functionName: 'nimbus-test',
        functionVersion: '$LATEST',
        invokedFunctionArn: ARN,
        memoryLimitInMB: '256',
        logGroupName: '/aws/lambda/nimbus-test',
        logStreamName: '2024/01/02/[$LATEST]0123456789abcdef0123456789abcdef',
        callbackWaitsForEmptyEventLoop: true,
        identity,
        clientContext,
        legacy: ['function', 'function', 'function'],
        keys: [
          'callbackWaitsForEmptyEventLoop', 'succeed', 'fail', 'done',
          'functionVersion', 'functionName', 'memoryLimitInMB', 'logGroupName', 'logStreamName',
          'clientContext', 'identity', 'invokedFunctionArn', 'awsRequestId', 'getRemainingTimeInMillis',
        ],
      });

      // Same process, next invoke: no identity / client context headers.
      const second = await api.invoke({ second: true }).result;
      const ctx2 = (json(second) as { context: Record<string, unknown> }).context;
      assert.equal(ctx2.identity, undefined);
      assert.equal(ctx2.clientContext, undefined);
    });
  });

  test('ES module .js with top-level await under "type": "module"', async () => {
    await withRuntime('node-esm', 'index.handler', async ({ api }) => {
      const { id, result } = api.invoke({ x: 1 });
      assert.deepEqual(json(await result), {
        esm: true,
        config: { loadedBy: 'top-level await' },
        typeofRequire: 'undefined',
        requestId: id,
        event: { x: 1 },
      });
    });
  });

  test('.mjs in a CommonJS package is ESM, .cjs in an ESM package is CommonJS', async () => {
    await withRuntime('node-cjs', 'modern.handler', async ({ api }) => {
      assert.deepEqual(json(await api.invoke([1, 2]).result), { mjs: true, typeofRequire: 'undefined', event: [1, 2] });
    });
    await withRuntime('node-esm', 'legacy.handler', async ({ api }) => {
      assert.deepEqual(json(await api.invoke({}).result), { cjs: true, typeofRequire: 'function' });
    });
  });

  test('handler in a sub-directory, resolved by a nested property path', async () => {
    await withRuntime('node-cjs', 'lib/deep.handlers.v1.run', async ({ api }) => {
      const { id, result } = api.invoke('just a string');
      assert.deepEqual(json(await result), { nested: true, requestId: id, event: 'just a string' });
    });
  });

  test('callback result waits for the empty event loop by default', async () => {
    await withRuntime('node-cjs', 'callback.withTimer', async ({ api }) => {
      const posted = await api.invoke({ wait: true, delay: 600 }).result;
      assert.deepEqual(json(posted), { timersFiredBefore: 0 });
      assert.ok(posted.elapsed >= 550, `posted after ${posted.elapsed} ms, before the timer`);
    });
  });

  test('callbackWaitsForEmptyEventLoop = false posts the callback result at once', async () => {
    await withRuntime('node-cjs', 'callback.withTimer', async ({ api }) => {
      const posted = await api.invoke({ wait: false, delay: 1500 }).result;
      assert.deepEqual(json(posted), { timersFiredBefore: 0 });
      assert.ok(posted.elapsed < 1000, `posted after ${posted.elapsed} ms`);
    });
  });

  test('no callback and no result: null once the loop is empty; async never settling: Runtime.NodeJsExit', async () => {
    await withRuntime('node-cjs', 'callback.syncNoResult', async ({ api }) => {
      const posted = await api.invoke({}).result;
      assert.equal(posted.kind, 'response');
      assert.equal(posted.body.toString(), 'null');
    });
    await withRuntime('node-cjs', 'callback.asyncNeverSettles', async ({ api }) => {
      const posted = await api.invoke({}).result;
      assert.equal(posted.kind, 'error');
      assert.equal(posted.headers['lambda-runtime-function-error-type'], 'Runtime.NodeJsExit');
      const body = json(posted) as ErrorBody;
      assert.equal(body.errorType, 'Runtime.NodeJsExit');
      assert.match(body.errorMessage, /^The Lambda runtime client detected an unexpected Node.js exit code/);
      // The process lives on and takes the next invoke.
      assert.equal((await api.invoke({}).result).kind, 'error');
    });
  });

  test('promise and callback: the first to report wins; legacy succeed/fail', async () => {
    await withRuntime('node-cjs', 'callback.callbackBeatsPromise', async ({ api }) => {
      assert.equal(json(await api.invoke({}).result), 'from-callback');
    });
    await withRuntime('node-cjs', 'callback.promiseBeatsCallback', async ({ api }) => {
      assert.equal(json(await api.invoke({}).result), 'from-promise');
      assert.equal(json(await api.invoke({}).result), 'from-promise');
    });
    await withRuntime('node-cjs', 'callback.legacySucceed', async ({ api }) => {
      assert.deepEqual(json(await api.invoke({}).result), { via: 'succeed' });
    });
    await withRuntime('node-cjs', 'callback.legacyFail', async ({ api }) => {
      const posted = await api.invoke({}).result;
      assert.equal(posted.kind, 'error');
      const body = json(posted) as ErrorBody;
      assert.equal(body.errorType, 'Error');
      assert.equal(body.errorMessage, 'via fail');
    });
  });

  test('413 on the response POST ends that invoke; the next one runs', async () => {
    await withRuntime('node-cjs', 'index.handler', async ({ api }) => {
      const first = api.invoke({ big: true });
      api.responseStatus.set(first.id, 413);
      assert.equal((await first.result).kind, 'response');
      const second = await api.invoke({ small: true }).result;
      assert.deepEqual((json(second) as { event: unknown }).event, { small: true });
    });
  });
});

describe('node runtime client: invoke errors', () => {
  test('a thrown error is posted as {errorType, errorMessage, trace}', async () => {
    await withRuntime('node-cjs', 'errors.thrown', async ({ api, client }) => {
      const { id, result } = api.invoke({});
      const posted = await result;
      assert.equal(posted.kind, 'error');
      assert.equal(posted.headers['lambda-runtime-function-error-type'], 'CustomError');
      assert.equal(posted.headers['content-type'], 'application/json');
      const body = json(posted) as ErrorBody;
      assert.deepEqual(Object.keys(body), ['errorType', 'errorMessage', 'trace']);
      assert.equal(body.errorType, 'CustomError');
      assert.equal(body.errorMessage, 'it broke');
      assert.equal(body.trace[0], 'CustomError: it broke');
      assert.match(body.trace[1], /^ {4}at .*errors\.js:\d+:\d+\)?$/);
      // Logged as Lambda does: "Invoke Error \t{json}" on one line.
      await client.waitForStdout('Invoke Error');
      const line = client.lines().find((l) => l[3] === 'Invoke Error ');
      assert.ok(line);
      assert.equal(line[1], id);
      assert.equal(line[2], 'ERROR');
      const logged = JSON.parse(line[4]) as Record<string, unknown>;
      assert.equal(logged.errorType, 'CustomError');
      assert.equal(logged.errorMessage, 'it broke');
      assert.equal(logged.detail, 'extra');
      assert.equal((logged.stack as string[])[0], 'CustomError: it broke');
    });
  });

  test('non-Error rejections, callback(err), unserializable results', async () => {
    await withRuntime('node-cjs', 'errors.rejectString', async ({ api }) => {
      const posted = await api.invoke({}).result;
      assert.equal(posted.headers['lambda-runtime-function-error-type'], 'string');
      assert.deepEqual(json(posted), { errorType: 'string', errorMessage: 'plain string', trace: [] });
    });
    await withRuntime('node-cjs', 'errors.rejectObject', async ({ api }) => {
      assert.deepEqual(json(await api.invoke({}).result), { errorType: 'object', errorMessage: '[object Object]', trace: [] });
    });
    await withRuntime('node-cjs', 'errors.rejectUndefined', async ({ api }) => {
      assert.deepEqual(json(await api.invoke({}).result), { errorType: 'string', errorMessage: 'handled', trace: [] });
    });
    await withRuntime('node-cjs', 'errors.callbackError', async ({ api }) => {
      const body = json(await api.invoke({}).result) as ErrorBody;
      assert.equal(body.errorType, 'TypeError');
      assert.equal(body.errorMessage, 'bad type');
      assert.equal(body.trace[0], 'TypeError: bad type');
    });
    await withRuntime('node-cjs', 'errors.circular', async ({ api }) => {
      const body = json(await api.invoke({}).result) as ErrorBody;
      assert.equal(body.errorType, 'Error');
      assert.equal(body.errorMessage, 'Unable to stringify response body');
    });
  });

  test('an event that is not JSON (e.g. empty) fails the invoke with the SyntaxError', async () => {
    await withRuntime('node-cjs', 'index.handler', async ({ api }) => {
      const posted = await api.invoke(undefined, { raw: '' }).result;
      assert.equal(posted.kind, 'error');
      const body = json(posted) as ErrorBody;
      assert.equal(body.errorType, 'SyntaxError');
      assert.equal(body.errorMessage, 'Unexpected end of JSON input');
      // and the runtime carries on
      assert.equal((await api.invoke({ ok: 1 }).result).kind, 'response');
    });
  });

  test('uncaught exception during an invoke: posted, logged, exit 129', async () => {
    await withRuntime('node-cjs', 'uncaught.exception', async ({ api, client }) => {
      const { id, result } = api.invoke({});
      const posted = await result;
      assert.equal(posted.kind, 'error');
      assert.equal(posted.headers['lambda-runtime-function-error-type'], 'RangeError');
      const body = json(posted) as ErrorBody;
      assert.equal(body.errorType, 'RangeError');
      assert.equal(body.errorMessage, 'kaboom');
      assert.equal(body.trace[0], 'RangeError: kaboom');
      assert.deepEqual(await client.exited, { code: 129, signal: null });
      const line = client.lines().find((l) => l[3] === 'Uncaught Exception ');
      assert.ok(line);
      assert.equal(line[1], id);
      assert.equal((JSON.parse(line[4]) as Record<string, unknown>).errorMessage, 'kaboom');
    });
  });

  test('log lines written just before the process dies are all delivered', async () => {
    await withRuntime('node-cjs', 'uncaught.loudException', async ({ api, client }) => {
      const { id, result } = api.invoke({ lines: 3000 });
      assert.equal((await result).kind, 'error');
      assert.deepEqual(await client.exited, { code: 129, signal: null });
      const lines = client.lines().filter((l) => l[1] === id && l[2] === 'INFO');
      assert.equal(lines.length, 3000);
      assert.equal(lines[2999][3], `line 2999 ${'x'.repeat(200)}`);
      assert.ok(client.lines().some((l) => l[3] === 'Uncaught Exception '));
    });
  });

  test('unhandled rejection during an invoke: Runtime.UnhandledPromiseRejection, exit 128', async () => {
    await withRuntime('node-cjs', 'uncaught.rejection', async ({ api, client }) => {
      const posted = await api.invoke({}).result;
      assert.equal(posted.kind, 'error');
      assert.equal(posted.headers['lambda-runtime-function-error-type'], 'Runtime.UnhandledPromiseRejection');
      const body = json(posted) as ErrorBody;
      assert.equal(body.errorType, 'Runtime.UnhandledPromiseRejection');
      assert.equal(body.errorMessage, 'Error: nobody catches this');
      assert.equal(body.trace[0], 'Runtime.UnhandledPromiseRejection: Error: nobody catches this');
      assert.deepEqual(await client.exited, { code: 128, signal: null });
      assert.ok(client.lines().some((l) => l[3] === 'Unhandled Promise Rejection '));
    });
  });
});

describe('node runtime client: init errors', () => {
  async function initError(
    fixture: string,
    handler: string,
  ): Promise<{ body: ErrorBody; posted: Posted; logged: Record<string, unknown>; client: ClientProcess }> {
    let out: { body: ErrorBody; posted: Posted; logged: Record<string, unknown>; client: ClientProcess } | undefined;
    await withRuntime(fixture, handler, async ({ api, client }) => {
      const posted = await api.nextInitError();
      assert.deepEqual(await client.exited, { code: 129, signal: null });
      const body = json(posted) as ErrorBody;
      assert.equal(posted.headers['lambda-runtime-function-error-type'], body.errorType);
      assert.equal(posted.headers['content-type'], 'application/json');
      // Node's own warnings (e.g. on ESM syntax in CommonJS) go through console.error too.
      const lines = client.lines().filter((l) => l[3] === 'Uncaught Exception ');
      assert.equal(lines.length, 1, client.stdout);
      const logged = loggedError(lines[0]);
      assert.equal(logged.errorType, body.errorType);
      assert.equal(logged.errorMessage, body.errorMessage);
      out = { body, posted, logged, client };
    });
    return out!;
  }

  test('Runtime.MalformedHandlerName: no dot, or ".." in the handler', async () => {
    const { body } = await initError('node-cjs', 'index');
    assert.equal(body.errorType, 'Runtime.MalformedHandlerName');
    assert.equal(body.errorMessage, 'Bad handler');
    assert.equal(body.trace[0], 'Runtime.MalformedHandlerName: Bad handler');
    const dots = await initError('node-cjs', '../node-esm/index.handler');
    assert.equal(dots.body.errorType, 'Runtime.MalformedHandlerName');
    assert.equal(
      dots.body.errorMessage,
      "'../node-esm/index.handler' is not a valid handler name. Use absolute paths when specifying root directories in handler names.",
    );
  });

  test('Runtime.ImportModuleError: missing module, missing dependency (CJS and ESM)', async () => {
    const { body } = await initError('node-cjs', 'nothere.handler');
    assert.equal(body.errorType, 'Runtime.ImportModuleError');
    assert.equal(body.errorMessage, `Error: Cannot find module 'nothere'\nRequire stack:\n- ${CLIENT}`);
    assert.equal(body.trace[0], `Runtime.ImportModuleError: Error: Cannot find module 'nothere'`);

    const dep = await initError('node-init-errors', 'requires-missing.handler');
    assert.equal(dep.body.errorType, 'Runtime.ImportModuleError');
    assert.equal(
      dep.body.errorMessage,
      `Error: Cannot find module 'nimbus-no-such-package'\nRequire stack:\n- ${join(FIXTURES, 'node-init-errors', 'requires-missing.js')}\n- ${CLIENT}`,
    );

    const esm = await initError('node-esm', 'missing-import.handler');
    assert.equal(esm.body.errorType, 'Runtime.ImportModuleError');
    // String(err): Node 22+ shows the code in it ("Error [ERR_MODULE_NOT_FOUND]: ...").
    const from = join(FIXTURES, 'node-esm', 'missing-import.js');
    assert.ok(
      [
        `Error: Cannot find package 'nimbus-no-such-package' imported from ${from}`,
        `Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'nimbus-no-such-package' imported from ${from}`,
      ].includes(esm.body.errorMessage),
      esm.body.errorMessage,
    );
  });

  test('Runtime.HandlerNotFound: not exported, or not a function', async () => {
    const { body } = await initError('node-init-errors', 'index.nothere');
    assert.equal(body.errorType, 'Runtime.HandlerNotFound');
    assert.equal(body.errorMessage, 'index.nothere is undefined or not exported');
    const notFn = await initError('node-init-errors', 'index.notAFunction');
    assert.equal(notFn.body.errorType, 'Runtime.HandlerNotFound');
    assert.equal(notFn.body.errorMessage, 'index.notAFunction is not a function');
  });

  test('Runtime.UserCodeSyntaxError: a parse error, or import syntax in CommonJS', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-node-syntax-'));
    try {
      writeFileSync(join(dir, 'package.json'), '{"type":"commonjs"}');
      writeFileSync(join(dir, 'broken.js'), 'exports.handler = async (event => {\n  return 1;\n};\n');
      const { body } = await initError(dir, 'broken.handler');
      assert.equal(body.errorType, 'Runtime.UserCodeSyntaxError');
      assert.match(body.errorMessage, /^SyntaxError: /);
      assert.equal(body.trace[0], `Runtime.UserCodeSyntaxError: ${body.errorMessage}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const esm = await initError('node-init-errors', 'esm-in-cjs.handler');
    assert.equal(esm.body.errorType, 'Runtime.UserCodeSyntaxError');
    assert.equal(esm.body.errorMessage, 'SyntaxError: Cannot use import statement outside a module');
  });

  test('an exception at module top level is reported with its own name', async () => {
    const { body, logged } = await initError('node-init-errors', 'toplevel-throw.handler');
    assert.equal(body.errorType, 'Error');
    assert.equal(body.errorMessage, 'top-level failure');
    assert.equal(body.trace[0], 'Error: top-level failure');
    assert.match(body.trace[1], /toplevel-throw\.js:3/);
    assert.deepEqual((logged.stack as string[])[0], 'Error: top-level failure');
  });
});

describe('node runtime client: logging', () => {
  test('Text format: one line per console call, tab-separated, \\n turned into \\r', async () => {
    await withRuntime('node-cjs', 'logging.handler', async ({ api, client }) => {
      const { id, result } = api.invoke({});
      assert.equal(json(await result), 'logged');
      await client.waitForStdout('single error');
      const lines = client.lines();
      for (const l of lines) assert.match(l[0], ISO);
      const simple = lines.map((l) => l.slice(1));
      assert.deepEqual(simple.slice(0, 10), [
        ['undefined', 'WARN', 'module loaded'],
        [id, 'INFO', 'log formatted'],
        [id, 'INFO', 'info line'],
        [id, 'WARN', 'warn line'],
        [id, 'ERROR', 'error line'],
        [id, 'DEBUG', 'debug line'],
        [id, 'TRACE', 'trace line'],
        [id, 'FATAL', 'fatal line'],
        [id, 'INFO', 'multi\rline\rmessage'],
        [id, 'INFO', '{ a: 1 }'],
      ]);
      assert.equal(lines.length, 12);
      assert.deepEqual(lines[10].slice(1, 3), [id, 'ERROR']);
      assert.match(lines[10][3], /^failed: Error: log error\r {4}at /);
      assert.match(lines[11][3], /^TypeError: single error\r {4}at /);
    });
  });

  test('JSON format with AWS_LAMBDA_LOG_LEVEL=WARN', async () => {
    await withRuntime(
      'node-cjs',
      'logging.handler',
      async ({ api, client }) => {
        const { id, result } = api.invoke({});
        assert.equal(json(await result), 'logged');
        await client.waitForStdout('single error');
        const lines = client.jsonLines();
        for (const l of lines) assert.match(l.timestamp as string, ISO);
        const bare = lines.map(({ timestamp, ...rest }) => rest);
        assert.deepEqual(bare.slice(0, 4), [
          { level: 'WARN', message: 'module loaded' },
          { level: 'WARN', requestId: id, message: 'warn line' },
          { level: 'ERROR', requestId: id, message: 'error line' },
          { level: 'FATAL', requestId: id, message: 'fatal line' },
        ]);
        assert.equal(lines.length, 6);
        const two = bare[4];
        assert.deepEqual(Object.keys(two), ['level', 'requestId', 'message', 'errorType', 'errorMessage', 'stackTrace']);
        assert.equal(two.errorType, 'Error');
        assert.equal(two.errorMessage, 'log error');
        assert.match(two.message as string, /^failed: Error: log error\n {4}at /);
        assert.equal((two.stackTrace as string[])[0], 'Error: log error');
        const single = bare[5] as { message: Record<string, unknown> };
        assert.equal(single.message.errorType, 'TypeError');
        assert.equal(single.message.errorMessage, 'single error');
        assert.equal((single.message.stackTrace as string[])[0], 'TypeError: single error');
      },
      { AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: 'WARN' },
    );
  });
});

describe('node runtime client: managed-instance concurrency', () => {
  test('two overlapping invokes in one process keep their own request ids', async () => {
    await withRuntime(
      'node-concurrent',
      'index.handler',
      async ({ api, client }) => {
        // Both loops are parked on /next before any event exists.
        while (api.waiting.length < 2) await new Promise((r) => setTimeout(r, 10));
        const a = api.invoke({ name: 'A', delay: 500 });
        const b = api.invoke({ name: 'B', delay: 100 });
        const [ra, rb] = await Promise.all([a.result, b.result]);
        const oa = json(ra) as { name: string; pid: number; requestId: string };
        const ob = json(rb) as { name: string; pid: number; requestId: string };
        assert.deepEqual([oa.name, oa.requestId, ob.name, ob.requestId], ['A', a.id, 'B', b.id]);
        assert.equal(oa.pid, client.child.pid);
        assert.equal(ob.pid, client.child.pid);
        assert.ok(rb.elapsed < ra.elapsed);
        await client.waitForStdout('end A');
        assert.deepEqual(
          client.lines().map((l) => l.slice(1)),
          [
            [a.id, 'INFO', 'start A'],
            [b.id, 'INFO', 'start B'],
            [b.id, 'INFO', 'end B'],
            [a.id, 'INFO', 'end A'],
          ],
        );
        assert.equal(api.maxNextInFlight, 2);
      },
      { AWS_LAMBDA_MAX_CONCURRENCY: '2' },
    );
  });
});

describe('node runtime client: response streaming', () => {
  test('chunks arrive as they are written, with the streaming headers', async () => {
    await withRuntime('node-streaming', 'stream.chunks', async ({ api }) => {
      const posted = await api.invoke({ gap: 300 }).result;
      assert.equal(posted.kind, 'response');
      assert.equal(posted.headers['lambda-runtime-function-response-mode'], 'streaming');
      assert.equal(posted.headers['transfer-encoding'], 'chunked');
      assert.equal(posted.headers['content-type'], 'text/plain');
      assert.equal(posted.headers.trailer, 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body');
      assert.equal(posted.body.toString(), 'first;second;third');
      const texts = posted.chunks.map((c) => c.data.toString());
      assert.deepEqual(texts, ['first;', 'second;', 'third']);
      assert.ok(posted.chunks[1].at - posted.chunks[0].at >= 250, 'second chunk came with the first');
      assert.ok(posted.chunks[2].at - posted.chunks[1].at >= 250, 'third chunk came with the second');
      assert.deepEqual(posted.trailers, {});
    });
  });

  test('stream.pipeline into the response stream', async () => {
    await withRuntime('node-streaming', 'stream.piped', async ({ api }) => {
      const posted = await api.invoke({ parts: ['one,', 'two,', 'three'] }).result;
      assert.equal(posted.body.toString(), 'one,two,three');
      assert.deepEqual(posted.trailers, {});
      // the next invoke runs once the pipeline has finished
      assert.equal((await api.invoke({ parts: ['again'] }).result).body.toString(), 'again');
    });
  });

  test('an error mid-stream goes in the trailers', async () => {
    await withRuntime('node-streaming', 'stream.midError', async ({ api, client }) => {
      const posted = await api.invoke({}).result;
      assert.equal(posted.kind, 'response');
      assert.equal(posted.headers['content-type'], 'application/octet-stream');
      assert.equal(posted.body.toString(), 'partial');
      assert.equal(posted.trailers['lambda-runtime-function-error-type'], 'Error');
      const decoded = JSON.parse(Buffer.from(posted.trailers['lambda-runtime-function-error-body']!, 'base64').toString()) as ErrorBody;
      assert.equal(decoded.errorType, 'Error');
      assert.equal(decoded.errorMessage, 'stream broke');
      assert.equal(decoded.trace[0], 'Error: stream broke');
      await client.waitForStdout('Invoke Error');
      // The process carries on with the next invoke.
      assert.equal((await api.invoke({}).result).body.toString(), 'partial');
    });
  });

  test('HttpResponseStream.from: JSON prelude, 8 NUL bytes, then the body', async () => {
    await withRuntime('node-streaming', 'stream.http', async ({ api }) => {
      const posted = await api.invoke({}).result;
      assert.equal(posted.headers['content-type'], 'application/vnd.awslambda.http-integration-response');
      const prelude = JSON.stringify({ statusCode: 201, headers: { 'x-custom': 'yes' }, cookies: ['a=1'] });
      assert.deepEqual(
        posted.body,
        Buffer.concat([Buffer.from(prelude), Buffer.alloc(8), Buffer.from('hello world')]),
      );
    });
  });
});
