// @ts-check
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

export function installGlobal() {
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
