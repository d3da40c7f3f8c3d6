/**
 * Nimbus's Python runtime client (src/runtimes/clients/python/bootstrap.py), run as a real
 * child process against a minimal Runtime API 2018-06-01 server written here, with a clean
 * environment holding only Lambda's variables plus PATH.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLIENT_DIR = join(ROOT, 'src', 'runtimes', 'clients', 'python');
const BOOTSTRAP = join(CLIENT_DIR, 'bootstrap.py');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'functions');
const PREFIX = '/2018-06-01/runtime';

/** The real interpreter behind `python3` (pyenv shims need more than PATH to run). */
const PYTHON =
  process.env.NIMBUS_TEST_PYTHON ??
  execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

interface Invocation {
  id: string;
  body: string;
  headers: Record<string, string>;
}

interface Recorded {
  kind: 'response' | 'error' | 'init-error';
  id: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A small but real Runtime API: queues events for /next, records what the runtime posts. */
class RuntimeApiServer {
  server: Server;
  port = 0;
  queue: Invocation[] = [];
  parked: ServerResponse[] = [];
  records: Recorded[] = [];
  nextCalls = 0;
  /** Drop the connection right after answering a POST, as a server closing idle sockets would. */
  dropAfterPost = false;
  sockets = new Set<Socket>();

  constructor() {
    this.server = createServer((req, res) => this.route(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    this.port = (this.server.address() as AddressInfo).port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  route(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const url = req.url ?? '';
      if (req.method === 'GET' && url === `${PREFIX}/invocation/next`) {
        this.nextCalls++;
        this.parked.push(res);
        this.dispatch();
        return;
      }
      const match = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(url);
      if (req.method === 'POST' && match) {
        this.records.push({ kind: match[2] as 'response' | 'error', id: match[1], headers: req.headers, body });
        this.accepted(res);
        return;
      }
      if (req.method === 'POST' && url === `${PREFIX}/init/error`) {
        this.records.push({ kind: 'init-error', id: '', headers: req.headers, body });
        this.accepted(res);
        return;
      }
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errorMessage: 'Not found', errorType: 'NotFound' }));
    });
  }

  accepted(res: ServerResponse): void {
    res.writeHead(202, { 'Content-Type': 'application/json' });
    res.end('{"status":"OK"}', () => {
      if (this.dropAfterPost) res.socket?.destroy();
    });
  }

  dispatch(): void {
    while (this.queue.length > 0 && this.parked.length > 0) {
      const invocation = this.queue.shift() as Invocation;
      const res = this.parked.shift() as ServerResponse;
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Lambda-Runtime-Aws-Request-Id': invocation.id,
        'Lambda-Runtime-Deadline-Ms': String(Date.now() + 30_000),
        'Lambda-Runtime-Invoked-Function-Arn': 'arn:aws:lambda:us-east-1:123456789012:function:py-fn',
        ...invocation.headers,
      });
      res.end(invocation.body);
    }
  }

  enqueue(id: string, event: unknown): void {
    this.queue.push({ id, body: JSON.stringify(event), headers: {} });
    this.dispatch();
  }

  /** Queues an event and resolves with what the runtime posted back for it. */
  async invoke(id: string, event: unknown, headers: Record<string, string> = {}, rawBody?: string): Promise<Recorded> {
    this.queue.push({ id, body: rawBody ?? JSON.stringify(event), headers });
    this.dispatch();
    return until(() => this.records.find((r) => r.id === id), `a result for ${id}`);
  }

  /** Number of /next requests the runtime is currently waiting on. */
  get pendingNext(): number {
    return this.parked.length;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((done) => this.server.close(() => done()));
  }
}

async function until<T>(check: () => T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 10));
  }
}

