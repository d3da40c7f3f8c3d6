// @ts-check
/**
 * The invoke loop: `/next`, run the handler, post the outcome, repeat.
 *
 * One loop by default, with Lambda's callback semantics (a callback result is
 * posted once the event loop is empty, via `beforeExit`, unless
 * `context.callbackWaitsForEmptyEventLoop` is false). With
 * `AWS_LAMBDA_MAX_CONCURRENCY` > 1, that many loops share the process and each
 * invoke runs in its own AsyncLocalStorage context (for log request ids).
 */

import { attachContext } from './context.mjs';
import { NodeJsExit, toRapidResponse } from './errors.mjs';
import { logError, setCurrentRequestId, setRequestIdSource } from './logging.mjs';

/** @typedef {import('./runtime-api.mjs').ApiResponse} Invocation */
/** @typedef {(waitForEmptyEventLoop?: boolean) => void} Finish */

const noop = () => {};
/** @param {any} v */
const isPromise = (v) => !!v && typeof v.then === 'function';

export class Runtime {
  /**
   * @param {import('./runtime-api.mjs').RuntimeApi} api
   * @param {number} concurrency
   */
  constructor(api, concurrency) {
    this.api = api;
    this.concurrent = concurrency > 1;
    this.concurrency = concurrency;
    /** @type {string | undefined} last invoke started (single mode) */
    this.lastId = undefined;
    /** @type {Set<string>} invokes in progress (concurrent mode) */
    this.inFlight = new Set();
    /** @type {import('node:async_hooks').AsyncLocalStorage<{id: string}> | undefined} */
    this.als = undefined;
    this.crashing = false;
    /** true once the first invoke arrived (errors then no longer go to /init/error) */
    this.invoked = false;
    /** @type {() => void} */
    this.beforeExit = noop;
  }

  /** @param {import('./handler-loader.mjs').LoadedHandler} loaded */
  async start(loaded) {
    this.loaded = loaded;
    /** @type {(inv: Invocation, id: string, finish: Finish) => void} */
    this.process = loaded.streaming
      ? (await import('./streaming.mjs')).processStreaming.bind(null, this)
      : this.processBuffered.bind(this);
    if (!this.concurrent) {
      process.on('beforeExit', () => {
        const fn = this.beforeExit;
        this.beforeExit = noop;
        fn();
      });
      this.scheduleIteration();
      return;
    }
    const { AsyncLocalStorage } = await import('node:async_hooks');
    const als = (this.als = new AsyncLocalStorage());
    setRequestIdSource(() => als.getStore()?.id);
    for (let i = 0; i < this.concurrency; i++) this.concurrentLoop();
  }

  scheduleIteration() {
    setImmediate(() => this.handleOnce().catch((err) => this.fatal(err)));
  }

  async handleOnce() {
    const inv = await this.api.next();
    const id = String(inv.headers['lambda-runtime-aws-request-id'] ?? '');
    this.lastId = id;
    this.invoked = true;
    setCurrentRequestId(id);
    this.beforeExit = noop;
    /** @type {Finish} */
    const finish = (waitForEmptyEventLoop) => {
      if (waitForEmptyEventLoop) this.beforeExit = () => setImmediate(() => this.scheduleIteration());
      else this.scheduleIteration();
    };
    /** @type {Function} */ (this.process)(inv, id, finish);
  }

  async concurrentLoop() {
    const als = /** @type {NonNullable<Runtime['als']>} */ (this.als);
    try {
      for (;;) {
        const inv = await this.api.next();
        const id = String(inv.headers['lambda-runtime-aws-request-id'] ?? '');
        this.inFlight.add(id);
        this.invoked = true;
        await new Promise((resolve) => als.run({ id }, () => /** @type {Function} */ (this.process)(inv, id, resolve)));
        this.inFlight.delete(id);
      }
    } catch (err) {
      this.fatal(err);
    }
  }

