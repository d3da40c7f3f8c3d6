/**
 * A stand-in for a telemetry backend (Nimbus intake, OpenTelemetry collector, Datadog) in
 * end-to-end tests: a node:http server on 127.0.0.1 that records every request it gets.
 *
 * It can be stopped and started again on the same port (a backend that dies and comes back),
 * and told to answer with a failure status for a while (a backend that is up but refusing),
 * so tests can show that an agent loses nothing across either. Every request is recorded with
 * the status it was answered with: what the sender saw as delivered is the 2xx ones.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';

export interface RecordedRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The body after Content-Encoding (gzip, deflate) was undone. */
  body: Buffer;
  /** The body parsed as JSON when it is JSON (by Content-Type, or by shape); undefined otherwise. */
  json: unknown;
  /** Epoch milliseconds when the body had been read (the moment the backend "has" the data). */
  receivedAt: number;
  /** What this request was answered with. */
  status: number;
}

/** A failure answer: a status (503, 403, ...) and an optional body, e.g. garbage. */
export interface FailureAnswer {
  status: number;
  body?: string;
}

export class RecordingServerError extends Error {
  override readonly name = 'RecordingServerError';
}

export class RecordingServer {
  /** Every request received, in arrival order, including those answered with a failure. */
  readonly requests: RecordedRequest[] = [];
  readonly #server: Server;
  #port = 0;
  #listening = false;
  #failure: FailureAnswer | undefined;

  private constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
    // Senders keep connections alive; a short idle timeout would only add noise to tests.
    this.#server.keepAliveTimeout = 60_000;
  }

  /** Starts on a free port of 127.0.0.1. */
  static async start(): Promise<RecordingServer> {
    const server = new RecordingServer();
    await server.#listen(0);
    return server;
  }

  get port(): number {
    return this.#port;
  }

  /** `http://127.0.0.1:<port>`, with no trailing slash. */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get listening(): boolean {
    return this.#listening;
  }

  /** Requests that were answered 2xx: what the sender counts as delivered. */
  accepted(path?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.status >= 200 && r.status < 300 && (path === undefined || r.path === path));
  }

  /** From now on every request is answered with `answer` (recorded all the same), until `answerNormally()`. */
  answerWith(answer: FailureAnswer): void {
    this.#failure = answer;
  }

  /** Back to answering 200 `{}`. */
  answerNormally(): void {
    this.#failure = undefined;
  }

  /**
   * Stops listening and cuts every open connection, as a crashed backend would: the sender's
   * next request is refused (ECONNREFUSED) and a kept-alive socket is reset.
   */
  async stop(): Promise<void> {
    if (!this.#listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
    this.#listening = false;
  }

  /** Listens again on the port it had before `stop()`. */
  async restart(): Promise<void> {
    if (this.#listening) throw new RecordingServerError(`already listening on ${this.#port}`);
    await this.#listen(this.#port);
  }

  #listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(new RecordingServerError(`cannot listen on 127.0.0.1:${port}: ${error.message}`));
      this.#server.once('error', onError);
      this.#server.listen(port, '127.0.0.1', () => {
        this.#server.off('error', onError);
        this.#port = (this.#server.address() as AddressInfo).port;
        this.#listening = true;
        resolve();
      });
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const failure = this.#failure;
      const status = failure?.status ?? 200;
      const raw = Buffer.concat(chunks);
      const body = decodeContentEncoding(raw, req.headers['content-encoding']);
      this.requests.push({
        method: req.method ?? 'GET',
        path: (req.url ?? '/').split('?', 1)[0]!,
        headers: req.headers,
        body,
        json: parseJson(body, req.headers['content-type']),
        receivedAt: Date.now(),
        status,
      });
      const answer = failure ? (failure.body ?? JSON.stringify({ error: `answering ${status} on purpose` })) : '{}';
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
      res.end(answer);
    });
  }
}

function decodeContentEncoding(raw: Buffer, encoding: string | undefined): Buffer {
  switch ((encoding ?? '').trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(raw);
    case 'deflate':
      return inflateSync(raw);
    default:
      return raw;
  }
}

function parseJson(body: Buffer, contentType: string | undefined): unknown {
  const declared = (contentType ?? '').toLowerCase().includes('json');
  const first = body[0];
  if (!declared && first !== 0x7b /* { */ && first !== 0x5b /* [ */) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}