interface Runtime {
  api: RuntimeApiServer;
  child: ChildProcess;
  taskRoot: string;
  stdout: () => string;
  stderr: () => string;
  lines: () => string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let tempRoot = '';
const running: Runtime[] = [];

before(() => {
  // A copy, so Python's __pycache__ never lands in the repository.
  tempRoot = mkdtempSync(join(tmpdir(), 'nimbus-python-client-'));
  for (const name of readdirSync(FIXTURES).filter((entry) => entry.startsWith('python-'))) {
    cpSync(join(FIXTURES, name), join(tempRoot, name), { recursive: true });
  }
});

after(() => {
  rmSync(tempRoot, { recursive: true, force: true });
});

afterEach(async () => {
  for (const runtime of running.splice(0)) {
    if (runtime.child.exitCode === null && runtime.child.signalCode === null) runtime.child.kill('SIGKILL');
    await runtime.exited;
    await runtime.api.close();
  }
});

async function startRuntime(fixture: string, handler: string, extraEnv: Record<string, string> = {}): Promise<Runtime> {
  const api = new RuntimeApiServer();
  await api.listen();
  const taskRoot = join(tempRoot, fixture);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    AWS_LAMBDA_RUNTIME_API: api.address,
    _HANDLER: handler,
    LAMBDA_TASK_ROOT: taskRoot,
    AWS_LAMBDA_FUNCTION_NAME: 'py-fn',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
    AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/py-fn',
    AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/02/[$LATEST]0123456789abcdef0123456789abcdef',
    ...extraEnv,
  };
  const child = spawn(PYTHON, [BOOTSTRAP], { cwd: taskRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('exit', (code, signal) => done({ code, signal })),
  );
  const runtime: Runtime = {
    api,
    child,
    taskRoot,
    stdout: () => out,
    stderr: () => err,
    lines: () => out.split('\n').filter((line) => line !== ''),
    exited,
  };
  running.push(runtime);
  return runtime;
}

/** 1-based line number of the fixture line that is `text` (trimmed), else the first containing it. */
function lineOf(file: string, text: string): number {
  const lines = readFileSync(file, 'utf8').split('\n');
  const exact = lines.findIndex((line) => line.trim() === text);
  const index = exact !== -1 ? exact : lines.findIndex((line) => line.includes(text));
  assert.notEqual(index, -1, `${text} not in ${file}`);
  return index + 1;
}

const TS = '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}';
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const UNHANDLED_WARNING =
  'LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. However, in rare cases, a Lambda runtime update can cause unexpected function behavior. For functions using managed runtimes, runtime updates can be triggered by a function change, or can be applied automatically. To determine if the runtime has been updated, check the runtime version in the INIT_START log entry. If this error correlates with a change in the runtime version, you may be able to mitigate this error by temporarily rolling back to the previous runtime version. For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html';

describe('handler resolution', () => {
  it('runs module.function, posts the JSON result and keeps the connection for the next invoke', async () => {
    const rt = await startRuntime('python-basic', 'app.echo');
    const first = await rt.api.invoke('req-1', { name: 'Zoë', n: [1, 2.5, null, true] });
    assert.equal(first.kind, 'response');
    assert.equal(first.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(first.body), { handler: 'app.echo', event: { name: 'Zoë', n: [1, 2.5, null, true] } });
    // Lambda's runtime escapes non-ASCII in the JSON it returns.
    assert.equal(first.body, '{"handler": "app.echo", "event": {"name": "Zo\\u00eb", "n": [1, 2.5, null, true]}}');
    const second = await rt.api.invoke('req-2', 'just a string');
    assert.equal(second.body, '{"handler": "app.echo", "event": "just a string"}');
    await until(() => rt.api.pendingNext === 1, 'the third /next');
    assert.equal(rt.api.nextCalls, 3);
  });

  it('reconnects when the Runtime API drops a kept-alive connection', async () => {
    const rt = await startRuntime('python-basic', 'app.echo');
    rt.api.dropAfterPost = true;
    for (const id of ['drop-1', 'drop-2', 'drop-3']) {
      const result = await rt.api.invoke(id, { id });
      assert.deepEqual(JSON.parse(result.body), { handler: 'app.echo', event: { id } });
    }
    await until(() => rt.api.pendingNext === 1, 'the fourth /next');
    assert.equal(rt.stderr(), '');
  });

  it('resolves nested packages written with slashes or dots', async () => {
    for (const handler of ['pkg/sub/mod.handler', 'pkg.sub.mod.handler']) {
      const rt = await startRuntime('python-basic', handler);
      const result = await rt.api.invoke(`nested-${handler.replaceAll('/', '-')}`, { via: handler });
      assert.equal(result.kind, 'response');
      assert.deepEqual(JSON.parse(result.body), { module: 'pkg.sub.mod', event: { via: handler } });
    }
  });

  it("puts LAMBDA_TASK_ROOT first on sys.path and never lets the client's directory shadow user modules", async () => {
    const rt = await startRuntime('python-basic', 'bootstrap.handler');
    const result = await rt.api.invoke('shadow', {});
    assert.equal(result.body, '"user bootstrap module"');

    const info = await startRuntime('python-basic', 'app.context_info');
    const body = JSON.parse((await info.api.invoke('path', {})).body);
    assert.equal(body.sys_path[0], info.taskRoot);
    assert.ok(!body.sys_path.includes(CLIENT_DIR), 'the client directory is off sys.path');
    assert.equal(body.cwd_module_file, join(info.taskRoot, 'app.py'));
  });
});

describe('init errors', () => {
  interface InitCase {
    name: string;
    fixture: string;
    handler: string;
    errorType: string;
    errorMessage: string;
  }
  const cases: InitCase[] = [
    {
      name: 'malformed handler name',
      fixture: 'python-basic',
      handler: 'app',
      errorType: 'Runtime.MalformedHandlerName',
      errorMessage: "Bad handler 'app': not enough values to unpack (expected 2, got 1)",
    },
    {
      name: 'missing module',
      fixture: 'python-basic',
      handler: 'nosuch.handler',
      errorType: 'Runtime.ImportModuleError',
      errorMessage: "Unable to import module 'nosuch': No module named 'nosuch'",
    },
    {
      name: 'missing dependency of the module',
      fixture: 'python-init-errors',
      handler: 'missing_dep.handler',
      errorType: 'Runtime.ImportModuleError',
      errorMessage: "Unable to import module 'missing_dep': No module named 'nimbus_missing_dependency'",
    },
    {
      name: 'missing nested module, named as configured',
      fixture: 'python-basic',
      handler: 'pkg/sub/nope.handler',
      errorType: 'Runtime.ImportModuleError',
      errorMessage: "Unable to import module 'pkg/sub/nope': No module named 'pkg.sub.nope'",
    },
    {
      name: 'missing handler function',
      fixture: 'python-init-errors',
      handler: 'ok.nope',
      errorType: 'Runtime.HandlerNotFound',
      errorMessage: "Handler 'nope' missing on module 'ok'",
    },
    {
      name: 'built-in module as handler module',
      fixture: 'python-basic',
      handler: 'sys.handler',
      errorType: 'Runtime.BuiltInModuleConflict',
      errorMessage: 'Cannot use built-in module sys as a handler module',
    },
  ];

  for (const c of cases) {
    it(`reports ${c.name} as ${c.errorType} and exits`, async () => {
      const rt = await startRuntime(c.fixture, c.handler);
      const { code } = await rt.exited;
      assert.equal(code, 1);
      assert.equal(rt.api.records.length, 1);
      const [record] = rt.api.records;
      assert.equal(record.kind, 'init-error');
      assert.equal(record.headers['lambda-runtime-function-error-type'], c.errorType);
      assert.deepEqual(JSON.parse(record.body), {
        errorMessage: c.errorMessage,
        errorType: c.errorType,
        requestId: '',
        stackTrace: [],
      });
      assert.equal(rt.api.nextCalls, 0);
      const lines = rt.lines();
      assert.equal(lines.length, 2);
      assert.match(lines[0], new RegExp(`^\\[WARNING\\]\\t${TS}\\.\\d{3}Z\\t\\t${escape(UNHANDLED_WARNING)}$`));
      assert.equal(lines[1], `[ERROR] ${c.errorType}: ${c.errorMessage}\rTraceback (most recent call last):`);
    });
  }

  it('reports a syntax error as Runtime.UserCodeSyntaxError with the offending line', async () => {
    const file = join(tempRoot, 'python-init-errors', 'bad_syntax.py');
    // The interpreter's own wording differs across versions: ask it.
    const [message, text] = JSON.parse(
      execFileSync(
        PYTHON,
        ['-c', 'import json,sys\ntry:\n compile(open(sys.argv[1]).read(), sys.argv[1], "exec")\nexcept SyntaxError as e:\n print(json.dumps([str(e), e.text]))', file],
        { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } },
      ),
    ) as [string, string];
    const rt = await startRuntime('python-init-errors', 'bad_syntax.handler');
    assert.equal((await rt.exited).code, 1);
    const [record] = rt.api.records;
    assert.equal(record.kind, 'init-error');
    assert.equal(record.headers['lambda-runtime-function-error-type'], 'Runtime.UserCodeSyntaxError');
    const frame = `  File "${file}" Line 1\n    ${text}`;
    assert.deepEqual(JSON.parse(record.body), {
      errorMessage: `Syntax error in module 'bad_syntax': ${message}`,
      errorType: 'Runtime.UserCodeSyntaxError',
      requestId: '',
      stackTrace: [frame],
    });
    assert.equal(
      rt.lines()[1],
      `[ERROR] Runtime.UserCodeSyntaxError: Syntax error in module 'bad_syntax': ${message}\rTraceback (most recent call last):\r\u00a0\u00a0File "${file}" Line 1\r\u00a0\u00a0\u00a0\u00a0${text.trimEnd()}`,
    );
  });

  it("reports any other exception raised at import under the exception's own type, as Lambda does", async () => {
    const file = join(tempRoot, 'python-init-errors', 'raises.py');
    const rt = await startRuntime('python-init-errors', 'raises.handler');
    assert.equal((await rt.exited).code, 1);
    const [record] = rt.api.records;
    assert.equal(record.kind, 'init-error');
    assert.equal(record.headers['lambda-runtime-function-error-type'], 'ValueError');
    const body = JSON.parse(record.body) as { errorMessage: string; errorType: string; requestId: string; stackTrace: string[] };
    assert.deepEqual(Object.keys(body), ['errorMessage', 'errorType', 'requestId', 'stackTrace']);
    assert.equal(body.errorMessage, 'boom at import');
    assert.equal(body.errorType, 'ValueError');
    assert.equal(body.requestId, '');
    // Frames start below the client (importlib first), end in the user's module.
    assert.match(body.stackTrace[0], /^ {2}File ".*importlib\/__init__\.py", line \d+, in import_module\n/);
    assert.ok(body.stackTrace.every((frame) => !frame.includes(CLIENT_DIR)));
    assert.deepEqual(body.stackTrace.slice(-2), [
      `  File "${file}", line ${lineOf(file, 'explode()')}, in <module>\n    explode()\n`,
      `  File "${file}", line ${lineOf(file, 'raise ValueError')}, in explode\n    raise ValueError("boom at import")\n`,
    ]);
    const errorLine = rt.lines()[1];
    assert.ok(errorLine.startsWith('[ERROR] ValueError: boom at import\rTraceback (most recent call last):\r\u00a0\u00a0File "'));
    assert.ok(errorLine.endsWith(`\r\u00a0\u00a0File "${file}", line ${lineOf(file, 'raise ValueError')}, in explode\r\u00a0\u00a0\u00a0\u00a0raise ValueError("boom at import")`));
  });
});

