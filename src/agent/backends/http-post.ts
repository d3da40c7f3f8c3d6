/**
 * One HTTP request over a kept-alive connection, for the agent's backends; and how an intake's
 * answer becomes a backend error the outbox understands.
 *
 * node:http rather than fetch: the end-of-invocation flush sits between the function's
 * response and the next invocation (post-runtime duration), and a request on a warm
 * keep-alive socket costs well under a millisecond on loopback, fetch's several times that.
 */

import http from 'node:http';
import https from 'node:https';
import type { DropCounts } from '../model.ts';

export interface PostOptions {
  headers?: Record<string, string>;
  /** POST unless told otherwise. */
  method?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface PostResponse {
  status: number;
  /** At most MAX_RESPONSE_BYTES: backends only read error messages from it. */
  body: Buffer;
}

export type HttpRequestErrorCode = 'EBADURL' | 'ETIMEDOUT' | 'EABORTED' | 'ENETWORK';

/** The request got no HTTP answer: bad URL, connection failure, timeout or abort. */
export class HttpRequestError extends Error {
  override readonly name = 'HttpRequestError';
  readonly code: HttpRequestErrorCode;
  readonly url: string;

  constructor(code: HttpRequestErrorCode, url: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.url = url;
  }
}

const MAX_RESPONSE_BYTES = 64 * 1024;

/** One keep-alive agent per origin, so a slow intake never holds another's sockets. */
const agents = new Map<string, http.Agent>();

function agentFor(url: URL): http.Agent {
  let agent = agents.get(url.origin);
  if (agent === undefined) {
    const options = { keepAlive: true, maxSockets: 16, maxFreeSockets: 4 };
    agent = url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
    agents.set(url.origin, agent);
  }
  return agent;
}

/** Closes every kept-alive connection (agent shutdown, tests). Later posts open new ones. */
export function closeHttpAgents(): void {
  for (const agent of agents.values()) agent.destroy();
  agents.clear();
}

/** Resolves with any status; rejects with HttpRequestError when no answer came. */
export function postBody(url: string, body: Buffer | string, options: PostOptions = {}): Promise<PostResponse> {
  let target: URL;
  try {
    target = new URL(url);
  } catch (error) {
    return Promise.reject(new HttpRequestError('EBADURL', url, `not a URL: ${JSON.stringify(url)}`, { cause: error }));
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    return Promise.reject(new HttpRequestError('EBADURL', url, `not an http(s) URL: ${url}`));
  }
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  return sendOnce(target, payload, options, true);
}

function sendOnce(target: URL, payload: Buffer, options: PostOptions, mayRetryStale: boolean): Promise<PostResponse> {
  const url = target.href;
  return new Promise<PostResponse>((resolve, reject) => {
    const { signal, timeoutMs } = options;
    if (signal?.aborted) {
      reject(new HttpRequestError('EABORTED', url, `request to ${url} aborted`, { cause: signal.reason }));
      return;
    }
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      outcome();
    };

    const transport = target.protocol === 'https:' ? https : http;
    const request = transport.request(target, {
      method: options.method ?? 'POST',
      agent: agentFor(target),
      headers: { ...options.headers, 'Content-Length': String(payload.length) },
    });

    const fail = (error: HttpRequestError): void => {
      finish(() => reject(error));
      request.destroy();
    };
    const onAbort = (): void =>
      fail(new HttpRequestError('EABORTED', url, `request to ${url} aborted`, { cause: signal?.reason }));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => fail(new HttpRequestError('ETIMEDOUT', url, `no answer from ${url} within ${timeoutMs} ms`)), timeoutMs);
    }

    request.on('error', (error: NodeJS.ErrnoException) => {
      if (settled) return;
      // A kept-alive socket the server closed while idle fails on reuse before any byte of an
      // answer; the request never reached the server, so one retry on a fresh socket is safe.
      if (mayRetryStale && request.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE')) {
        finish(() => resolve(sendOnce(target, payload, options, false)));
        return;
      }
      fail(new HttpRequestError('ENETWORK', url, `request to ${url} failed: ${error.message}`, { cause: error }));
    });

    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      response.on('data', (chunk: Buffer) => {
        if (kept >= MAX_RESPONSE_BYTES) return;
        const part = chunk.subarray(0, MAX_RESPONSE_BYTES - kept);
        chunks.push(part);
        kept += part.length;
      });
      response.on('end', () => finish(() => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) })));
      response.on('error', (error) =>
        fail(new HttpRequestError('ENETWORK', url, `reading the answer from ${url} failed: ${error.message}`, { cause: error })),
      );
    });

    request.end(payload);
  });
}

