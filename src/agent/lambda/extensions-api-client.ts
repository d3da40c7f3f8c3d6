/**
 * The agent's side of Lambda's Extensions API and Telemetry API subscription
 * (lambda-interfaces.md §2, §3): register, long-poll for events, report errors, subscribe.
 * Nothing here is Nimbus-specific, so the agent runs on Lambda itself too.
 */
import http from 'node:http';

export type ExtensionEventType = 'INVOKE' | 'SHUTDOWN';

export interface Registration {
  extensionId: string;
  functionName: string;
  functionVersion: string;
  handler: string;
  accountId?: string;
}

export type NextEvent =
  | { eventType: 'INVOKE'; requestId: string; deadlineMs: number; invokedFunctionArn: string }
  | { eventType: 'SHUTDOWN'; shutdownReason: string; deadlineMs: number };

export class ExtensionsApiError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.name = 'ExtensionsApiError';
    this.status = status;
  }
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export class ExtensionsApiClient {
  readonly #host: string;
  readonly #port: number;
  // One connection for /next (held open while the environment is frozen) and one for the rest.
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  #extensionId = '';

  /** @param runtimeApi AWS_LAMBDA_RUNTIME_API, `host:port`. */
  constructor(runtimeApi: string) {
    const i = runtimeApi.lastIndexOf(':');
    this.#host = runtimeApi.slice(0, i);
    this.#port = Number(runtimeApi.slice(i + 1));
  }

  async register(name: string, events: ExtensionEventType[]): Promise<Registration> {
    const reply = await this.#request('POST', '/2020-01-01/extension/register', JSON.stringify({ events }), {
      'Lambda-Extension-Name': name,
      'Lambda-Extension-Accept-Feature': 'accountId',
    });
    if (reply.status !== 200) throw new ExtensionsApiError(`register failed (${reply.status}): ${reply.body}`, reply.status);
    const id = reply.headers['lambda-extension-identifier'];
    if (typeof id !== 'string' || id === '') throw new ExtensionsApiError('register answered without Lambda-Extension-Identifier', reply.status);
    this.#extensionId = id;
    const body = JSON.parse(reply.body) as Omit<Registration, 'extensionId'>;
    return { extensionId: id, ...body };
  }

  async next(): Promise<NextEvent> {
    const reply = await this.#request('GET', '/2020-01-01/extension/event/next', undefined, {});
    if (reply.status !== 200) throw new ExtensionsApiError(`event/next failed (${reply.status}): ${reply.body}`, reply.status);
    return JSON.parse(reply.body) as NextEvent;
  }

  /** Whether `register` succeeded: the client carries the extension identifier every later call needs. */
  /**
   * Takes over a registration made before this process started (the layer's launcher
   * registers from bash, so the runtime need not wait for Node to boot).
   */
  adopt(extensionId: string, body: string): Registration {
    this.#extensionId = extensionId;
    let parsed: Partial<Omit<Registration, 'extensionId'>> = {};
    try {
      parsed = JSON.parse(body) as Partial<Omit<Registration, 'extensionId'>>;
    } catch {
      // The launcher could not read the body: the identifier is what matters.
    }
    return { extensionId, functionName: parsed.functionName ?? '', functionVersion: parsed.functionVersion ?? '', handler: parsed.handler ?? '', ...(parsed.accountId ? { accountId: parsed.accountId } : {}) };
  }

  get registered(): boolean {
    return this.#extensionId !== '';
  }

  /**
   * @param schemaVersion `2022-12-13` on demand; Lambda Managed Instances accept only `2025-01-29`.
   */
  async subscribeTelemetry(
    port: number,
    types: Array<'platform' | 'function' | 'extension'>,
    buffering: { maxItems: number; maxBytes: number; timeoutMs: number },
    schemaVersion: '2022-12-13' | '2025-01-29' = '2022-12-13',
  ): Promise<void> {
    const body = JSON.stringify({
      schemaVersion,
      destination: { protocol: 'HTTP', URI: `http://sandbox.localdomain:${port}/` },
      types,
      buffering,
    });
    const reply = await this.#request('PUT', '/2022-07-01/telemetry', body, {});
    if (reply.status !== 200) throw new ExtensionsApiError(`telemetry subscribe failed (${reply.status}): ${reply.body}`, reply.status);
  }

  async initError(errorType: string, message: string): Promise<void> {
    await this.#request('POST', '/2020-01-01/extension/init/error', JSON.stringify({ errorMessage: message, errorType }), { 'Lambda-Extension-Function-Error-Type': errorType });
  }

  close(): void {
    this.#agent.destroy();
  }

  #request(method: string, path: string, body: string | undefined, headers: Record<string, string>): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.#host,
          port: this.#port,
          method,
          path,
          agent: this.#agent,
          headers: {
            ...headers,
            ...(this.#extensionId ? { 'Lambda-Extension-Identifier': this.#extensionId } : {}),
            ...(body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
}