describe('invocation errors', () => {
  it('posts a raised exception with type, message, request id and user frames only, and logs it as one record', async () => {
    const file = join(tempRoot, 'python-basic', 'app.py');
    const rt = await startRuntime('python-basic', 'app.fail');
    const result = await rt.api.invoke('err-1', { message: 'boom' });
    assert.equal(result.kind, 'error');
    assert.equal(result.headers['lambda-runtime-function-error-type'], 'Unhandled');
    assert.equal(result.headers['content-type'], 'application/json');
    const callLine = lineOf(file, '_validate(event["message"])');
    const raiseLine = lineOf(file, 'raise ValueError(message)');
    const stackTrace = [
      `  File "${file}", line ${callLine}, in fail\n    _validate(event["message"])\n`,
      `  File "${file}", line ${raiseLine}, in _validate\n    raise ValueError(message)\n`,
    ];
    // Byte for byte what Lambda's runtime sends (Python's json separators, this key order).
    assert.equal(
      result.body,
      `{"errorMessage": "boom", "errorType": "ValueError", "requestId": "err-1", "stackTrace": [${stackTrace.map((f) => JSON.stringify(f)).join(', ')}]}`,
    );
    assert.deepEqual(JSON.parse(String(result.headers['lambda-runtime-function-xray-error-cause'])), {
      working_directory: rt.taskRoot,
      exceptions: [
        {
          message: 'boom',
          type: 'ValueError',
          stack: [
            { label: 'fail', path: file, line: callLine },
            { label: '_validate', path: file, line: raiseLine },
          ],
        },
      ],
      paths: [file],
    });
    await until(() => rt.stdout().endsWith('\n') && rt.stdout(), 'the error log');
    const nb = '\u00a0';
    assert.equal(
      rt.stdout(),
      `[ERROR] ValueError: boom\rTraceback (most recent call last):\r${nb}${nb}File "${file}", line ${callLine}, in fail\r${nb.repeat(4)}_validate(event["message"])\r${nb}${nb}File "${file}", line ${raiseLine}, in _validate\r${nb.repeat(4)}raise ValueError(message)\n`,
    );
    // The runtime survives a function error.
    const next = await rt.api.invoke('err-2', { message: 'again' });
    assert.equal(JSON.parse(next.body).errorMessage, 'again');
  });

  it('turns a non-serializable result into Runtime.MarshalError', async () => {
    const rt = await startRuntime('python-basic', 'app.not_serializable');
    const result = await rt.api.invoke('marshal', {});
    assert.equal(result.kind, 'error');
    assert.deepEqual(JSON.parse(result.body), {
      errorMessage: 'Unable to marshal response: Object of type set is not JSON serializable',
      errorType: 'Runtime.MarshalError',
      requestId: 'marshal',
      stackTrace: [],
    });
    await until(() => rt.stdout().endsWith('\n'), 'the error log');
    assert.equal(
      rt.stdout(),
      '[ERROR] Runtime.MarshalError: Unable to marshal response: Object of type set is not JSON serializable\rTraceback (most recent call last):\n',
    );
  });

  it('turns an unparseable event or client context into Lambda runtime errors', async () => {
    const rt = await startRuntime('python-basic', 'app.echo');
    const badEvent = await rt.api.invoke('bad-event', null, {}, 'not json');
    assert.deepEqual(JSON.parse(badEvent.body), {
      errorMessage: 'Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)',
      errorType: 'Runtime.UnmarshalError',
      requestId: 'bad-event',
      stackTrace: [],
    });
    const badContext = await rt.api.invoke('bad-ctx', {}, { 'Lambda-Runtime-Client-Context': '{oops' });
    assert.deepEqual(JSON.parse(badContext.body), {
      errorMessage: 'Unable to parse Client Context JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)',
      errorType: 'Runtime.LambdaContextUnmarshalError',
      requestId: 'bad-ctx',
      stackTrace: [],
    });
  });

  it('encodes Decimal as a JSON number and returns bytes as they are', async () => {
    const rt = await startRuntime('python-basic', 'app.decimals');
    const decimals = await rt.api.invoke('dec', {});
    assert.equal(decimals.body, '{"price": 19.990, "count": 3, "label": "x"}');
    const raw = await startRuntime('python-basic', 'app.raw_bytes');
    const bytes = await raw.api.invoke('bytes', {});
    assert.equal(bytes.kind, 'response');
    assert.equal(bytes.headers['content-type'], 'application/unknown');
    assert.equal(bytes.body, '\u0000\u0001raw');
  });
});