  /**
   * Buffered (non-streaming) invoke with Lambda's callback semantics: the first
   * of callback / succeed / fail / done / promise settlement wins.
   * @param {Invocation} inv
   * @param {string} id
   * @param {Finish} finish
   */
  processBuffered(inv, id, finish) {
    const { api, concurrent } = this;
    const loaded = /** @type {import('./handler-loader.mjs').LoadedHandler} */ (this.loaded);
    let waitForEmptyEventLoop = true;
    let reported = false;
    let settled = false;
    const onPosted = () => finish(false);
    const onFailedPost = (/** @type {unknown} */ err) => this.fatal(err);

    /** @param {unknown} err */
    const postError = (err) => {
      reported = true;
      logError('Invoke Error', err);
      api.postError(id, toRapidResponse(err)).then(onPosted, onFailedPost);
    };
    /** @param {unknown} result */
    const complete = (result) => {
      if (reported) {
        console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
        return;
      }
      let body;
      try {
        body = JSON.stringify(result === undefined ? null : result);
      } catch {
        return postError(new Error('Unable to stringify response body'));
      }
      reported = true;
      api.postResponse(id, body).then(onPosted, onFailedPost);
    };
    /** @param {unknown} err @param {unknown} [result] */
    const done = (err, result) => {
      this.beforeExit = noop;
      if (err !== undefined && err !== null) postError(err);
      else complete(result);
    };
    /** @param {unknown} err @param {unknown} [result] */
    const callback = (err, result) => {
      this.beforeExit = noop;
      if (err !== undefined && err !== null) postError(err);
      else if (!waitForEmptyEventLoop || concurrent) complete(result);
      else this.beforeExit = () => setImmediate(() => complete(result));
    };
    /** @template {Function} F @param {F} fn @returns {F} */
    const once = (fn) =>
      /** @type {any} */ (
        (/** @type {unknown[]} */ ...args) => {
          if (!settled) {
            fn(...args);
            settled = true;
          }
        }
      );

    const base = {
      get callbackWaitsForEmptyEventLoop() {
        return waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitForEmptyEventLoop = value;
      },
      succeed: once((/** @type {unknown} */ result) => done(null, result)),
      fail: once((/** @type {unknown} */ err) => (err === undefined || err === null ? done('handled') : done(err, null))),
      done: once(done),
    };
    const cb = once(callback);

    if (!concurrent) {
      // The event loop emptied before the handler reported anything.
      this.beforeExit = () => {
        reported = true;
        if (loaded.isAsync) postError(new NodeJsExit());
        else api.postResponse(id, 'null').then(onPosted, onFailedPost);
      };
    }
    try {
      const event = JSON.parse(inv.body);
      const context = attachContext(base, inv.headers, !concurrent);
      const result = loaded.handler(event, context, cb);
      if (isPromise(result)) result.then(base.succeed, base.fail).then(undefined, base.fail);
      else if (concurrent && loaded.handler.length < 3) base.succeed(result);
    } catch (err) {
      cb(err);
    }
  }

  /**
   * The runtime cannot go on (e.g. the Runtime API is gone).
   * @param {unknown} err
   */
  fatal(err) {
    console.log(`Unexpected Top Level Error: ${String(err)}`);
    process.exit(129);
  }

  /**
   * An uncaught exception or unhandled rejection: report it on the invoke(s) it
   * may belong to (on /init/error before any invoke) and exit with `code`.
   * @param {unknown} err
   * @param {number} code
   */
  crash(err, code) {
    if (this.crashing) return;
    this.crashing = true;
    const body = toRapidResponse(err);
    /** @type {string[]} */
    let ids = [];
    if (this.concurrent) {
      const own = this.als?.getStore()?.id;
      ids = own ? [own] : [...this.inFlight];
    } else if (this.lastId !== undefined) {
      ids = [this.lastId];
    }
    const posts = this.invoked
      ? ids.map((id) => this.api.postError(id, body))
      : [this.api.postInitError(body)];
    Promise.allSettled(posts).then(() => process.exit(code));
  }
}
