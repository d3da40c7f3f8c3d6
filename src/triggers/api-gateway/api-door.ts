/**
 * The API Gateway front door: `http://<api-id>.execute-api.<region>.localhost:<port>/...`
 * (or `/nimbus/apis/<api-id>/...`). REST APIs are served under `/<stage>/`, HTTP APIs at
 * the root for `$default` (or under `/<stage>/`). Each protocol answers as API Gateway
 * does: REST 403 `{"message":"Missing Authentication Token"}` for unknown routes and 502
 * `{"message": "Internal server error"}` for failed functions and malformed responses;
 * HTTP 404 `{"message":"Not Found"}` and 500 `{"message":"Internal Server Error"}`.
 */
import { randomUUID, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../logging/logger.ts';
import type { FrontDoorInvoker, HttpResult, IncomingHttpRequest } from '../types.ts';
import { decodePath, headerValue, readIncoming, RequestRejection } from '../http/incoming.ts';
import { jsonResult, MalformedResponse, writeResult } from '../http/outgoing.ts';
import { apiGatewayRequestId, forwardedHeaders } from '../events/common.ts';
import { v2Event } from '../events/payload-v2.ts';
import { matchesMediaType, v1Event } from '../events/payload-v1.ts';
import { v2Response } from '../responses/v2-response.ts';
import { v1Response } from '../responses/v1-response.ts';
import { invokeWithEvent, maxEventBytes, type FunctionAnswer } from '../invoke-event.ts';
import type { ApiService, DeployedApi } from './api-service.ts';
import type { RouteMatch } from './route-table.ts';

export interface ApiGatewayDoorOptions {
  apis: ApiService;
  invoker: FrontDoorInvoker;
  region: string;
  accountId: string;
  logger: Logger;
}

type Protocol = 'REST' | 'HTTP';

const answers = {
  REST: {
    forbidden: () => jsonResult(403, { message: 'Forbidden' }, [['x-amzn-ErrorType', 'ForbiddenException']]),
    noRoute: () => jsonResult(403, { message: 'Missing Authentication Token' }, [['x-amzn-ErrorType', 'MissingAuthenticationTokenException']]),
    failed: () => jsonResult(502, { message: 'Internal server error' }, [['x-amzn-ErrorType', 'InternalServerErrorException']]),
    rejected: () => jsonResult(500, { message: 'Internal server error' }, [['x-amzn-ErrorType', 'InternalServerErrorException']]),
    tooLarge: () => jsonResult(413, { message: 'Request Too Long' }, [['x-amzn-ErrorType', 'RequestTooLongException']]),
    badRequest: () => jsonResult(400, { message: 'Bad Request' }, [['x-amzn-ErrorType', 'BadRequestException']]),
  },
  HTTP: {
    forbidden: () => jsonResult(404, { message: 'Not Found' }),
    noRoute: () => jsonResult(404, { message: 'Not Found' }),
    failed: () => jsonResult(500, { message: 'Internal Server Error' }),
    rejected: () => jsonResult(500, { message: 'Internal Server Error' }),
    tooLarge: () => jsonResult(413, { message: 'Request Entity Too Large' }),
    badRequest: () => jsonResult(400, { message: 'Bad Request' }),
  },
} as const;

/** A stable 6-character resource id per API and path template, like REST APIs' resource ids. */
function resourceId(apiId: string, resource: string): string {
  return createHash('sha256').update(`${apiId} ${resource}`).digest('hex').slice(0, 6);
}

export class ApiGatewayDoor {
  readonly #o: ApiGatewayDoorOptions;

  constructor(options: ApiGatewayDoorOptions) {
    this.#o = options;
  }

  async serve(req: IncomingMessage, res: ServerResponse, apiId: string, pathPrefix: string): Promise<void> {
    let result: HttpResult;
    let protocol: Protocol = 'REST';
    try {
      const api = await this.#o.apis.deployed(apiId);
      if (!api) result = jsonResult(403, { message: 'Forbidden' });
      else {
        protocol = api.record.protocol;
        result = await this.#answer(req, api, pathPrefix);
      }
    } catch (err) {
      if (err instanceof RequestRejection) result = err.kind === 'too-large' ? answers[protocol].tooLarge() : answers[protocol].badRequest();
      else {
        this.#o.logger.error('API Gateway request failed', { apiId, error: (err as Error)?.stack ?? String(err) });
        result = answers[protocol].rejected();
      }
    }
    writeResult(res, result, req.method ?? 'GET');
    if (!req.complete) req.resume();
  }

  async #answer(req: IncomingMessage, api: DeployedApi, pathPrefix: string): Promise<HttpResult> {
    const { record, table } = api;
    const a = answers[record.protocol];
    const request = await readIncoming(req, maxEventBytes, pathPrefix);
    // The stage is the first path segment, except for an HTTP API's $default stage.
    let path = request.rawPath;
    if (record.stageName !== '$default') {
      const stagePrefix = `/${record.stageName}`;
      if (path !== stagePrefix && !path.startsWith(stagePrefix + '/')) return a.forbidden();
      path = path.slice(stagePrefix.length) || '/';
    }
    const decodedPath = decodePath(path);
    const match = table.match(request.method, path);
    if (!match) return a.noRoute();
    const requestId = record.protocol === 'REST' ? randomUUID() : apiGatewayRequestId();
    const event = this.#event(request, api, match, decodedPath, req.socket.localPort ?? 0);
    const answer = await invokeWithEvent(this.#o.invoker, match.route, event, randomUUID(), this.#o.logger);
    const result = this.#map(answer, api, match, request);
    if (record.protocol === 'REST') {
      result.headers.push(['x-amzn-RequestId', requestId], ['x-amz-apigw-id', apiGatewayRequestId()]);
    } else {
      result.headers.push(['Apigw-Requestid', requestId]);
    }
    return result;
  }

  #event(request: IncomingHttpRequest, api: DeployedApi, match: RouteMatch, decodedPath: string, localPort: number): Record<string, unknown> {
    const { record } = api;
    const headers = forwardedHeaders(request, localPort);
    const domainName = `${record.apiId}.execute-api.${this.#o.region}.localhost`;
    if (match.route.payloadFormatVersion === '2.0') {
      return v2Event({
        request,
        headers,
        routeKey: match.route.routeKey,
        rawPath: request.rawPath,
        path: decodePath(request.rawPath),
        apiId: record.apiId,
        domainName,
        accountId: this.#o.accountId,
        stage: record.stageName,
        requestId: apiGatewayRequestId(),
        pathParameters: match.pathParameters,
        stageVariables: record.stageVariables,
      });
    }
    return v1Event({
      request,
      headers,
      resource: match.resource === '$default' ? '/{proxy+}' : match.resource,
      path: decodedPath,
      apiId: record.apiId,
      resourceId: record.protocol === 'REST' ? resourceId(record.apiId, match.resource) : null,
      domainName,
      accountId: this.#o.accountId,
      stage: record.stageName,
      binaryMediaTypes: record.protocol === 'REST' ? record.binaryMediaTypes : null,
      pathParameters: match.pathParameters,
      stageVariables: record.stageVariables,
      versioned: record.protocol === 'HTTP',
    });
  }

  #map(answer: FunctionAnswer, api: DeployedApi, match: RouteMatch, request: IncomingHttpRequest): HttpResult {
    const { record } = api;
    const a = answers[record.protocol];
    switch (answer.kind) {
      case 'response':
        try {
          if (match.route.payloadFormatVersion === '2.0') return v2Response(answer.payload);
          return v1Response(answer.payload, {
            // REST APIs decode base64 bodies only for their binary media types (by the
            // response's Content-Type or the request's Accept); HTTP APIs always do.
            decodeBase64: (contentType) =>
              record.protocol === 'HTTP' ||
              matchesMediaType(contentType, record.binaryMediaTypes) ||
              (headerValue(request, 'accept') ?? '').split(',').some((t) => matchesMediaType(t, record.binaryMediaTypes)),
          });
        } catch (err) {
          if (!(err instanceof MalformedResponse)) throw err;
          this.#o.logger.info('API Gateway: malformed Lambda proxy response', { apiId: record.apiId, functionName: match.route.functionName, reason: err.message });
          return a.failed();
        }
      case 'event-too-large':
        return a.tooLarge();
      case 'response-too-large':
      case 'failed':
        return a.failed();
      case 'throttled':
      case 'rejected':
        return a.rejected();
    }
  }
}