describe('context object', () => {
  it('exposes Lambda context fields, identity, client context and remaining time', async () => {
    const rt = await startRuntime('python-basic', 'app.context_info');
    const trace = 'Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1';
    const result = await rt.api.invoke('ctx-1', {}, {
      'Lambda-Runtime-Invoked-Function-Arn': 'arn:aws:lambda:us-east-1:123456789012:function:py-fn:live',
      'Lambda-Runtime-Trace-Id': trace,
      'Lambda-Runtime-Cognito-Identity': JSON.stringify({ cognitoIdentityId: 'us-east-1:abc', cognitoIdentityPoolId: 'us-east-1:pool' }),
      'Lambda-Runtime-Client-Context': JSON.stringify({
        client: { installation_id: 'inst-1', app_title: 'Demo', app_version_name: '1.0', app_version_code: '7', app_package_name: 'com.example' },
        custom: { k: 'v' },
        env: { platform: 'Android' },
        w3c: { traceparent: '00-abc-def-01', tracestate: 7 },
      }),
    });
    assert.equal(result.kind, 'response');
    const body = JSON.parse(result.body);
    assert.ok(body.remaining_ms > 25_000 && body.remaining_ms <= 30_000, `remaining ${body.remaining_ms}`);
    delete body.remaining_ms;
    delete body.sys_path;
    delete body.cwd_module_file;
    assert.deepEqual(body, {
      function_name: 'py-fn',
      function_version: '$LATEST',
      invoked_function_arn: 'arn:aws:lambda:us-east-1:123456789012:function:py-fn:live',
      // Lambda's runtime hands the environment variable through as a string.
      memory_limit_in_mb: '256',
      memory_limit_type: 'str',
      aws_request_id: 'ctx-1',
      log_group_name: '/aws/lambda/py-fn',
      log_stream_name: '2026/01/02/[$LATEST]0123456789abcdef0123456789abcdef',
      identity: { cognito_identity_id: 'us-east-1:abc', cognito_identity_pool_id: 'us-east-1:pool' },
      client_context: {
        custom: { k: 'v' },
        env: { platform: 'Android' },
        client: { installation_id: 'inst-1', app_title: 'Demo', app_version_name: '1.0', app_version_code: '7', app_package_name: 'com.example' },
      },
      w3c: { traceparent: '00-abc-def-01' },
      trace_id_env: trace,
    });

    const bare = JSON.parse((await rt.api.invoke('ctx-2', {})).body);
    assert.deepEqual(bare.identity, { cognito_identity_id: null, cognito_identity_pool_id: null });
    assert.equal(bare.client_context, null);
    assert.deepEqual(bare.w3c, {});
    assert.equal(bare.trace_id_env, null);
    assert.equal(bare.aws_request_id, 'ctx-2');
  });
});

