/**
 * Decodes OTLP/HTTP JSON (the protobuf JSON mapping as OTLP defines it: lowerCamelCase fields,
 * trace and span ids in hex, 64-bit integers as decimal strings) into the agent's model: spans
 * as Datadog names their fields, metric points, log records.
 *
 * Wrong shapes are refused with OtlpPayloadError so the SDK gets a 400 it can log; unknown
 * fields are ignored, as OTLP requires of receivers.
 */
import type { LogRecord, MetricPoint, Span } from '../model.ts';

export class OtlpPayloadError extends Error {
  override readonly name = 'OtlpPayloadError';
}

type Json = Record<string, unknown>;

const SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
const STATUS_ERROR = 2;
const TRACE_ID = /^[0-9a-fA-F]{32}$/;
const SPAN_ID = /^[0-9a-fA-F]{16}$/;
const ZERO_TRACE_ID = '00000000000000000000000000000000';
const ZERO_SPAN_ID = '0000000000000000';
const DECIMAL = /^-?\d+$/;

// ---------------------------------------------------------------------------------------------
// Traces

export function decodeOtlpTraces(json: unknown): Span[] {
  const spans: Span[] = [];
  for (const [r, resourceSpans] of listOf(root(json).resourceSpans, 'resourceSpans')) {
    const where = `resourceSpans[${r}]`;
    const resource = readResource(resourceSpans, where);
    for (const [s, scopeSpans] of listOf(resourceSpans.scopeSpans, `${where}.scopeSpans`)) {
      const scopeName = readScopeName(scopeSpans, `${where}.scopeSpans[${s}]`);
      for (const [i, span] of listOf(scopeSpans.spans, `${where}.scopeSpans[${s}].spans`)) {
        spans.push(readSpan(span, resource, scopeName, `${where}.scopeSpans[${s}].spans[${i}]`));
      }
    }
  }
  return spans;
}

interface Resource {
  service: string | undefined;
  attributes: Record<string, unknown>;
}

function readResource(parent: Json, where: string): Resource {
  const resource = optionalObject(parent.resource, `${where}.resource`);
  const attributes = resource ? readAttributes(resource.attributes, `${where}.resource.attributes`) : {};
  const service = attributes['service.name'];
  return { service: typeof service === 'string' && service !== '' ? service : undefined, attributes };
}

