// @ts-check
/**
 * HTTP client for the Lambda Runtime API 2018-06-01 (`AWS_LAMBDA_RUNTIME_API`).
 * One keep-alive agent; no timeouts (the `/next` long-poll may last forever).
 */

import { createRequire } from 'node:module';

// Not `import ... from 'node:http'`: the ESM facade of node:http reads every
// export, and on recent Node that loads the WebSocket client (~40 ms at start).
const { Agent, request } = /** @type {typeof import('node:http')} */ (createRequire(import.meta.url)('node:http'));

const BASE = '/2018-06-01/runtime';
export const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';

/** @typedef {{status: number, headers: import('node:http').IncomingHttpHeaders, body: string}} ApiResponse */

/**
 * Header values may not hold control characters (Node throws); keep the rest.
 * @param {string} value
 */
export function safeHeaderValue(value) {
  return String(value).replace(/[^\t\x20-\x7e\x80-\xff]/g, (c) => encodeURIComponent(c));
}

export class RuntimeApi {
  /**
   * @param {string} hostPort `host:port` (IPv6 as `[::1]:9001`)
   * @param {number} concurrency how many invokes may run at once
   */
  constructor(hostPort, concurrency) {
    const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(hostPort || '');
    if (!m) throw new Error(`Invalid AWS_LAMBDA_RUNTIME_API: ${hostPort}`);
    this.hostname = m[1];
    this.port = Number(m[2]);
    const sockets = 2 * concurrency + 2;
    // noDelay (no Nagle) so streamed chunks leave at once; passed on to the sockets.
    const options = { keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, noDelay: true };
    this.agent = new Agent(options);
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {Record<string, string | number | string[]>} [headers]
   */
  options(method, path, headers) {
    return { hostname: this.hostname, port: this.port, method, path, headers, agent: this.agent };
  }

  /**
   * Sends one request and reads the whole answer. A request that failed with
   * ECONNRESET on a reused keep-alive socket (the server closed it while idle)
   * is sent once more on a fresh one.
   * @param {string} method
   * @param {string} path
   * @param {string | undefined} body
   * @param {Record<string, string | number>} [headers]
   * @returns {Promise<ApiResponse>}
   */
  send(method, path, body, headers, retried = false) {
    return new Promise((resolve, reject) => {
      const req = request(this.options(method, path, headers), (res) => {
        /** @type {Buffer[]} */
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
      });
      req.on('error', (err) => {
        if (!retried && req.reusedSocket && /** @type {any} */ (err).code === 'ECONNRESET') {
          this.send(method, path, body, headers, true).then(resolve, reject);
        } else {
          reject(err);
        }
      });
      req.end(body);
    });
  }

  /**
   * GET /invocation/next. Resolves with the event (raw text) and its headers.
   * Rejects on network errors and on any status but 200.
   */
  async next() {
    const res = await this.send('GET', `${BASE}/invocation/next`, undefined);
    if (res.status !== 200) {
      throw new Error(`Failed to get next invocation: HTTP ${res.status} ${res.body}`);
    }
    return res;
  }

  /**
   * @param {string} path
   * @param {string} body JSON text
   * @param {Record<string, string>} [extra]
   */
  postJson(path, body, extra) {
    return this.send('POST', path, body, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      ...extra,
    });
  }

  /**
   * POST /invocation/{id}/response. Whatever the status (202, or 413 when the
   * payload is too large, which the platform reports itself), the invoke is over.
   * @param {string} id
   * @param {string} body JSON text
   */
  postResponse(id, body) {
    return this.postJson(`${BASE}/invocation/${encodeURIComponent(id)}/response`, body);
  }

  /**
   * @param {string} id
   * @param {import('./errors.mjs').RapidError} error
   */
  postError(id, error) {
    return this.postJson(`${BASE}/invocation/${encodeURIComponent(id)}/error`, JSON.stringify(error), {
      [ERROR_TYPE_HEADER]: safeHeaderValue(error.errorType),
    });
  }

  /** @param {import('./errors.mjs').RapidError} error */
  postInitError(error) {
    return this.postJson(`${BASE}/init/error`, JSON.stringify(error), {
      [ERROR_TYPE_HEADER]: safeHeaderValue(error.errorType),
    });
  }

  /**
   * Opens the streamed POST /invocation/{id}/response; nothing is sent until the
   * first write (or end), so the content type can still change.
   * @param {string} id
   * @param {Record<string, string>} headers
   */
  openStream(id, headers) {
    return request(this.options('POST', `${BASE}/invocation/${encodeURIComponent(id)}/response`, headers));
  }
}
