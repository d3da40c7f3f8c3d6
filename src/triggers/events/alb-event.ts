/**
 * Application Load Balancer target events (lambda-interfaces.md §5.4): header names
 * lower-cased, query strings as sent (ALB does not URL-decode them), and either the last
 * value of each (default) or every value in `multiValueHeaders` /
 * `multiValueQueryStringParameters` (target group attribute
 * `lambda.multi_value_headers.enabled`). Text bodies pass as they are, others as base64.
 */
import { headerValue } from '../http/incoming.ts';
import { lastValueMap, multiValueMap, queryPairs } from '../http/query.ts';
import { encodeBody } from '../http/body.ts';
import type { IncomingHttpRequest } from '../types.ts';

export interface AlbEventInput {
  request: IncomingHttpRequest;
  headers: ReadonlyArray<readonly [string, string]>;
  /** The path as sent (ALB forwards it undecoded). */
  path: string;
  targetGroupArn: string;
  multiValueHeaders: boolean;
}

export function albEvent(input: AlbEventInput): Record<string, unknown> {
  const { request } = input;
  const headers = input.headers.map(([k, v]) => [k.toLowerCase(), v] as const);
  const query = queryPairs(request.rawQuery, false);
  const body = encodeBody(request.body, headerValue(request, 'content-type'));
  const event: Record<string, unknown> = {
    requestContext: { elb: { targetGroupArn: input.targetGroupArn } },
    httpMethod: request.method,
    path: input.path,
  };
  if (input.multiValueHeaders) {
    event.multiValueQueryStringParameters = multiValueMap(query);
    event.multiValueHeaders = multiValueMap(headers);
  } else {
    event.queryStringParameters = lastValueMap(query);
    event.headers = lastValueMap(headers);
  }
  event.body = body.body;
  event.isBase64Encoded = body.isBase64Encoded;
  return event;
}
