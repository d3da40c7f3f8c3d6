// @ts-check
/**
 * Nimbus's Node.js runtime client: the program an execution environment runs
 * for the nodejs* runtimes (`node index.mjs`). It speaks the Lambda Runtime API
 * 2018-06-01 at `AWS_LAMBDA_RUNTIME_API`, loads `_HANDLER` from
 * `LAMBDA_TASK_ROOT` and runs invocations as Lambda's own Node runtime does.
 *
 * Plain ESM with `node:` built-ins only, for Node 18 and later. Nothing runs
 * before the first `/next` but loading the handler.
 */

import { installGlobal } from './awslambda.mjs';
import { UnhandledPromiseRejection, toRapidResponse } from './errors.mjs';
import { loadHandler } from './handler-loader.mjs';
import { Runtime } from './invoke.mjs';
import { logError, patchConsole } from './logging.mjs';
import { RuntimeApi } from './runtime-api.mjs';

const env = process.env;
patchConsole({ format: env.AWS_LAMBDA_LOG_FORMAT, level: env.AWS_LAMBDA_LOG_LEVEL });

const concurrency = Math.max(1, parseInt(env.AWS_LAMBDA_MAX_CONCURRENCY ?? '', 10) || 1);
const api = new RuntimeApi(env.AWS_LAMBDA_RUNTIME_API ?? '', concurrency);
const runtime = new Runtime(api, concurrency);

process.on('uncaughtException', (err) => {
  logError('Uncaught Exception', err);
  runtime.crash(err, 129);
});
process.on('unhandledRejection', (reason, promise) => {
  const err = new UnhandledPromiseRejection(reason, promise);
  logError('Unhandled Promise Rejection', err);
  runtime.crash(err, 128);
});

installGlobal();

/** @type {import('./handler-loader.mjs').LoadedHandler | undefined} */
let loaded;
try {
  loaded = await loadHandler(env.LAMBDA_TASK_ROOT ?? process.cwd(), env._HANDLER ?? '', import.meta.url);
} catch (err) {
  logError('Uncaught Exception', err);
  await api.postInitError(toRapidResponse(err)).catch(() => {});
  process.exit(129);
}
await runtime.start(loaded);