function readScopeName(scopeParent: Json, where: string): string | undefined {
  const scope = optionalObject(scopeParent.scope, `${where}.scope`);
  const name = scope?.name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

function readSpan(raw: Json, resource: Resource, scopeName: string | undefined, where: string): Span {
  const traceId = readHexId(raw.traceId, TRACE_ID, ZERO_TRACE_ID, `${where}.traceId`, '32');
  const spanId = readHexId(raw.spanId, SPAN_ID, ZERO_SPAN_ID, `${where}.spanId`, '16');
  const name = raw.name;
  if (typeof name !== 'string' || name === '') throw new OtlpPayloadError(`${where}.name must be a non-empty string`);
  const startNanos = readNanos(raw.startTimeUnixNano, `${where}.startTimeUnixNano`);
  const endNanos = readNanos(raw.endTimeUnixNano, `${where}.endTimeUnixNano`);

  const meta: Record<string, string> = {};
  const metrics: Record<string, number> = {};
  // Resource attributes first, so that a span's own attribute of the same key wins.
  for (const key in resource.attributes) if (key !== 'service.name') putTag(meta, metrics, key, resource.attributes[key]);
  const attributes = readAttributes(raw.attributes, `${where}.attributes`);
  for (const key in attributes) putTag(meta, metrics, key, attributes[key]);
  if (scopeName !== undefined) meta['otel.scope.name'] = scopeName;
  const kind = readKind(raw.kind, `${where}.kind`);
  if (kind > 0) meta['span.kind'] = SPAN_KINDS[kind];

  const status = optionalObject(raw.status, `${where}.status`);
  const error = status !== undefined && readStatusCode(status.code, `${where}.status.code`) === STATUS_ERROR;
  if (error) {
    if (typeof status.message === 'string' && status.message !== '') meta['error.message'] = status.message;
    copyExceptionEvent(raw.events, meta, `${where}.events`);
  }

  const span: Span = {
    traceId: traceId.toLowerCase(),
    spanId: spanId.toLowerCase(),
    name,
    service: resource.service ?? 'unknown_service',
    resource: name,
    startMicros: nanosToMicros(startNanos),
    durationMicros: endNanos > startNanos ? nanosToMicros(endNanos - startNanos) : 0,
    error,
    meta,
    metrics,
  };
  const parent = raw.parentSpanId;
  // Absent, empty (root spans in the protobuf JSON mapping) or all zeros all mean "no parent".
  if (parent !== undefined && parent !== '' && parent !== ZERO_SPAN_ID) {
    span.parentId = readHexId(parent, SPAN_ID, ZERO_SPAN_ID, `${where}.parentSpanId`, '16').toLowerCase();
  }
  return span;
}

/** Datadog shows error details from `error.*`; OpenTelemetry records them as an `exception` event. */
function copyExceptionEvent(events: unknown, meta: Record<string, string>, where: string): void {
  if (events === undefined || events === null) return;
  if (!Array.isArray(events)) throw new OtlpPayloadError(`${where} must be an array`);
  for (let i = 0; i < events.length; i++) {
    const event = events[i] as Json;
    if (typeof event !== 'object' || event === null || event.name !== 'exception') continue;
    const attributes = readAttributes(event.attributes, `${where}[${i}].attributes`);
    const type = attributes['exception.type'];
    const message = attributes['exception.message'];
    const stack = attributes['exception.stacktrace'];
    if (typeof type === 'string') meta['error.type'] = type;
    if (typeof message === 'string' && meta['error.message'] === undefined) meta['error.message'] = message;
    if (typeof stack === 'string') meta['error.stack'] = stack;
    return;
  }
}

function putTag(meta: Record<string, string>, metrics: Record<string, number>, key: string, value: unknown): void {
  if (typeof value === 'string') meta[key] = value;
  else if (typeof value === 'number') metrics[key] = value;
  else if (typeof value === 'boolean') meta[key] = String(value);
  else if (value !== undefined && value !== null) meta[key] = JSON.stringify(value);
}

function readKind(value: unknown, where: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < SPAN_KINDS.length) return value;
  // The protobuf JSON mapping also allows enum names.
  if (typeof value === 'string') {
    const index = SPAN_KINDS.indexOf(value.replace(/^SPAN_KIND_/, '').toLowerCase());
    if (index >= 0) return index;
  }
  throw new OtlpPayloadError(`${where} must be a span kind (0-5)`);
}

function readStatusCode(value: unknown, where: string): number {
  if (value === undefined || value === null) return 0;
  if (value === 0 || value === 1 || value === 2) return value;
  if (value === 'STATUS_CODE_UNSET') return 0;
  if (value === 'STATUS_CODE_OK') return 1;
  if (value === 'STATUS_CODE_ERROR') return 2;
  throw new OtlpPayloadError(`${where} must be a status code (0-2)`);
}

