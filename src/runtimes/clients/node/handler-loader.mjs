// @ts-check
/**
 * Resolves `_HANDLER` (`path/to/module.export[.nested]`) against
 * `LAMBDA_TASK_ROOT` and loads the module the way Lambda's Node runtime does:
 * the extensionless file, then `.js` (CommonJS unless the nearest package.json
 * says `"type": "module"`), `.mjs`, `.cjs` (and on Node >= 24 `.ts`, `.mts`,
 * `.cts`), then Node's own resolution from the task root.
 */

import { existsSync, readFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  HandlerNotFound,
  ImportModuleError,
  MalformedHandlerName,
  MalformedStreamingHandler,
  UserCodeSyntaxError,
} from './errors.mjs';

export const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
export const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
export const STREAM_RESPONSE = 'response';

/**
 * @typedef {object} LoadedHandler
 * @property {Function} handler
 * @property {boolean} streaming
 * @property {number | undefined} highWaterMark
 * @property {boolean} isAsync declared `async` (an unsettled promise is then an error)
 */

/**
 * ES modules ignore NODE_PATH, but Lambda's Node runtime resolves bare imports from the
 * layer folders on it (`/opt/nodejs/node_modules`, ...). A resolve hook retries a bare
 * specifier Node could not find from each NODE_PATH `node_modules` folder that exists.
 * Installed only when such a folder exists (a function with layers), so a function
 * without layers pays nothing. Needs `module.registerHooks` (Node >= 22.15); on older
 * Nodes ES imports from layers stay unavailable, `require` works everywhere.
 */
function installNodePathForEsm() {
  const registerHooks = /** @type {any} */ (nodeModule).registerHooks;
  if (typeof registerHooks !== 'function') return;
  const folders = (process.env.NODE_PATH ?? '')
    .split(':')
    .filter((dir) => basename(dir) === 'node_modules' && existsSync(dir));
  if (folders.length === 0) return;
  // A parent URL inside each folder's parent makes Node look in that `node_modules`.
  const parents = folders.map((dir) => pathToFileURL(join(dirname(dir), 'nimbus-node-path.mjs')).href);
  registerHooks({
    /** @param {string} specifier @param {any} context @param {(s: string, c?: any) => any} next */
    resolve(specifier, context, next) {
      try {
        return next(specifier, context);
      } catch (err) {
        const bare = !/^(\.|\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(specifier);
        if (!bare || /** @type {{code?: string}} */ (err).code !== 'ERR_MODULE_NOT_FOUND') throw err;
        for (const parentURL of parents) {
          try {
            return next(specifier, { ...context, parentURL });
          } catch {
            // not in this folder
          }
        }
        throw err;
      }
    },
  });
}

/** @param {string} folder */
function packageTypeIsModule(folder) {
  for (let dir = folder; ; dir = dirname(dir)) {
    if (dir.endsWith('/node_modules')) return false;
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        return JSON.parse(readFileSync(pj, 'utf8'))?.type === 'module';
      } catch (err) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, err);
        return false;
      }
    }
    if (dir === dirname(dir)) return false;
  }
}

/**
 * @param {string} appRoot
 * @param {string} moduleRoot
 * @param {string} moduleName
 * @param {NodeRequire} require
 */
async function loadModule(appRoot, moduleRoot, moduleName, require) {
  const base = resolve(appRoot, moduleRoot, moduleName);
  /** @param {string} ext */
  const req = (ext) => (existsSync(base + ext) ? require(base + ext) : undefined);
  /** @param {string} ext */
  const imp = async (ext) => (existsSync(base + ext) ? import(pathToFileURL(base + ext).href) : undefined);

  const extensionless = req('');
  if (extensionless) return extensionless;

  const esm = packageTypeIsModule(dirname(base));
  const ts = Number(process.versions.node.split('.')[0]) >= 24;
  const loaded =
    (esm ? await imp('.js') : req('.js')) ||
    (await imp('.mjs')) ||
    req('.cjs') ||
    (ts && (esm ? await imp('.ts') : req('.ts'))) ||
    (ts && (await imp('.mts'))) ||
    (ts && req('.cts'));
  if (loaded) return loaded;

  // Not found under the task root: Node's resolution from it (node_modules,
  // NODE_PATH), which also yields Node's own "Cannot find module" error.
  return require(require.resolve(moduleName, { paths: [appRoot, join(appRoot, moduleRoot)] }));
}

/**
 * @param {string} appRoot LAMBDA_TASK_ROOT
 * @param {string} fullHandler _HANDLER
 * @param {string} requireFrom file URL the CommonJS loader requires from
 * @returns {Promise<LoadedHandler>}
 */
export async function loadHandler(appRoot, fullHandler, requireFrom) {
  installNodePathForEsm();
  if (fullHandler.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const handlerString = basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.indexOf(handlerString));
  const match = /^([^.]*)\.(.*)$/.exec(handlerString);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, handlerPath] = match;

  let mod;
  try {
    mod = await loadModule(appRoot, moduleRoot, moduleName, nodeModule.createRequire(requireFrom));
  } catch (e) {
    const err = /** @type {any} */ (e);
    if (err instanceof SyntaxError) throw new UserCodeSyntaxError(String(err));
    if (err && (err.code === 'MODULE_NOT_FOUND' || err.code === 'ERR_MODULE_NOT_FOUND')) {
      throw new ImportModuleError(String(err));
    }
    throw err;
  }

  const handler = handlerPath.split('.').reduce((obj, key) => obj && obj[key], mod);
  if (!handler) throw new HandlerNotFound(`${fullHandler} is undefined or not exported`);
  if (typeof handler !== 'function') throw new HandlerNotFound(`${fullHandler} is not a function`);

  const mode = handler[HANDLER_STREAMING];
  if (mode && mode !== STREAM_RESPONSE) {
    throw new MalformedStreamingHandler('Only response streaming is supported.');
  }
  const hwm = parseInt(handler[HANDLER_HIGHWATERMARK], 10);
  return {
    handler,
    streaming: mode === STREAM_RESPONSE,
    highWaterMark: Number.isNaN(hwm) ? undefined : hwm,
    isAsync: handler.constructor?.name === 'AsyncFunction',
  };
}
