/**
 * Payload format 2.0: the event of HTTP APIs (lambda-interfaces.md §5.2) and, with
 * `$default` placeholders, of function URLs (§5.3). Header names are lower-cased and
 * repeated headers comma-joined; every Cookie header goes to `cookies` instead; repeated
 * query parameters are comma-joined. Keys with nothing to say are left out, as AWS does.
 */
import { headerValue } from '../http/incoming.ts';
import { commaJoinedMap, queryPairs } from '../http/query.ts';
import { encodeBody } from '../http/body.ts';
import { clfTime } from '../http/time.ts';
import type { IncomingHttpRequest } from '../types.ts';

export interface V2EventInput {
  request: IncomingHttpRequest;
  /** Headers as the function sees them (the request's plus X-Forwarded-*). */
  headers: ReadonlyArray<readonly [string, string]>;
  /** `$default` or `GET /items/{id}`. */
  routeKey: string;
  /** The path as sent (with the stage prefix of a named HTTP API stage). */
  rawPath: string;
  /** requestContext.http.path: the decoded path. */
  path: string;
  apiId: string;
  domainName: string;
  accountId: string;
  stage: string;
  requestId: string;
  pathParameters?: Record<string, string>;
  stageVariables?: Record<string, string>;
  /** requestContext.authorizer (AWS_IAM function URLs). */
  authorizer?: Record<string, unknown>;
}

export function v2Event(input: V2EventInput): Record<string, unknown> {
  const { request } = input;
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (const [name, value] of input.headers) {
    const lower = name.toLowerCase();
    if (lower === 'cookie') {
      for (const c of value.split(';')) if (c.trim() !== '') cookies.push(c.trim());
      continue;
    }
    headers[lower] = lower in headers ? `${headers[lower]},${value}` : value;
  }
  const query = queryPairs(request.rawQuery);
  const body = encodeBody(request.body, headerValue(request, 'content-type'));
  const event: Record<string, unknown> = {
    version: '2.0',
    routeKey: input.routeKey,
    rawPath: input.rawPath,
    rawQueryString: request.rawQuery,
  };
  if (cookies.length > 0) event.cookies = cookies;
  event.headers = headers;
  if (query.length > 0) event.queryStringParameters = commaJoinedMap(query);
  event.requestContext = {
    accountId: input.accountId,
    apiId: input.apiId,
    ...(input.authorizer ? { authorizer: input.authorizer } : {}),
    domainName: input.domainName,
    domainPrefix: input.domainName.split('.')[0],
    http: {
      method: request.method,
      path: input.path,
      protocol: request.protocol,
      sourceIp: request.sourceIp,
      userAgent: headers['user-agent'] ?? '',
    },
    requestId: input.requestId,
    routeKey: input.routeKey,
    stage: input.stage,
    time: clfTime(request.receivedAtMs),
    timeEpoch: request.receivedAtMs,
  };
  if (request.body.length > 0) event.body = body.body;
  if (input.pathParameters && Object.keys(input.pathParameters).length > 0) event.pathParameters = input.pathParameters;
  event.isBase64Encoded = body.isBase64Encoded;
  if (input.stageVariables && Object.keys(input.stageVariables).length > 0) event.stageVariables = input.stageVariables;
  return event;
}
