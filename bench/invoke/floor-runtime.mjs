// A minimal Runtime API 2018-06-01 loop, used by the floor only while Nimbus's own Node
// runtime client (src/runtimes/clients/node/index.mjs) is not there, or when
// BENCH_FLOOR_RUNTIME=inline asks for it. It does what every Lambda runtime client must
// and nothing more: load the handler once, then GET /next, call the handler, POST the
// result, forever. No context object beyond the ids, no log formatting.
//
// Env: AWS_LAMBDA_RUNTIME_API=host:port, _HANDLER=file.export, LAMBDA_TASK_ROOT=dir.
import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const handlerSpec = process.env._HANDLER;
const taskRoot = process.env.LAMBDA_TASK_ROOT;
const dot = handlerSpec.lastIndexOf('.');
const modulePath = handlerSpec.slice(0, dot);
const exportName = handlerSpec.slice(dot + 1);
const base = '/2018-06-01/runtime';

// One connection, reused: the Runtime API is always on loopback.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host,
        port: Number(port),
        method,
        path: urlPath,
        agent,
        headers: body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function loadHandler() {
  for (const ext of ['.js', '.mjs', '.cjs']) {
    const file = path.join(taskRoot, modulePath + ext);
    if (existsSync(file)) {
      const mod = await import(pathToFileURL(file).href);
      const fn = mod[exportName] ?? mod.default?.[exportName];
      if (typeof fn === 'function') return fn;
    }
  }
  throw new Error(`handler ${handlerSpec} not found in ${taskRoot}`);
}

let handler;
try {
  handler = await loadHandler();
} catch (err) {
  await request('POST', `${base}/init/error`, JSON.stringify({ errorType: 'Runtime.HandlerNotFound', errorMessage: String(err) }));
  process.exit(1);
}

for (;;) {
  const next = await request('GET', `${base}/invocation/next`);
  const id = next.headers['lambda-runtime-aws-request-id'];
  const context = {
    awsRequestId: id,
    invokedFunctionArn: next.headers['lambda-runtime-invoked-function-arn'],
    getRemainingTimeInMillis: () => Number(next.headers['lambda-runtime-deadline-ms']) - Date.now(),
  };
  try {
    const result = await handler(JSON.parse(next.body), context);
    await request('POST', `${base}/invocation/${id}/response`, JSON.stringify(result ?? null));
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    await request('POST', `${base}/invocation/${id}/error`, JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: (e.stack ?? '').split('\n') }));
  }
}