describe('logging', () => {
  it('Text: print goes out as is and unbuffered, logging records get Lambda\'s format at WARNING by default', async () => {
    const file = join(tempRoot, 'python-basic', 'app.py');
    const rt = await startRuntime('python-basic', 'app.logs');
    const result = await rt.api.invoke('log-1', {});
    assert.equal(result.body, '"ok"');
    // "partial" was printed without a newline while the process keeps running.
    await until(() => rt.stdout().endsWith('partial'), 'the unterminated print');
    const lines = rt.stdout().split('\n');
    assert.equal(lines.length, 7);
    assert.equal(lines[0], 'hello from print');
    const prefix = (level: string): string => `^\\[${level}\\]\\t${TS}\\.\\d{3}Z\\tlog-1\\t`;
    assert.match(lines[1], new RegExp(`${prefix('WARNING')}warning line$`));
    assert.match(lines[2], new RegExp(`${prefix('ERROR')}multi\\rline$`));
    assert.match(lines[3], new RegExp(`${prefix('ERROR')}caught\\rTraceback \\(most recent call last\\):\\r`));
    assert.ok(lines[3].includes(`\r  File "${file}", line ${lineOf(file, 'raise KeyError("k")')}, in logs\r    raise KeyError("k")\r`));
    assert.ok(lines[3].endsWith("\rKeyError: 'k'"));
    assert.match(lines[4], new RegExp(`${prefix('WARNING')}with extra$`));
    assert.match(lines[5], new RegExp(`${prefix('WARNING')}naïve ✓$`));
    assert.equal(lines[6], 'partial');
  });

  it('Text: AWS_LAMBDA_LOG_LEVEL sets the root level (TRACE maps to DEBUG)', async () => {
    const rt = await startRuntime('python-basic', 'app.logs', { AWS_LAMBDA_LOG_LEVEL: 'TRACE' });
    await rt.api.invoke('log-2', {});
    await until(() => rt.stdout().endsWith('partial'), 'the handler output');
    const lines = rt.stdout().split('\n');
    assert.equal(lines.length, 9);
    assert.match(lines[1], new RegExp(`^\\[DEBUG\\]\\t${TS}\\.\\d{3}Z\\tlog-2\\tdebug line$`));
    assert.match(lines[2], new RegExp(`^\\[INFO\\]\\t${TS}\\.\\d{3}Z\\tlog-2\\tinfo line$`));
  });

  it('JSON: one object per record with Lambda\'s fields, exceptions and extra fields', async () => {
    const file = join(tempRoot, 'python-basic', 'app.py');
    const rt = await startRuntime('python-basic', 'app.logs', { AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: 'INFO' });
    await rt.api.invoke('log-3', {});
    await until(() => rt.stdout().endsWith('partial'), 'the handler output');
    const lines = rt.stdout().split('\n');
    assert.equal(lines.length, 8);
    assert.equal(lines[0], 'hello from print');
    assert.equal(lines[7], 'partial');
    assert.ok(lines[6].includes('"message": "naïve ✓"'), 'non-ASCII stays as is');
    const records = lines.slice(1, 7).map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const record of records) {
      assert.match(String(record.timestamp), new RegExp(`^${TS}\\.\\d{3}Z$`));
      delete record.timestamp;
    }
    const base = { logger: 'root', requestId: 'log-3' };
    assert.deepEqual(records[0], { level: 'INFO', message: 'info line', ...base });
    assert.deepEqual(Object.keys(JSON.parse(lines[1])), ['timestamp', 'level', 'message', 'logger', 'requestId']);
    assert.deepEqual(records[1], { level: 'WARNING', message: 'warning line', ...base });
    assert.deepEqual(records[2], { level: 'ERROR', message: 'multi\nline', logger: 'orders', requestId: 'log-3' });
    const stackTrace = records[3].stackTrace as string[];
    assert.equal(stackTrace.length, 1);
    assert.ok(stackTrace[0].startsWith(`  File "${file}", line ${lineOf(file, 'raise KeyError("k")')}, in logs\n    raise KeyError("k")\n`));
    delete records[3].stackTrace;
    assert.deepEqual(records[3], {
      level: 'ERROR',
      message: 'caught',
      ...base,
      errorType: 'KeyError',
      errorMessage: "'k'",
      location: `${file}:logs:${lineOf(file, 'logging.exception("caught")')}`,
    });
    assert.deepEqual(records[4], { level: 'WARNING', message: 'with extra', ...base, orderId: 42 });
    assert.deepEqual(records[5], { level: 'WARNING', message: 'naïve ✓', ...base });
  });

  it('JSON: a function error is logged as one JSON object', async () => {
    const rt = await startRuntime('python-basic', 'app.fail', { AWS_LAMBDA_LOG_FORMAT: 'JSON' });
    const result = await rt.api.invoke('err-json', { message: 'bad input' });
    await until(() => rt.stdout().endsWith('\n'), 'the error log');
    const lines = rt.lines();
    assert.equal(lines.length, 1);
    const record = JSON.parse(lines[0]) as Record<string, unknown>;
    assert.deepEqual(Object.keys(record), ['timestamp', 'level', 'errorMessage', 'errorType', 'requestId', 'stackTrace']);
    assert.match(String(record.timestamp), new RegExp(`^${TS}$`));
    delete record.timestamp;
    assert.deepEqual(record, { level: 'ERROR', ...JSON.parse(result.body) });
    assert.equal(record.errorMessage, 'bad input');
  });
});

