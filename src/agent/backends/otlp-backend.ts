/**
 * Any OpenTelemetry collector, over OTLP/HTTP with JSON bodies: `{endpoint}/v1/traces`,
 * `/v1/metrics` and `/v1/logs` (only those with something to send). JSON as the OTLP spec
 * maps it: ids in hex, 64-bit integers (times, counts, intValue) as decimal strings, enums as
 * numbers. Security signals have no OTLP signal of their own; they go out as log records.
 */

import type { AgentResource, LogRecord, MetricPoint, SecuritySignal, Span, TelemetryBackend, TelemetryBatch } from '../model.ts';
import { postAccepted, sendParts, type BatchPart } from './http-post.ts';

export interface OtlpBackendOptions {
  /** The collector's base URL, e.g. `http://collector:4318`. */
  endpoint: string;
  /** Sent with every request (authentication for hosted collectors). */
  headers?: Record<string, string>;
}

export type OtlpAnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: OtlpAnyValue[] } };

export interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}

const SPAN_KIND: Record<string, number> = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };
const SPAN_KIND_INTERNAL = 1;
const STATUS_ERROR = 2;
const TEMPORALITY_DELTA = 1;
/** Bounds on what one JSON log line may turn into: attributes are per record, not per key. */
const MAX_LOG_ATTRIBUTES = 128;
const MAX_ATTRIBUTE_DEPTH = 8;

