/**
 * Payload format 1.0: the event of REST APIs' Lambda proxy integration, and of HTTP API
 * routes configured for 1.0, which add `"version": "1.0"` (lambda-interfaces.md §5.1).
 * `headers` keeps the last value of each header and `multiValueHeaders` all of them, names
 * as sent; parameter maps with nothing in them are `null`.
 */
import { randomUUID } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { headerValue } from '../http/incoming.ts';
import { lastValueMap, multiValueMap, queryPairs } from '../http/query.ts';
import { encodeBody, type EventBody } from '../http/body.ts';
import { clfTime } from '../http/time.ts';
import type { IncomingHttpRequest } from '../types.ts';
import { apiGatewayRequestId } from './common.ts';

export interface V1EventInput {
  request: IncomingHttpRequest;
  headers: ReadonlyArray<readonly [string, string]>;
  /** The route's path template, e.g. `/items/{id}`. */
  resource: string;
  /** Stage-less decoded path. */
  path: string;
  apiId: string;
  resourceId: string | null;
  domainName: string;
  accountId: string;
  stage: string;
  /** REST API: binary media types decide base64; HTTP API 1.0: null (text types pass as text). */
  binaryMediaTypes: readonly string[] | null;
  pathParameters: Record<string, string>;
  stageVariables: Record<string, string>;
  /** HTTP APIs configured for 1.0 say so. */
  versioned: boolean;
}

/** `image/png` against `image/*`, `*\/*` or `image/png` (SAM writes `/` as `~1`). */
export function matchesMediaType(contentType: string | undefined, patterns: readonly string[]): boolean {
  if (!contentType) return false;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  const [major] = type.split('/');
  return patterns.some((raw) => {
    const p = raw.replace(/~1/g, '/').toLowerCase();
    return p === '*/*' || p === type || (p.endsWith('/*') && p.slice(0, -2) === major);
  });
}

function restBody(body: Buffer, contentType: string | undefined, binaryMediaTypes: readonly string[]): EventBody {
  if (body.length === 0) return { body: '', isBase64Encoded: false };
  // Bytes a JSON string cannot carry unchanged go as base64 whatever the media type says.
  if (matchesMediaType(contentType, binaryMediaTypes) || !isUtf8(body)) return { body: body.toString('base64'), isBase64Encoded: true };
  return { body: body.toString('utf8'), isBase64Encoded: false };
}

const orNull = <T extends object>(o: T): T | null => (Object.keys(o).length > 0 ? o : null);

export function v1Event(input: V1EventInput): Record<string, unknown> {
  const { request } = input;
  const contentType = headerValue(request, 'content-type');
  const body = input.binaryMediaTypes ? restBody(request.body, contentType, input.binaryMediaTypes) : encodeBody(request.body, contentType);
  const query = queryPairs(request.rawQuery);
  const headers = lastValueMap(input.headers);
  const userAgent = headerValue(request, 'user-agent') ?? null;
  const stagePath = input.stage === '$default' ? input.path : `/${input.stage}${input.path}`;
  return {
    ...(input.versioned ? { version: '1.0' } : {}),
    resource: input.resource,
    path: input.path,
    httpMethod: request.method,
    headers: orNull(headers),
    multiValueHeaders: orNull(multiValueMap(input.headers)),
    queryStringParameters: orNull(lastValueMap(query)),
    multiValueQueryStringParameters: orNull(multiValueMap(query)),
    pathParameters: orNull(input.pathParameters),
    stageVariables: orNull(input.stageVariables),
    requestContext: {
      accountId: input.accountId,
      apiId: input.apiId,
      resourceId: input.resourceId,
      stage: input.stage,
      requestId: input.versioned ? apiGatewayRequestId() : randomUUID(),
      extendedRequestId: apiGatewayRequestId(),
      resourcePath: input.resource,
      httpMethod: request.method,
      path: stagePath,
      protocol: request.protocol,
      requestTime: clfTime(request.receivedAtMs),
      requestTimeEpoch: request.receivedAtMs,
      domainName: input.domainName,
      domainPrefix: input.domainName.split('.')[0],
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        caller: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        sourceIp: request.sourceIp,
        user: null,
        userAgent,
        userArn: null,
      },
    },
    body: request.body.length > 0 ? body.body : null,
    isBase64Encoded: body.isBase64Encoded,
  };
}
