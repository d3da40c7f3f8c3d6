// @ts-check
/**
 * Error types raised by the runtime client and the conversions Lambda's Node
 * runtime applies to errors: the Runtime API body (`{errorType, errorMessage,
 * trace}`) and the tab-prefixed JSON used in `Invoke Error` / `Uncaught
 * Exception` log lines.
 */

import { types } from 'node:util';

/**
 * Declares an Error subclass whose `name` is `Runtime.<ClassName>` (kept on the
 * prototype, as Lambda does, so `constructor.name` stays the bare class name).
 * @param {string} name
 */
function runtimeError(name) {
  const cls = {
    [name]: class extends Error {},
  }[name];
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}

export const ImportModuleError = runtimeError('ImportModuleError');
export const HandlerNotFound = runtimeError('HandlerNotFound');
export const MalformedHandlerName = runtimeError('MalformedHandlerName');
export const UserCodeSyntaxError = runtimeError('UserCodeSyntaxError');
export const MalformedStreamingHandler = runtimeError('MalformedStreamingHandler');
export const InvalidStreamingOperation = runtimeError('InvalidStreamingOperation');

export class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}
NodeJsExit.prototype.name = 'Runtime.NodeJsExit';

export class UnhandledPromiseRejection extends Error {
  /**
   * @param {unknown} reason
   * @param {Promise<unknown>} promise
   */
  constructor(reason, promise) {
    super(String(reason));
    this.reason = reason;
    this.promise = promise;
  }
}
UnhandledPromiseRejection.prototype.name = 'Runtime.UnhandledPromiseRejection';

/**
 * @typedef {{errorType: string, errorMessage: string, trace?: string[]}} RapidError
 */

/** @param {any} obj */
function looksLikeError(obj) {
  return (
    !!obj &&
    typeof obj.name === 'string' && obj.name !== '' &&
    typeof obj.message === 'string' && obj.message !== '' &&
    typeof obj.stack === 'string' && obj.stack !== ''
  );
}

/** @param {string} s */
const escapeDel = (s) => (typeof s === 'string' ? s.split('\x7F').join('%7F') : s);

/**
 * The body Lambda's Node runtime posts to `/error` and `/init/error`.
 * Errors give `{errorType: name, errorMessage: message, trace: stack lines}`;
 * other values give `{errorType: typeof value, errorMessage: String(value), trace: []}`.
 * @param {unknown} error
 * @returns {RapidError}
 */
export function toRapidResponse(error) {
  try {
    if (types.isNativeError(error) || looksLikeError(error)) {
      const e = /** @type {Error} */ (error);
      return {
        errorType: escapeDel(e.name),
        errorMessage: escapeDel(e.message),
        trace: typeof e.stack === 'string' ? escapeDel(e.stack).split('\n') : [],
      };
    }
    return {
      errorType: typeof error,
      errorMessage: String(/** @type {any} */ (error).toString()),
      trace: [],
    };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

/**
 * @param {unknown} err
 * @returns {Error}
 */
export function intoError(err) {
  return err instanceof Error ? err : new Error(/** @type {any} */ (err));
}

/** @param {unknown} value */
function withEnumerableProperties(value) {
  if (value instanceof Error) {
    /** @type {Record<string, unknown>} */
    const ret = Object.assign(
      /** @type {Record<string, unknown>} */ ({
        errorType: value.name,
        errorMessage: value.message,
        code: /** @type {any} */ (value).code,
      }),
      value,
    );
    if (typeof value.stack === 'string') ret.stack = value.stack.split('\n');
    return ret;
  }
  return value;
}

/**
 * Tab + JSON of an error with its name, message, code, own properties and
 * stack lines, as Lambda's Text logs show it after `Invoke Error`.
 * @param {Error} error
 */
export function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}
