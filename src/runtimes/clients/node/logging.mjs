// @ts-check
/**
 * Console patching as Lambda's Node runtime does it: every console call writes
 * exactly one line to stdout, tagged with the time, the current request id and
 * the level, in Text or JSON format (`AWS_LAMBDA_LOG_FORMAT`), filtered by
 * `AWS_LAMBDA_LOG_LEVEL`.
 */

import { format } from 'node:util';
import { intoError, toFormatted } from './errors.mjs';

/** @typedef {{name: string, priority: number}} Level */

/** @type {Record<string, Level>} */
const LEVELS = {
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
};

/** Where the current request id comes from; replaced in concurrent mode. */
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
/** @type {() => string | undefined} */
let currentRequestId = () => /** @type {any} */ (globalThis)[REQUEST_ID];

/** @param {string | undefined} id */
export function setCurrentRequestId(id) {
  /** @type {any} */ (globalThis)[REQUEST_ID] = id;
}

/** @param {() => string | undefined} getter */
export function setRequestIdSource(getter) {
  currentRequestId = getter;
}

let jsonFormat = false;

/** Writes one line (stdout is made blocking when it is a pipe: exits lose nothing). */
function writeLine(/** @type {string} */ line) {
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

/** @param {string} _key @param {unknown} value */
function jsonErrorReplacer(_key, value) {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: value.constructor?.name ?? 'UnknownError',
        errorMessage: value.message,
        stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      },
      value,
    );
  }
  return value;
}

/**
 * @param {Level} level
 * @param {unknown[]} args
 */
function formatJson(level, args) {
  /** @type {Record<string, unknown>} */
  const out = {
    timestamp: new Date().toISOString(),
    level: level.name,
    requestId: currentRequestId(),
  };
  if (args.length <= 1) {
    out.message = args[0];
    try {
      return JSON.stringify(out, jsonErrorReplacer);
    } catch {
      out.message = format(out.message);
      return JSON.stringify(out);
    }
  }
  out.message = format(...args);
  for (const arg of args) {
    if (arg instanceof Error) {
      out.errorType = arg.constructor?.name ?? 'UnknownError';
      out.errorMessage = arg.message;
      out.stackTrace = typeof arg.stack === 'string' ? arg.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(out);
}

/**
 * @param {Level} level
 * @param {unknown[]} args
 */
function log(level, args) {
  if (jsonFormat) {
    writeLine(formatJson(level, args));
  } else {
    const message = args.length === 0 ? format(undefined) : format(...args);
    writeLine(`${new Date().toISOString()}\t${currentRequestId()}\t${level.name}\t${message}`);
  }
}

const noop = () => {};

/**
 * @param {{format?: string, level?: string}} options values of
 *   AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL
 */
export function patchConsole(options) {
  jsonFormat = options.format?.toUpperCase() === 'JSON';
  const min = LEVELS[options.level?.toUpperCase() ?? ''] ?? LEVELS.TRACE;

  // Pipes are asynchronous on POSIX: a process.exit() right after a log line
  // could drop it. Make them blocking, like a file.
  for (const out of [process.stdout, process.stderr]) {
    const handle = /** @type {any} */ (out)._handle;
    if (handle && typeof handle.setBlocking === 'function' && !out.isTTY) handle.setBlocking(true);
  }

  /** @param {Level} level */
  const make = (level) =>
    level.priority >= min.priority ? (/** @type {unknown[]} */ ...args) => log(level, args) : noop;
  const c = /** @type {any} */ (console);
  c.trace = make(LEVELS.TRACE);
  c.debug = make(LEVELS.DEBUG);
  c.info = make(LEVELS.INFO);
  c.log = c.info;
  c.warn = make(LEVELS.WARN);
  c.error = make(LEVELS.ERROR);
  c.fatal = make(LEVELS.FATAL);
}

/**
 * Logs an error the way the runtime does for `Invoke Error`, `Uncaught Exception`
 * and `Unhandled Promise Rejection`: Text gives `<label> \t<json>`, JSON logs the
 * error object itself.
 * @param {string} label
 * @param {unknown} err
 */
export function logError(label, err) {
  if (jsonFormat) console.error(intoError(err));
  else console.error(label, toFormatted(intoError(err)));
}