export type ItemKind = keyof DropCounts;

/**
 * A backend could not deliver (part of) a batch. The outbox reads three fields:
 * `permanent`: the intake refused the batch for good (drop and count it, never retry);
 * `accepted`: kinds that were delivered anyway (do not send them again);
 * `rejected`: kinds refused for good (drop and count them). Every other kind is retried.
 */
export class BackendSendError extends Error {
  override readonly name = 'BackendSendError';
  readonly permanent: boolean;
  readonly status: number | undefined;
  readonly accepted: ItemKind[];
  readonly rejected: ItemKind[];

  constructor(
    message: string,
    details: { permanent?: boolean; status?: number; accepted?: ItemKind[]; rejected?: ItemKind[]; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
    this.permanent = details.permanent ?? false;
    this.status = details.status;
    this.accepted = details.accepted ?? [];
    this.rejected = details.rejected ?? [];
  }
}

/**
 * Turns a non-2xx answer into a BackendSendError, permanent when `isPermanent(status)` says
 * the intake will never take this payload.
 */
export function checkAccepted(backend: string, url: string, response: PostResponse, isPermanent: (status: number) => boolean): void {
  const { status } = response;
  if (status >= 200 && status < 300) return;
  const detail = response.body.subarray(0, 200).toString('utf8').trim();
  throw new BackendSendError(`${backend}: ${url} answered ${status}${detail ? `: ${detail}` : ''}`, {
    status,
    permanent: isPermanent(status),
  });
}

/** Posts and checks the answer; network failures become retryable BackendSendErrors. */
export async function postAccepted(
  backend: string,
  url: string,
  body: Buffer | string,
  options: PostOptions,
  isPermanent: (status: number) => boolean,
): Promise<void> {
  let response: PostResponse;
  try {
    response = await postBody(url, body, options);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // A malformed endpoint never gets better; anything else on the way might.
    const permanent = error instanceof HttpRequestError && error.code === 'EBADURL';
    throw new BackendSendError(`${backend}: ${message}`, { cause: error, permanent });
  }
  checkAccepted(backend, url, response, isPermanent);
}

/** One request of a batch that a backend splits by kind (and size). */
export interface BatchPart {
  /** The kinds this request carries; a kind may be spread over several parts. */
  kinds: ItemKind[];
  send(): Promise<void>;
}

/**
 * Sends a batch's parts concurrently and reports them as one outcome: resolves when all were
 * accepted; otherwise throws a BackendSendError naming the kinds that were accepted in full
 * and those refused for good, so that the outbox retries only the rest. A kind counts as
 * accepted only when every part carrying it was (its accepted parts are then sent again).
 */
export async function sendParts(parts: BatchPart[]): Promise<void> {
  const outcomes = await Promise.allSettled(parts.map((part) => part.send()));
  const state = new Map<ItemKind, 'accepted' | 'rejected' | 'retry'>();
  const rank = { accepted: 0, rejected: 1, retry: 2 } as const;
  const messages: string[] = [];
  outcomes.forEach((outcome, i) => {
    let verdict: 'accepted' | 'rejected' | 'retry' = 'accepted';
    if (outcome.status === 'rejected') {
      const reason: unknown = outcome.reason;
      messages.push(reason instanceof Error ? reason.message : String(reason));
      verdict = reason instanceof BackendSendError && reason.permanent ? 'rejected' : 'retry';
    }
    for (const kind of parts[i].kinds) {
      const before = state.get(kind);
      if (before === undefined || rank[verdict] > rank[before]) state.set(kind, verdict);
    }
  });
  if (messages.length === 0) return;
  const accepted = [...state].filter(([, v]) => v === 'accepted').map(([k]) => k);
  const rejected = [...state].filter(([, v]) => v === 'rejected').map(([k]) => k);
  const permanent = rejected.length === state.size;
  const firstStatus = outcomes
    .map((o) => (o.status === 'rejected' && o.reason instanceof BackendSendError ? o.reason.status : undefined))
    .find((status) => status !== undefined);
  throw new BackendSendError(messages.join('; '), { permanent, accepted, rejected, status: firstStatus });
}
