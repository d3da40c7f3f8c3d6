/**
 * What invoked the function, inferred from the shape of its event as Datadog's extension
 * and tracers infer it (datadog-extension-notes.md §4), with the `function_trigger.*` and
 * `http.*` tags Datadog puts on the `aws.lambda` span. Also where the event carries trace
 * context: the headers of HTTP events, and the `_datadog` / AWSTraceHeader carriers that
 * producers attach to SQS, SNS and EventBridge messages.
 *
 * Events come from anywhere (a direct Invoke can send any JSON), so every field is
 * type-checked before use and anything unexpected means "not this trigger".
 */
import type { TriggerKind } from '../model.ts';

export interface TriggerInfo {
  kind: TriggerKind;
  tags: Record<string, string>;
  /** The request's headers with lower-cased names (HTTP triggers; empty otherwise). */
  headers: Record<string, string>;
  /** Trace context found inside the first record (lower-cased names). */
  carrier?: Record<string, string>;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = (v: unknown): Obj | undefined => (isObj(v) ? v : undefined);

/** `headers` (single values), falling back to the first of `multiValueHeaders` (ALB multi-value mode). */
function lowerHeaders(event: Obj): Record<string, string> {
  const out: Record<string, string> = {};
  const multi = obj(event.multiValueHeaders);
  if (multi) {
    for (const [k, v] of Object.entries(multi)) {
      if (Array.isArray(v) && typeof v[0] === 'string') out[k.toLowerCase()] = v[0];
    }
  }
  const single = obj(event.headers);
  if (single) {
    for (const [k, v] of Object.entries(single)) if (typeof v === 'string') out[k.toLowerCase()] = v;
  }
  return out;
}

/** A JSON object from a string (`_datadog` attribute values); undefined for anything else. */
function parseCarrier(raw: unknown): Record<string, string> | undefined {
  let value: unknown = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      return undefined;
    }
  }
  if (!isObj(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string') out[k.toLowerCase()] = v;
    else if (typeof v === 'number' && Number.isSafeInteger(v)) out[k.toLowerCase()] = String(v);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

const base64Text = (v: unknown): string | undefined => (typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : undefined);

/** http.url: the scheme the front door saw (X-Forwarded-Proto; https on AWS) + host + path. */
function httpUrl(headers: Record<string, string>, host: string | undefined, path: string | undefined): string | undefined {
  if (!host) return undefined;
  const proto = headers['x-forwarded-proto']?.split(',')[0]?.trim() || 'https';
  return `${proto}://${host}${path ?? ''}`;
}

/** `<id>.execute-api.<region>.<suffix>`: the region of an API Gateway domain. */
function apiRegion(domainName: string | undefined): string | undefined {
  const labels = domainName?.split('.');
  return labels && labels[1] === 'execute-api' && labels[2] ? labels[2] : undefined;
}

function setIf(tags: Record<string, string>, key: string, value: string | undefined): void {
  if (value !== undefined && value !== '') tags[key] = value;
}

function httpTags(
  source: string,
  headers: Record<string, string>,
  method: string | undefined,
  host: string | undefined,
  path: string | undefined,
  route: string | undefined,
  userAgent: string | undefined,
): Record<string, string> {
  const tags: Record<string, string> = { 'function_trigger.event_source': source };
  setIf(tags, 'http.method', method);
  setIf(tags, 'http.url', httpUrl(headers, host, path));
  setIf(tags, 'http.url_details.path', path);
  setIf(tags, 'http.route', route);
  setIf(tags, 'http.useragent', userAgent ?? headers['user-agent']);
  return tags;
}

/**
 * Lambda's url ids are 32 of [a-z0-9] (API Gateway's are 10): a function URL event whose
 * host does not say `lambda-url` (a custom domain in front of a Nimbus URL) is still
 * recognised by its id and the `$default` route every function URL event has.
 */
function isFunctionUrl(rc: Obj, event: Obj): boolean {
  const domain = str(rc.domainName);
  if (domain?.includes('lambda-url')) return true;
  const apiId = str(rc.apiId);
  return apiId !== undefined && /^[a-z0-9]{32}$/.test(apiId) && event.routeKey === '$default' && rc.stage === '$default';
}

function httpV2(event: Obj, rc: Obj, region: string | undefined): TriggerInfo {
  const headers = lowerHeaders(event);
  const http = obj(rc.http);
  const domain = str(rc.domainName);
  const path = str(http?.path) ?? str(event.rawPath);
  const method = str(http?.method);
  const userAgent = str(http?.userAgent);
  if (isFunctionUrl(rc, event)) {
    return { kind: 'function-url', tags: httpTags('lambda-function-url', headers, method, domain, path, undefined, userAgent), headers };
  }
  // routeKey is `GET /items/{id}` (or `$default`): the route is its path part.
  const routeKey = str(event.routeKey) ?? str(rc.routeKey);
  const space = routeKey?.indexOf(' ') ?? -1;
  const route = routeKey !== undefined && space > 0 ? routeKey.slice(space + 1) : undefined;
  const tags = httpTags('api-gateway', headers, method, domain, path, route, userAgent);
  const apiId = str(rc.apiId);
  const apiRegionName = apiRegion(domain) ?? region;
  if (apiId && apiRegionName) tags['function_trigger.event_source_arn'] = `arn:aws:apigateway:${apiRegionName}::/restapis/${apiId}/stages/${str(rc.stage) ?? '$default'}`;
  return { kind: 'api-gateway-http', tags, headers };
}

/**
 * Payload 1.0, from REST APIs and from HTTP APIs configured for 1.0 (`version: "1.0"`).
 * Both are named `api-gateway-rest`: the kind says the event's shape, which is what
 * threat detection maps addresses from.
 */
function restV1(event: Obj, rc: Obj, region: string | undefined): TriggerInfo {
  const headers = lowerHeaders(event);
  const domain = str(rc.domainName) ?? headers['host'];
  const identity = obj(rc.identity);
  const tags = httpTags('api-gateway', headers, str(event.httpMethod), domain, str(event.path), str(event.resource), str(identity?.userAgent));
  const apiId = str(rc.apiId);
  const apiRegionName = apiRegion(domain) ?? region;
  const stage = str(rc.stage);
  if (apiId && apiRegionName && stage) tags['function_trigger.event_source_arn'] = `arn:aws:apigateway:${apiRegionName}::/restapis/${apiId}/stages/${stage}`;
  return { kind: 'api-gateway-rest', tags, headers };
}

function alb(event: Obj, targetGroupArn: string): TriggerInfo {
  const headers = lowerHeaders(event);
  const tags = httpTags('application-load-balancer', headers, str(event.httpMethod), headers['host'], str(event.path), undefined, undefined);
  tags['function_trigger.event_source_arn'] = targetGroupArn;
  return { kind: 'alb', tags, headers };
}

/**
 * An SQS message's trace: its `_datadog` attribute (String, or Binary base64 when SNS
 * delivered it raw), else the AWSTraceHeader system attribute, else the `_datadog` of an
 * SNS notification or EventBridge event wrapped in its body (SNS → SQS, EventBridge → SQS).
 */
function sqsCarrier(record: Obj): Record<string, string> | undefined {
  const dd = obj(obj(record.messageAttributes)?._datadog);
  if (dd) {
    const carrier = parseCarrier(str(dd.stringValue) ?? base64Text(dd.binaryValue));
    if (carrier) return carrier;
  }
  const awsTrace = str(obj(record.attributes)?.AWSTraceHeader);
  if (awsTrace) return { 'x-amzn-trace-id': awsTrace };
  const body = str(record.body);
  // Only bodies that can hold a carrier are parsed: SQS bodies reach 256 KiB.
  if (body === undefined || body[0] !== '{' || !body.includes('_datadog')) return undefined;
  let inner: unknown;
  try {
    inner = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!isObj(inner)) return undefined;
  return snsCarrier(inner) ?? parseCarrier(obj(inner.detail)?._datadog);
}

/** An SNS notification's `MessageAttributes._datadog` (`Type` String or Binary). */
function snsCarrier(sns: Obj): Record<string, string> | undefined {
  const dd = obj(obj(sns.MessageAttributes)?._datadog);
  if (!dd) return undefined;
  return parseCarrier(dd.Type === 'Binary' ? base64Text(dd.Value) : str(dd.Value));
}

function recordTrigger(record: Obj): TriggerInfo | undefined {
  const source = str(record.eventSource);
  const withArn = (kind: TriggerKind, eventSource: string, arn: string | undefined, carrier?: Record<string, string>): TriggerInfo => {
    const tags: Record<string, string> = { 'function_trigger.event_source': eventSource };
    setIf(tags, 'function_trigger.event_source_arn', arn);
    return carrier ? { kind, tags, headers: {}, carrier } : { kind, tags, headers: {} };
  };
  switch (source) {
    case 'aws:sqs':
      return withArn('sqs', 'sqs', str(record.eventSourceARN), sqsCarrier(record));
    case 'aws:s3':
      return withArn('s3', 's3', str(obj(obj(record.s3)?.bucket)?.arn));
    case 'aws:dynamodb':
      return withArn('dynamodb', 'dynamodb', str(record.eventSourceARN));
    case 'aws:kinesis':
      return withArn('kinesis', 'kinesis', str(record.eventSourceARN));
  }
  if (record.EventSource === 'aws:sns') {
    const sns = obj(record.Sns);
    return withArn('sns', 'sns', str(sns?.TopicArn), sns ? snsCarrier(sns) : undefined);
  }
  return undefined;
}

/** The trigger of a parsed event; undefined for a direct invoke or an unknown shape. */
export function inferTrigger(event: unknown, region?: string): TriggerInfo | undefined {
  if (!isObj(event)) return undefined;
  try {
    const rc = obj(event.requestContext);
    if (rc) {
      const targetGroupArn = str(obj(rc.elb)?.targetGroupArn);
      if (targetGroupArn) return alb(event, targetGroupArn);
      if (event.version === '2.0' && typeof event.rawQueryString === 'string') return httpV2(event, rc, region);
      if (typeof rc.stage === 'string' && typeof event.httpMethod === 'string' && typeof event.resource === 'string') return restV1(event, rc, region);
      return undefined;
    }
    const records = event.Records;
    if (Array.isArray(records)) {
      const first = obj(records[0]);
      return first ? recordTrigger(first) : undefined;
    }
    if (typeof event['detail-type'] === 'string' && typeof event.source === 'string' && 'detail' in event) {
      const tags: Record<string, string> = { 'function_trigger.event_source': 'eventbridge', 'function_trigger.event_source_arn': event.source };
      const carrier = parseCarrier(obj(event.detail)?._datadog);
      return carrier ? { kind: 'eventbridge', tags, headers: {}, carrier } : { kind: 'eventbridge', tags, headers: {} };
    }
  } catch {
    // Getters on a parsed JSON object cannot throw; this guards against exotic inputs only.
  }
  return undefined;
}