describe('managed-instance concurrency', () => {
  it('runs AWS_LAMBDA_MAX_CONCURRENCY loops with per-invocation request ids in log lines', async () => {
    const rt = await startRuntime('python-concurrent', 'app.handler', {
      AWS_LAMBDA_MAX_CONCURRENCY: '2',
      AWS_LAMBDA_LOG_LEVEL: 'INFO',
    });
    await until(() => rt.api.pendingNext === 2, 'two concurrent /next requests');
    // The handler waits on a two-party barrier: both invocations must overlap to finish.
    const [a, b] = await Promise.all([
      rt.api.invoke('req-a', { tag: 'A', sleep: 0.3 }),
      rt.api.invoke('req-b', { tag: 'B', sleep: 0.05 }),
    ]);
    assert.deepEqual(JSON.parse(a.body), { tag: 'A', aws_request_id: 'req-a' });
    assert.deepEqual(JSON.parse(b.body), { tag: 'B', aws_request_id: 'req-b' });
    await until(() => rt.lines().length === 4 && rt.stdout().endsWith('\n'), 'four log lines');
    const seen = rt
      .lines()
      .map((line) => /^\[INFO\]\t\S+\t(\S+)\t(start|end) (A|B)$/.exec(line))
      .map((m) => (m ? `${m[2]} ${m[3]} ${m[1]}` : 'unparsed'))
      .sort();
    assert.deepEqual(seen, ['end A req-a', 'end B req-b', 'start A req-a', 'start B req-b']);
    await until(() => rt.api.pendingNext === 2, 'both loops back on /next');
  });
});

