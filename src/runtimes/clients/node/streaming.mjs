// @ts-check
/**
 * Response streaming (handlers wrapped by `awslambda.streamifyResponse`): the
 * `/response` POST is a chunked request that carries each write as it happens;
 * an error after the stream began travels in the HTTP trailers
 * `Lambda-Runtime-Function-Error-Type` / `Lambda-Runtime-Function-Error-Body`
 * (base64 of the error JSON). Loaded only for streaming handlers.
 */

import { attachContext } from './context.mjs';
import { InvalidStreamingOperation, toRapidResponse } from './errors.mjs';
import { logError } from './logging.mjs';
import { safeHeaderValue } from './runtime-api.mjs';

const ERROR_TYPE = 'Lambda-Runtime-Function-Error-Type';
const ERROR_BODY = 'Lambda-Runtime-Function-Error-Body';

const METHODS = [
  'cork', 'uncork', 'destroy',
  'addListener', 'on', 'once', 'off', 'prependListener', 'prependOnceListener',
  'removeListener', 'removeAllListeners', 'setMaxListeners', 'getMaxListeners',
  'listeners', 'rawListeners', 'listenerCount', 'eventNames', 'emit',
];
const READ_ONLY = [
  'writable', 'writableFinished', 'writableObjectMode', 'writableEnded', 'writableNeedDrain',
  'writableHighWaterMark', 'writableCorked', 'writableLength', 'destroyed',
];

/**
 * @param {import('./runtime-api.mjs').RuntimeApi} api
 * @param {string} id
 */
export function createResponseStream(api, id) {
  const req = api.openStream(id, {
    'Lambda-Runtime-Function-Response-Mode': 'streaming',
    'Transfer-Encoding': 'chunked',
    'Content-Type': 'application/octet-stream',
    Trailer: `${ERROR_TYPE}, ${ERROR_BODY}`,
  });
  /** Settles when the Runtime API has answered the POST (after the last chunk). */
  const responseDone = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  responseDone.catch(() => {});

  const write = req.write.bind(req);
  const end = req.end.bind(req);
  let started = false;

  /** @type {Record<string, any>} */
  const stream = {};
  for (const m of METHODS) stream[m] = /** @type {any} */ (req)[m].bind(req);
  for (const p of READ_ONLY) Object.defineProperty(stream, p, { get: () => /** @type {any} */ (req)[p] });
  /** @type {Function | undefined} set by HttpResponseStream.from */
  stream._onBeforeFirstWrite = undefined;

  /** Headers go out now; an HTTP prelude, if any, precedes the first bytes. */
  const begin = () => {
    if (started) return;
    started = true;
    req.flushHeaders();
    if (typeof stream._onBeforeFirstWrite === 'function') stream._onBeforeFirstWrite((/** @type {any} */ c) => write(c));
  };
  /** @param {unknown} chunk */
  const toBytes = (chunk) =>
    typeof chunk === 'string' || chunk instanceof Uint8Array ? chunk : JSON.stringify(chunk);

  stream.setContentType = (/** @type {string} */ contentType) => {
    if (started) throw new InvalidStreamingOperation('Cannot set content-type, too late.');
    req.setHeader('Content-Type', contentType);
  };
  stream.write = (/** @type {unknown} */ chunk, /** @type {any} */ encoding, /** @type {any} */ cb) => {
    begin();
    return write(toBytes(chunk), encoding, cb);
  };
  stream.end = (/** @type {any} */ chunk, /** @type {any} */ encoding, /** @type {any} */ cb) => {
    if (typeof chunk === 'function') [cb, chunk] = [chunk, undefined];
    else if (typeof encoding === 'function') [cb, encoding] = [encoding, undefined];
    if (!req.writableEnded) {
      begin();
      if (chunk !== undefined && chunk !== null) write(toBytes(chunk), encoding);
    }
    end(cb);
    return stream;
  };

  /**
   * Ends the stream with the error in the trailers (nothing more once ended).
   * @param {unknown} err
   */
  const fail = async (err) => {
    if (!req.writableEnded && !req.destroyed) {
      const body = toRapidResponse(err);
      req.addTrailers({
        [ERROR_TYPE]: safeHeaderValue(body.errorType),
        [ERROR_BODY]: Buffer.from(JSON.stringify(body)).toString('base64'),
      });
      end();
    }
    await responseDone.catch(() => {});
  };
  return { stream, responseDone, fail };
}

/**
 * @param {import('./invoke.mjs').Runtime} runtime
 * @param {import('./runtime-api.mjs').ApiResponse} inv
 * @param {string} id
 * @param {import('./invoke.mjs').Finish} finish
 */
export async function processStreaming(runtime, inv, id, finish) {
  const loaded = /** @type {import('./handler-loader.mjs').LoadedHandler} */ (runtime.loaded);
  let waitForEmptyEventLoop = true;
  const base = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
  };
  const { stream, responseDone, fail } = createResponseStream(runtime.api, id);
  try {
    const event = JSON.parse(inv.body);
    const context = attachContext(base, inv.headers, !runtime.concurrent);
    const result = loaded.handler(event, stream, context);
    if (!result || typeof result.then !== 'function') {
      throw new Error('Streaming does not support non-async handlers.');
    }
    if ((await result) !== undefined) console.warn('Streaming handlers ignore return values.');
    await responseDone;
    if (!stream.writableFinished) throw new Error('Response stream is not finished.');
  } catch (err) {
    logError('Invoke Error', err);
    await fail(err);
  }
  finish(waitForEmptyEventLoop && !runtime.concurrent);
}
