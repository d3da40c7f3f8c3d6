// @ts-check
import { createRequire } from 'node:module';
/**
 * The `awslambda` global Lambda's Node runtime defines before loading user code:
 * `streamifyResponse(handler, options)` marks a handler as response-streaming,
 * `HttpResponseStream.from(stream, prelude)` turns a response stream into an
 * HTTP-integration stream (JSON prelude + 8 NUL bytes, then the body).
 */

import { HANDLER_HIGHWATERMARK, HANDLER_STREAMING, STREAM_RESPONSE } from './handler-loader.mjs';

export const HTTP_INTEGRATION_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
const DELIMITER_LENGTH = 8;

export class HttpResponseStream {
  /**
   * @template {{setContentType(type: string): void, _onBeforeFirstWrite?: Function}} S
   * @param {S} underlyingStream a response stream given to a streaming handler
   * @param {{statusCode?: number, headers?: Record<string, string>, cookies?: string[]}} prelude
   * @returns {S}
   */
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType(HTTP_INTEGRATION_CONTENT_TYPE);
    // JSON text never holds a NUL byte, so the delimiter is unambiguous.
    const metadata = JSON.stringify(prelude);
    underlyingStream._onBeforeFirstWrite = (/** @type {(chunk: unknown) => void} */ write) => {
      write(metadata);
      write(new Uint8Array(DELIMITER_LENGTH));
    };
    return underlyingStream;
  }
}

/**
 * Lambda's Node bootstrap starts node with --expose-gc, so handlers may call `gc()`. The
 * flag slows start-up by ~14 ms, so `gc` is defined on first access instead: V8 exposes it
 * to a new context once the flag is set at run time.
 */
function installLazyGc() {
  if (typeof (/** @type {any} */ (globalThis).gc) === 'function') return;
  Object.defineProperty(globalThis, 'gc', {
    configurable: true,
    enumerable: false,
    get() {
      const require = createRequire(import.meta.url);
      require('node:v8').setFlagsFromString('--expose-gc');
      const gc = require('node:vm').runInNewContext('gc');
      Object.defineProperty(globalThis, 'gc', { value: gc, writable: true, configurable: true, enumerable: false });
      return gc;
    },
  });
}

export function installGlobal() {
  installLazyGc();
  /** @type {any} */ (globalThis).awslambda = {
    /**
     * @param {Function} handler
     * @param {{highWaterMark?: number}} [options]
     */
    streamifyResponse(handler, options) {
      /** @type {any} */ (handler)[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === 'number') {
        /** @type {any} */ (handler)[HANDLER_HIGHWATERMARK] = Math.trunc(options.highWaterMark);
      }
      return handler;
    },
    HttpResponseStream,
  };
}