describe('SIGTERM', () => {
  it('exits with status 0 while waiting for an invocation', async () => {
    const rt = await startRuntime('python-basic', 'app.echo');
    await until(() => rt.api.pendingNext === 1, 'the first /next');
    const sent = Date.now();
    rt.child.kill('SIGTERM');
    assert.deepEqual(await rt.exited, { code: 0, signal: null });
    assert.ok(Date.now() - sent < 2_000);
  });

  it('exits with status 0 in the middle of a handler, keeping its output', async () => {
    const rt = await startRuntime('python-basic', 'app.sleepy');
    rt.api.enqueue('sleep-1', {});
    await until(() => rt.stdout() === 'sleeping\n', 'the handler to start');
    const sent = Date.now();
    rt.child.kill('SIGTERM');
    assert.deepEqual(await rt.exited, { code: 0, signal: null });
    assert.ok(Date.now() - sent < 2_000);
    assert.equal(rt.api.records.length, 0);
  });

  it('exits with status 0 in concurrent mode', async () => {
    const rt = await startRuntime('python-concurrent', 'app.handler', { AWS_LAMBDA_MAX_CONCURRENCY: '3' });
    await until(() => rt.api.pendingNext === 3, 'three concurrent /next requests');
    rt.child.kill('SIGTERM');
    assert.deepEqual(await rt.exited, { code: 0, signal: null });
  });
});