function readHexId(value: unknown, pattern: RegExp, zero: string, where: string, digits: string): string {
  if (typeof value !== 'string' || !pattern.test(value) || value === zero) {
    throw new OtlpPayloadError(`${where} must be ${digits} hex digits, not all zero`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Metrics

const AGGREGATION_DELTA = 1;
const AGGREGATION_CUMULATIVE = 2;

/**
 * The last value of each cumulative stream, so cumulative sums and histograms (the OpenTelemetry
 * SDK's default temporality) become the per-interval counts Datadog's model expects. Bounded: the
 * stream set longest ago is forgotten first.
 */
export class CumulativeToDelta {
  readonly #maxStreams: number;
  readonly #last = new Map<string, { start: string; values: number[] }>();

  constructor(maxStreams = 10_240) {
    this.#maxStreams = maxStreams;
  }

  /**
   * The change since the stream's previous point. The first point of a stream is taken whole:
   * the SDK lives in the same sandbox as the agent, so its counts started within the agent's
   * lifetime and dropping them would lose a short-lived function's only interval. A new start
   * time or a decrease means the stream was reset, and the value is again taken whole.
   */
  delta(key: string, start: string, values: number[]): number[] {
    const previous = this.#last.get(key);
    this.#last.delete(key);
    if (this.#last.size >= this.#maxStreams) this.#last.delete(this.#last.keys().next().value!);
    this.#last.set(key, { start, values });
    if (!previous || previous.start !== start || values.some((v, i) => v < previous.values[i])) return values;
    return values.map((v, i) => v - previous.values[i]);
  }
}

export function decodeOtlpMetrics(json: unknown, cumulative: CumulativeToDelta): MetricPoint[] {
  const points: MetricPoint[] = [];
  for (const [r, resourceMetrics] of listOf(root(json).resourceMetrics, 'resourceMetrics')) {
    const where = `resourceMetrics[${r}]`;
    const resource = readResource(resourceMetrics, where);
    const resourceTags = resource.service ? [`service:${resource.service}`] : [];
    for (const [s, scopeMetrics] of listOf(resourceMetrics.scopeMetrics, `${where}.scopeMetrics`)) {
      for (const [m, metric] of listOf(scopeMetrics.metrics, `${where}.scopeMetrics[${s}].metrics`)) {
        readMetric(metric, resourceTags, cumulative, points, `${where}.scopeMetrics[${s}].metrics[${m}]`);
      }
    }
  }
  return points;
}

function readMetric(metric: Json, resourceTags: string[], cumulative: CumulativeToDelta, out: MetricPoint[], where: string): void {
  const name = metric.name;
  if (typeof name !== 'string' || name === '') throw new OtlpPayloadError(`${where}.name must be a non-empty string`);
  const gauge = optionalObject(metric.gauge, `${where}.gauge`);
  const sum = optionalObject(metric.sum, `${where}.sum`);
  const histogram = optionalObject(metric.histogram, `${where}.histogram`);
  if (gauge) {
    for (const [i, point] of listOf(gauge.dataPoints, `${where}.gauge.dataPoints`)) {
      const at = `${where}.gauge.dataPoints[${i}]`;
      out.push({ name, type: 'gauge', value: readNumberValue(point, at), tags: readTags(point, resourceTags, at), timestamp: readTimeMs(point, at) });
    }
  } else if (sum) {
    const temporality = readTemporality(sum.aggregationTemporality, `${where}.sum.aggregationTemporality`);
    const monotonic = sum.isMonotonic === true;
    for (const [i, point] of listOf(sum.dataPoints, `${where}.sum.dataPoints`)) {
      const at = `${where}.sum.dataPoints[${i}]`;
      const tags = readTags(point, resourceTags, at);
      let value = readNumberValue(point, at);
      // A non-monotonic sum (an up-down counter) is a level, not a rate: a gauge.
      let type: MetricPoint['type'] = 'gauge';
      if (monotonic) {
        type = 'count';
        if (temporality === AGGREGATION_CUMULATIVE) value = cumulative.delta(streamKey(name, 'sum', tags), String(point.startTimeUnixNano ?? ''), [value])[0];
      }
      out.push({ name, type, value, tags, timestamp: readTimeMs(point, at) });
    }
  } else if (histogram) {
    const temporality = readTemporality(histogram.aggregationTemporality, `${where}.histogram.aggregationTemporality`);
    for (const [i, point] of listOf(histogram.dataPoints, `${where}.histogram.dataPoints`)) {
      const at = `${where}.histogram.dataPoints[${i}]`;
      const tags = readTags(point, resourceTags, at);
      let count = readCount(point.count, `${at}.count`);
      // `sum` is optional in OTLP (absent when values can be negative); without it there is no mean to report.
      if (point.sum === undefined || point.sum === null) continue;
      let total = readFiniteNumber(point.sum, `${at}.sum`);
      if (temporality === AGGREGATION_CUMULATIVE) {
        [count, total] = cumulative.delta(streamKey(name, 'histogram', tags), String(point.startTimeUnixNano ?? ''), [count, total]);
      }
      if (count === 0) continue;
      out.push({ name, type: 'distribution', value: total, values: [total / count], weights: [count], tags, timestamp: readTimeMs(point, at) });
    }
  }
  // Exponential histograms and summaries are not converted: Datadog's model has no lossless equivalent here.
}

function streamKey(name: string, kind: string, tags: string[]): string {
  return `${name}\u0000${kind}\u0000${tags.join(',')}`;
}

function readTemporality(value: unknown, where: string): number {
  if (value === AGGREGATION_DELTA || value === 'AGGREGATION_TEMPORALITY_DELTA') return AGGREGATION_DELTA;
  if (value === AGGREGATION_CUMULATIVE || value === 'AGGREGATION_TEMPORALITY_CUMULATIVE') return AGGREGATION_CUMULATIVE;
  throw new OtlpPayloadError(`${where} must be 1 (delta) or 2 (cumulative)`);
}

function readTags(point: Json, resourceTags: string[], where: string): string[] {
  const attributes = readAttributes(point.attributes, `${where}.attributes`);
  const tags = resourceTags.slice();
  for (const key in attributes) {
    const value = attributes[key];
    tags.push(typeof value === 'string' ? `${key}:${value}` : `${key}:${JSON.stringify(value)}`);
  }
  return tags.sort();
}

function readNumberValue(point: Json, where: string): number {
  if (point.asDouble !== undefined) return readFiniteNumber(point.asDouble, `${where}.asDouble`);
  if (point.asInt !== undefined) return readInt64(point.asInt, `${where}.asInt`);
  throw new OtlpPayloadError(`${where} must have asDouble or asInt`);
}

function readCount(value: unknown, where: string): number {
  const count = readInt64(value ?? 0, where);
  if (count < 0) throw new OtlpPayloadError(`${where} must not be negative`);
  return count;
}

function readTimeMs(point: Json, where: string): number {
  if (point.timeUnixNano === undefined) return Date.now();
  return Number(readNanos(point.timeUnixNano, `${where}.timeUnixNano`) / 1_000_000n);
}

// ---------------------------------------------------------------------------------------------
// Logs

const SEVERITY_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
const REQUEST_ID_ATTRIBUTES = ['faas.invocation_id', 'aws.lambda.request_id'];

export function decodeOtlpLogs(json: unknown): LogRecord[] {
  const records: LogRecord[] = [];
  for (const [r, resourceLogs] of listOf(root(json).resourceLogs, 'resourceLogs')) {
    const where = `resourceLogs[${r}]`;
    for (const [s, scopeLogs] of listOf(resourceLogs.scopeLogs, `${where}.scopeLogs`)) {
      for (const [i, log] of listOf(scopeLogs.logRecords, `${where}.scopeLogs[${s}].logRecords`)) {
        records.push(readLog(log, `${where}.scopeLogs[${s}].logRecords[${i}]`));
      }
    }
  }
  return records;
}

function readLog(raw: Json, where: string): LogRecord {
  const attributes = readAttributes(raw.attributes, `${where}.attributes`);
  const body = raw.body === undefined || raw.body === null ? undefined : readAnyValue(raw.body, `${where}.body`);
  const message = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const record: LogRecord = { timestamp: readLogTime(raw, where), source: 'function', message };
  const level = readSeverity(raw, where);
  if (level !== undefined) record.level = level;
  for (const key of REQUEST_ID_ATTRIBUTES) {
    const id = attributes[key];
    if (typeof id === 'string' && id !== '') {
      record.requestId = id;
      break;
    }
  }
  // Keep the trace correlation that the log record carries outside its attributes.
  if (typeof raw.traceId === 'string' && TRACE_ID.test(raw.traceId)) attributes.trace_id = raw.traceId.toLowerCase();
  if (typeof raw.spanId === 'string' && SPAN_ID.test(raw.spanId)) attributes.span_id = raw.spanId.toLowerCase();
  for (const _ in attributes) {
    record.attributes = attributes;
    break;
  }
  return record;
}

function readLogTime(raw: Json, where: string): number {
  for (const field of ['timeUnixNano', 'observedTimeUnixNano'] as const) {
    if (raw[field] === undefined) continue;
    const nanos = readNanos(raw[field], `${where}.${field}`);
    // 0 means "unknown" in OTLP.
    if (nanos > 0n) return Number(nanos / 1_000_000n);
  }
  return Date.now();
}

function readSeverity(raw: Json, where: string): string | undefined {
  if (typeof raw.severityText === 'string' && raw.severityText !== '') return raw.severityText.toLowerCase();
  const number = raw.severityNumber;
  if (number === undefined || number === null || number === 0) return undefined;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 1 || number > 24) {
    throw new OtlpPayloadError(`${where}.severityNumber must be an integer from 1 to 24`);
  }
  // OTLP severity numbers come in bands of four per level (1-4 trace, ..., 21-24 fatal).
  return SEVERITY_LEVELS[Math.floor((number - 1) / 4)];
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

function root(json: unknown): Json {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new OtlpPayloadError('the payload must be a JSON object');
  return json as Json;
}

/** Entries of an optional array of objects (absent = empty), with their index for error messages. */
function* listOf(value: unknown, where: string): Generator<[number, Json]> {
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) throw new OtlpPayloadError(`${where} must be an array`);
  for (let i = 0; i < value.length; i++) {
    const item = value[i];
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new OtlpPayloadError(`${where}[${i}] must be an object`);
    yield [i, item as Json];
  }
}

function optionalObject(value: unknown, where: string): Json | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new OtlpPayloadError(`${where} must be an object`);
  return value as Json;
}

function readAttributes(value: unknown, where: string): Record<string, unknown> {
  const attributes: Record<string, unknown> = {};
  for (const [i, entry] of listOf(value, where)) {
    if (typeof entry.key !== 'string') throw new OtlpPayloadError(`${where}[${i}].key must be a string`);
    attributes[entry.key] = entry.value === undefined || entry.value === null ? null : readAnyValue(entry.value, `${where}[${i}].value`);
  }
  return attributes;
}

/** An OTLP AnyValue as plain JSON: arrays and kvlists become arrays and objects, bytes stay base64. */
function readAnyValue(value: unknown, where: string): unknown {
  const any = optionalObject(value, where);
  if (!any) return null;
  if ('stringValue' in any) {
    if (typeof any.stringValue !== 'string') throw new OtlpPayloadError(`${where}.stringValue must be a string`);
    return any.stringValue;
  }
  if ('intValue' in any) return readInt64(any.intValue, `${where}.intValue`);
  if ('doubleValue' in any) return readFiniteNumber(any.doubleValue, `${where}.doubleValue`);
  if ('boolValue' in any) {
    if (typeof any.boolValue !== 'boolean') throw new OtlpPayloadError(`${where}.boolValue must be a boolean`);
    return any.boolValue;
  }
  if ('bytesValue' in any) {
    if (typeof any.bytesValue !== 'string') throw new OtlpPayloadError(`${where}.bytesValue must be a base64 string`);
    return any.bytesValue;
  }
  if ('arrayValue' in any) {
    const array = optionalObject(any.arrayValue, `${where}.arrayValue`);
    const values = array?.values ?? [];
    if (!Array.isArray(values)) throw new OtlpPayloadError(`${where}.arrayValue.values must be an array`);
    return values.map((item, i) => readAnyValue(item, `${where}.arrayValue.values[${i}]`));
  }
  if ('kvlistValue' in any) {
    const kvlist = optionalObject(any.kvlistValue, `${where}.kvlistValue`);
    return readAttributes(kvlist?.values, `${where}.kvlistValue.values`);
  }
  // An empty AnyValue is valid OTLP: no value.
  return null;
}

/** int64 fields arrive as decimal strings (or numbers, from lenient encoders). */
function readInt64(value: unknown, where: string): number {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && DECIMAL.test(value)) return Number(value);
  throw new OtlpPayloadError(`${where} must be an integer (a decimal string or a number)`);
}

/** doubles may also be "NaN"/"Infinity" strings in the protobuf JSON mapping; those carry no usable value. */
function readFiniteNumber(value: unknown, where: string): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  throw new OtlpPayloadError(`${where} must be a finite number`);
}

function readNanos(value: unknown, where: string): bigint {
  if (typeof value === 'string' && /^\d+$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return BigInt(value);
  throw new OtlpPayloadError(`${where} must be nanoseconds since the epoch (a decimal string)`);
}

function nanosToMicros(nanos: bigint): number {
  return Number((nanos + 500n) / 1000n);
}
