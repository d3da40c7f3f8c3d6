/**
 * The function URL front door: `http://<url-id>.lambda-url.<region>.localhost:<port>/...`
 * (or `/nimbus/urls/<url-id>/...` on the server's own address). Per request: CORS
 * preflight from the URL's configuration, SigV4 for AWS_IAM, the payload 2.0 event
 * (lambda-interfaces.md §5.3), the invoke, and the 2.0 response mapping, with Lambda's
 * answers when something fails: 403 `{"Message":"Forbidden"}`, 413 for requests and
 * responses over 6 MB, 502 `Internal Server Error` for function errors and malformed
 * responses, 429 when throttled.
 */
import { randomUUID, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../logging/logger.ts';
import type { FrontDoorInvoker, HttpResult, IncomingHttpRequest } from '../types.ts';
import { decodePath, headerValue, readIncoming, RequestRejection } from '../http/incoming.ts';
import { jsonResult, MalformedResponse, writeResult } from '../http/outgoing.ts';
import { forwardedHeaders } from '../events/common.ts';
import { v2Event } from '../events/payload-v2.ts';
import { v2Response } from '../responses/v2-response.ts';
import { invokeWithEvent, maxEventBytes, type FunctionAnswer } from '../invoke-event.ts';
import type { UrlConfigService } from './url-config-service.ts';
import type { UrlConfigRecord } from './types.ts';
import { applyCors, isConfigured, isPreflight, preflight } from './cors.ts';
import type { SigV4Verifier, VerifiedCaller } from './sigv4.ts';
import { streamedResult } from './stream-response.ts';
import { PlatformError, TooManyRequestsException } from '../../errors/platform-errors.ts';

export interface FunctionUrlDoorOptions {
  urls: UrlConfigService;
  invoker: FrontDoorInvoker;
  verifier: SigV4Verifier;
  region: string;
  accountId: string;
  logger: Logger;
}

const forbidden = (): HttpResult => jsonResult(403, { Message: 'Forbidden' }, [['x-amzn-ErrorType', 'AccessDeniedException']]);
const internalError = (): HttpResult => ({ status: 502, headers: [['Content-Type', 'text/plain; charset=utf-8']], body: Buffer.from('Internal Server Error') });

/** IAM-style ids for a caller known only by its access key (stable for a key). */
function iamIdentity(caller: VerifiedCaller, accountId: string): Record<string, unknown> {
  const userId = 'AIDA' + createHash('sha256').update(caller.accessKeyId).digest('hex').slice(0, 17).toUpperCase();
  return {
    iam: {
      accessKey: caller.accessKeyId,
      accountId,
      callerId: userId,
      cognitoIdentity: null,
      principalOrgId: null,
      userArn: `arn:aws:iam::${accountId}:user/${caller.accessKeyId}`,
      userId,
    },
  };
}

export class FunctionUrlDoor {
  readonly #o: FunctionUrlDoorOptions;

  constructor(options: FunctionUrlDoorOptions) {
    this.#o = options;
  }

  /** Serves one request for `urlId`; `pathPrefix` is cut from the path when reached by prefix. */
  async serve(req: IncomingMessage, res: ServerResponse, urlId: string, pathPrefix: string): Promise<void> {
    let result: HttpResult;
    try {
      result = await this.#answer(req, urlId, pathPrefix);
    } catch (err) {
      if (err instanceof RequestRejection) {
        result = err.kind === 'too-large' ? this.#tooLarge() : jsonResult(400, { Message: 'Bad Request' });
      } else {
        this.#o.logger.error('function URL request failed', { urlId, error: (err as Error)?.stack ?? String(err) });
        result = internalError();
      }
    }
    writeResult(res, result, req.method ?? 'GET');
    if (!req.complete) req.resume();
  }

  #tooLarge(): HttpResult {
    return jsonResult(413, { Message: `Request must be smaller than ${maxEventBytes} bytes for the InvokeFunction operation` }, [
      ['x-amzn-ErrorType', 'RequestTooLargeException'],
    ]);
  }

  async #answer(req: IncomingMessage, urlId: string, pathPrefix: string): Promise<HttpResult> {
    const config = await this.#o.urls.byUrlId(urlId);
    if (!config) return forbidden();
    const request = await readIncoming(req, maxEventBytes, pathPrefix);
    const origin = headerValue(request, 'origin');
    if (isConfigured(config.cors)) {
      const requestMethod = headerValue(request, 'access-control-request-method');
      if (isPreflight(request.method, origin, requestMethod)) {
        return preflight(config.cors, origin!, requestMethod!, headerValue(request, 'access-control-request-headers'));
      }
    }
    const result = await this.#invoke(request, config, req.socket.localPort ?? 0);
    return isConfigured(config.cors) ? applyCors(result, config.cors, origin) : result;
  }

  async #invoke(request: IncomingHttpRequest, config: UrlConfigRecord, localPort: number): Promise<HttpResult> {
    let authorizer: Record<string, unknown> | undefined;
    if (config.authType === 'AWS_IAM') {
      const verified = await this.#o.verifier.verify(request);
      if (!verified.ok) {
        this.#o.logger.info('function URL request refused', { functionName: config.functionName, reason: verified.reason });
        return forbidden();
      }
      authorizer = iamIdentity(verified.caller, this.#o.accountId);
    }
    const requestId = randomUUID();
    const event = v2Event({
      request,
      headers: forwardedHeaders(request, localPort),
      routeKey: '$default',
      rawPath: request.rawPath,
      path: decodePath(request.rawPath),
      apiId: config.urlId,
      domainName: `${config.urlId}.lambda-url.${this.#o.region}.localhost`,
      // Lambda reports `anonymous` as the account of callers of NONE URLs.
      accountId: authorizer ? this.#o.accountId : 'anonymous',
      stage: '$default',
      requestId,
      ...(authorizer ? { authorizer } : {}),
    });
    if (config.invokeMode === 'RESPONSE_STREAM') {
      const streamed = await this.#stream(config, event, requestId);
      streamed.headers.push(['x-amzn-RequestId', requestId]);
      return streamed;
    }
    const answer = await invokeWithEvent(this.#o.invoker, config, event, requestId, this.#o.logger);
    const result = this.#map(answer, config);
    result.headers.push(['x-amzn-RequestId', requestId]);
    return result;
  }

  /**
   * RESPONSE_STREAM: a function that streams is answered as it writes; one that returns
   * a whole response is mapped as a buffered URL maps it.
   */
  async #stream(config: UrlConfigRecord, event: unknown, requestId: string): Promise<HttpResult> {
    let result;
    try {
      result = await this.#o.invoker.invokeStreaming({ functionName: config.functionName, qualifier: config.qualifier, payload: Buffer.from(JSON.stringify(event)), requestId });
    } catch (err) {
      if (err instanceof TooManyRequestsException) return this.#map({ kind: 'throttled', message: err.message }, config);
      if (err instanceof PlatformError) return this.#map({ kind: 'rejected', errorName: err.name, message: err.message }, config);
      throw err;
    }
    const { outcome } = result;
    if (outcome.kind !== 'stream') return this.#map(outcome.kind === 'success' ? { kind: 'response', payload: outcome.payload, requestId } : { kind: 'failed', errorType: outcome.errorType, requestId }, config);
    try {
      return await streamedResult(outcome);
    } catch (err) {
      if (!(err instanceof MalformedResponse)) throw err;
      this.#o.logger.info('function URL: malformed streamed response', { functionName: config.functionName, requestId, reason: err.message });
      return internalError();
    }
  }

  #map(answer: FunctionAnswer, config: UrlConfigRecord): HttpResult {
    switch (answer.kind) {
      case 'response':
        try {
          return v2Response(answer.payload);
        } catch (err) {
          if (!(err instanceof MalformedResponse)) throw err;
          this.#o.logger.info('function URL: malformed function response', { functionName: config.functionName, requestId: answer.requestId, reason: err.message });
          return internalError();
        }
      case 'event-too-large':
        return this.#tooLarge();
      case 'response-too-large':
        return jsonResult(413, { Message: answer.message }, [['x-amzn-ErrorType', 'ResponseSizeTooLarge']]);
      case 'failed':
        return internalError();
      case 'throttled':
        return jsonResult(429, { Message: 'Rate Exceeded.' }, [['x-amzn-ErrorType', 'TooManyRequestsException']]);
      case 'rejected':
        return answer.errorName === 'ResourceNotFoundException' ? forbidden() : internalError();
    }
  }
}