/** OTLP/HTTP: 429, 502, 503, 504 are worth a retry (we retry every 5xx); any other 4xx never succeeds. */
function isPermanent(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

export class OtlpBackend implements TelemetryBackend {
  readonly name = 'otlp';
  readonly #base: string;
  readonly #headers: Record<string, string>;

  constructor(options: OtlpBackendOptions) {
    this.#base = options.endpoint.replace(/\/+$/, '');
    this.#headers = { ...options.headers, 'Content-Type': 'application/json' };
  }

  async send(batch: TelemetryBatch, signal?: AbortSignal): Promise<void> {
    const parts: BatchPart[] = [];
    const post = (path: string, body: unknown) => () =>
      postAccepted(this.name, `${this.#base}${path}`, JSON.stringify(body), { headers: this.#headers, signal }, isPermanent);
    if (batch.spans.length > 0) parts.push({ kinds: ['spans'], send: post('/v1/traces', toOtlpTraces(batch)) });
    if (batch.metrics.length > 0) parts.push({ kinds: ['metrics'], send: post('/v1/metrics', toOtlpMetrics(batch)) });
    if (batch.logs.length > 0 || batch.security.length > 0) {
      const kinds = [...(batch.logs.length > 0 ? (['logs'] as const) : []), ...(batch.security.length > 0 ? (['security'] as const) : [])];
      parts.push({ kinds, send: post('/v1/logs', toOtlpLogs(batch)) });
    }
    await sendParts(parts);
  }
}

/** The function as an OTel resource (semantic conventions for FaaS on AWS Lambda), then its tags. */
export function otlpResourceAttributes(resource: AgentResource, serviceName: string = serviceOf(resource)): OtlpKeyValue[] {
  const attributes: OtlpKeyValue[] = [
    str('service.name', serviceName),
    str('faas.name', resource.functionName),
    str('faas.version', resource.version),
    int('faas.max_memory', resource.memorySize * 1024 * 1024),
    str('cloud.provider', 'aws'),
    str('cloud.platform', 'aws_lambda'),
    str('cloud.region', resource.region),
    str('cloud.account.id', resource.accountId),
    str('cloud.resource_id', resource.functionArn),
  ];
  const taken = new Set(attributes.map((a) => a.key));
  for (const attribute of tagAttributes(resource.tags)) {
    if (!taken.has(attribute.key)) attributes.push(attribute);
  }
  return attributes;
}

export function toOtlpTraces(batch: TelemetryBatch): unknown {
  const scope = scopeOf(batch.resource);
  // service.name is a resource attribute, so spans of different services get their own resource.
  const byService = new Map<string, Span[]>();
  for (const span of batch.spans) {
    const service = span.service || serviceOf(batch.resource);
    const list = byService.get(service);
    if (list === undefined) byService.set(service, [span]);
    else list.push(span);
  }
  return {
    resourceSpans: [...byService].map(([service, spans]) => ({
      resource: { attributes: otlpResourceAttributes(batch.resource, service) },
      scopeSpans: [{ scope, spans: spans.map(toOtlpSpan) }],
    })),
  };
}

function toOtlpSpan(span: Span): unknown {
  const attributes: OtlpKeyValue[] = [str('resource.name', span.resource)];
  if (span.type) attributes.push(str('span.type', span.type));
  if (span.requestId) attributes.push(str('faas.invocation_id', span.requestId));
  for (const key in span.meta) if (key !== 'span.kind') attributes.push(str(key, span.meta[key]));
  for (const key in span.metrics) attributes.push(double(key, span.metrics[key]));
  const kind = SPAN_KIND[span.meta['span.kind']?.toLowerCase() ?? ''] ?? SPAN_KIND_INTERNAL;
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    ...(span.parentId ? { parentSpanId: span.parentId } : {}),
    name: span.name,
    kind,
    startTimeUnixNano: microsToNanos(span.startMicros),
    endTimeUnixNano: microsToNanos(span.startMicros + span.durationMicros),
    attributes,
    status: span.error ? { code: STATUS_ERROR, ...(span.meta['error.message'] ? { message: span.meta['error.message'] } : {}) } : {},
  };
}

export function toOtlpMetrics(batch: TelemetryBatch): unknown {
  // One OTLP metric per (name, type), its points as data points.
  const byMetric = new Map<string, MetricPoint[]>();
  for (const point of batch.metrics) {
    const key = `${point.type}\u0000${point.name}`;
    const list = byMetric.get(key);
    if (list === undefined) byMetric.set(key, [point]);
    else list.push(point);
  }
  const metrics = [...byMetric.values()].map((points) => toOtlpMetric(points[0].name, points[0].type, points));
  return {
    resourceMetrics: [
      { resource: { attributes: otlpResourceAttributes(batch.resource) }, scopeMetrics: [{ scope: scopeOf(batch.resource), metrics }] },
    ],
  };
}

function toOtlpMetric(name: string, type: MetricPoint['type'], points: MetricPoint[]): unknown {
  switch (type) {
    case 'count':
      return { name, sum: { aggregationTemporality: TEMPORALITY_DELTA, isMonotonic: true, dataPoints: points.map(numberPoint) } };
    case 'gauge':
    case 'set': // the number of distinct values seen: a gauge, as Datadog reports it
      return { name, gauge: { dataPoints: points.map(numberPoint) } };
    case 'distribution':
      return { name, histogram: { aggregationTemporality: TEMPORALITY_DELTA, dataPoints: points.map(histogramPoint) } };
  }
}

function numberPoint(point: MetricPoint): unknown {
  const time = millisToNanos(point.timestamp);
  return { attributes: tagAttributes(point.tags), startTimeUnixNano: time, timeUnixNano: time, asDouble: finiteOr0(point.value) };
}

/** Count, sum, min and max of the samples (weighted by their sample rates); no buckets. */
function histogramPoint(point: MetricPoint): unknown {
  const values = point.values ?? [point.value];
  let count = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const weight = point.weights?.[i] ?? 1;
    count += weight;
    sum += values[i] * weight;
    if (values[i] < min) min = values[i];
    if (values[i] > max) max = values[i];
  }
  const time = millisToNanos(point.timestamp);
  return {
    attributes: tagAttributes(point.tags),
    startTimeUnixNano: time,
    timeUnixNano: time,
    count: String(Math.round(count)),
    sum: finiteOr0(sum),
    ...(values.length > 0 ? { min: finiteOr0(min), max: finiteOr0(max) } : {}),
  };
}

export function toOtlpLogs(batch: TelemetryBatch): unknown {
  const observed = millisToNanos(batch.sentAt);
  const logRecords = [
    ...batch.logs.map((record) => toOtlpLogRecord(record, observed)),
    ...batch.security.map((signal) => securityLogRecord(signal, observed)),
  ];
  return {
    resourceLogs: [
      { resource: { attributes: otlpResourceAttributes(batch.resource) }, scopeLogs: [{ scope: scopeOf(batch.resource), logRecords }] },
    ],
  };
}

function toOtlpLogRecord(record: LogRecord, observed: string): unknown {
  const attributes: OtlpKeyValue[] = [str('nimbus.log.source', record.source)];
  if (record.requestId) attributes.push(str('aws.lambda.request_id', record.requestId));
  if (record.attributes) flattenInto(attributes, '', record.attributes, 0);
  return {
    timeUnixNano: millisToNanos(record.timestamp),
    observedTimeUnixNano: observed,
    ...(record.level ? { severityText: record.level, severityNumber: severityNumber(record.level) } : {}),
    body: { stringValue: record.message },
    attributes,
  };
}

function securityLogRecord(signal: SecuritySignal, observed: string): unknown {
  const attributes: OtlpKeyValue[] = [
    str('event.name', 'nimbus.security.attack_attempt'),
    str('aws.lambda.request_id', signal.requestId),
    str('security.rule.id', signal.ruleId),
    str('security.rule.name', signal.ruleName),
    str('security.category', signal.category),
    str('security.parameter', signal.parameter),
    str('security.value', signal.value),
    str('faas.trigger.source', signal.trigger),
    { key: 'security.blocked', value: { boolValue: signal.blocked } },
  ];
  if (signal.clientIp) attributes.push(str('client.address', signal.clientIp));
  if (signal.userAgent) attributes.push(str('user_agent.original', signal.userAgent));
  if (signal.route) attributes.push(str('http.route', signal.route));
  if (signal.method) attributes.push(str('http.request.method', signal.method));
  return {
    timeUnixNano: millisToNanos(signal.timestamp),
    observedTimeUnixNano: observed,
    severityText: 'warn',
    severityNumber: 13,
    body: { stringValue: `attack attempt (${signal.category}): ${signal.ruleName} matched ${signal.parameter}` },
    attributes,
  };
}

/** OTel's severity numbers: the first of each range (TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21). */
function severityNumber(level: string): number {
  switch (level.toLowerCase()) {
    case 'trace':
      return 1;
    case 'debug':
      return 5;
    case 'info':
    case 'notice':
      return 9;
    case 'warn':
    case 'warning':
      return 13;
    case 'error':
    case 'err':
      return 17;
    case 'fatal':
    case 'critical':
    case 'crit':
    case 'alert':
    case 'emergency':
      return 21;
    default:
      return 0;
  }
}

/** A JSON log's fields as dotted attributes (`{"user":{"id":1}}` → `user.id`), bounded in depth and count. */
function flattenInto(out: OtlpKeyValue[], prefix: string, value: Record<string, unknown>, depth: number): void {
  for (const key in value) {
    if (out.length >= MAX_LOG_ATTRIBUTES) return;
    const name = prefix + key;
    const field = value[key];
    if (field !== null && typeof field === 'object' && !Array.isArray(field) && depth < MAX_ATTRIBUTE_DEPTH) {
      flattenInto(out, `${name}.`, field as Record<string, unknown>, depth + 1);
      continue;
    }
    const converted = anyValue(field);
    if (converted !== undefined) out.push({ key: name, value: converted });
  }
}

function anyValue(value: unknown): OtlpAnyValue | undefined {
  switch (typeof value) {
    case 'string':
      return { stringValue: value };
    case 'boolean':
      return { boolValue: value };
    case 'number':
      if (Number.isSafeInteger(value)) return { intValue: String(value) };
      return Number.isFinite(value) ? { doubleValue: value } : { stringValue: String(value) };
    case 'object':
      if (value === null) return undefined;
      if (Array.isArray(value)) {
        return { arrayValue: { values: value.map((item) => (item !== null && typeof item === 'object' ? { stringValue: JSON.stringify(item) } : anyValue(item) ?? { stringValue: '' })) } };
      }
      return { stringValue: JSON.stringify(value) };
    default:
      return undefined;
  }
}

/** `key:value` tags as attributes; a bare `key` gets an empty value. */
function tagAttributes(tags: string[]): OtlpKeyValue[] {
  return tags.map((tag) => {
    const colon = tag.indexOf(':');
    return colon < 0 ? str(tag, '') : str(tag.slice(0, colon), tag.slice(colon + 1));
  });
}

function serviceOf(resource: AgentResource): string {
  const tag = resource.tags.find((t) => t.startsWith('service:'));
  return tag !== undefined ? tag.slice('service:'.length) : resource.functionName;
}

function scopeOf(resource: AgentResource): { name: string; version: string } {
  return { name: 'nimbus-agent', version: resource.extensionVersion };
}

function str(key: string, value: string): OtlpKeyValue {
  return { key, value: { stringValue: value } };
}

function int(key: string, value: number): OtlpKeyValue {
  return { key, value: { intValue: String(Math.round(value)) } };
}

function double(key: string, value: number): OtlpKeyValue {
  return Number.isFinite(value) ? { key, value: { doubleValue: value } } : str(key, String(value));
}

function finiteOr0(value: number): number {
  return Number.isFinite(value) ? value : 0;
}

/** Decimal strings built by appending zeros: nanoseconds since the epoch overflow a double. */
function microsToNanos(micros: number): string {
  return micros > 0 ? `${Math.round(micros)}000` : '0';
}

function millisToNanos(millis: number): string {
  return millis > 0 ? `${Math.round(millis)}000000` : '0';
}
