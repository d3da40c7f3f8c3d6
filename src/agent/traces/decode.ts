/**
 * Decodes the Datadog tracer protocol (what dd-trace and the other Datadog tracers send to the
 * trace agent on :8126) into the agent's Span model.
 *
 * v0.4: msgpack (or JSON) array of traces, each an array of span maps.
 * v0.5: msgpack `[strings, traces]`, each span a 12-element array whose string fields are
 * indexes into `strings` (smaller payloads for tracers).
 *
 * Ids are uint64, so msgpack is decoded with BigInt for 64-bit integers; a payload with a
 * wrong shape or type is refused as a whole (TracePayloadError), as the Datadog agent does.
 */
import { Decoder } from '@msgpack/msgpack';
import type { Span } from '../model.ts';

export type TraceApiVersion = 'v0.4' | 'v0.5';

export class TracePayloadError extends Error {
  override readonly name = 'TracePayloadError';
}

/** The fields of one span as the tracer sent them, before ids and times become the model's. */
interface WireSpan {
  traceId: bigint;
  spanId: bigint;
  parentId: bigint;
  name: string;
  service: string;
  resource: string;
  type: string;
  start: number | bigint;
  duration: number | bigint;
  error: boolean;
  meta: Record<string, string>;
  metrics: Record<string, number>;
}

// One decoder for all payloads: decoding is synchronous, and the decoder keeps a key cache worth reusing.
const msgpack = new Decoder({ useBigInt64: true });

const ZERO_HIGH_BITS = '0000000000000000';
const HEX16 = /^[0-9a-f]{16}$/;

export function decodeTracePayload(version: TraceApiVersion, contentType: string | undefined, body: Buffer): Span[] {
  const json = isJson(contentType);
  if (json && version === 'v0.5') throw new TracePayloadError('v0.5 payloads must be msgpack');
  const payload = json ? parseJson(body) : parseMsgpack(body);
  const traces = version === 'v0.4' ? readV04(payload) : readV05(payload);
  const spans: Span[] = [];
  for (const trace of traces) appendTrace(trace, spans);
  return spans;
}

function isJson(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = contentType.split(';', 1)[0].trim().toLowerCase();
  return type === 'application/json' || type === 'text/json';
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new TracePayloadError(`invalid JSON: ${(error as Error).message}`);
  }
}

function parseMsgpack(body: Buffer): unknown {
  if (body.length === 0) throw new TracePayloadError('empty body');
  try {
    return msgpack.decode(body);
  } catch (error) {
    throw new TracePayloadError(`invalid msgpack: ${(error as Error).message}`);
  }
}

function readV04(payload: unknown): WireSpan[][] {
  if (!Array.isArray(payload)) throw new TracePayloadError('payload must be an array of traces');
  return payload.map((trace, t) => {
    if (!Array.isArray(trace)) throw new TracePayloadError(`trace ${t} must be an array of spans`);
    return trace.map((span, s) => readV04Span(span, `trace ${t} span ${s}`));
  });
}

function readV04Span(raw: unknown, where: string): WireSpan {
  if (!isPlainObject(raw)) throw new TracePayloadError(`${where} must be a map`);
  return {
    traceId: readId(raw.trace_id, `${where} trace_id`, true),
    spanId: readId(raw.span_id, `${where} span_id`, true),
    parentId: readId(raw.parent_id, `${where} parent_id`, false),
    name: readString(raw.name, `${where} name`),
    service: readString(raw.service, `${where} service`),
    resource: readString(raw.resource, `${where} resource`),
    type: readString(raw.type, `${where} type`),
    start: readInteger(raw.start, `${where} start`),
    duration: readInteger(raw.duration, `${where} duration`),
    error: readInteger(raw.error, `${where} error`) != 0,
    meta: readMeta(raw.meta, `${where} meta`),
    metrics: readMetrics(raw.metrics, `${where} metrics`),
  };
}

function readV05(payload: unknown): WireSpan[][] {
  if (!Array.isArray(payload) || payload.length !== 2) throw new TracePayloadError('payload must be [strings, traces]');
  const [strings, traces] = payload as [unknown, unknown];
  if (!Array.isArray(strings) || !strings.every((s) => typeof s === 'string')) {
    throw new TracePayloadError('the string table must be an array of strings');
  }
  if (!Array.isArray(traces)) throw new TracePayloadError('traces must be an array');
  const table = strings as string[];
  return traces.map((trace, t) => {
    if (!Array.isArray(trace)) throw new TracePayloadError(`trace ${t} must be an array of spans`);
    return trace.map((span, s) => readV05Span(span, table, `trace ${t} span ${s}`));
  });
}

function readV05Span(raw: unknown, table: string[], where: string): WireSpan {
  if (!Array.isArray(raw) || raw.length !== 12) throw new TracePayloadError(`${where} must be an array of 12 fields`);
  const str = (value: unknown, field: string): string => lookup(table, value, `${where} ${field}`);
  const meta: Record<string, string> = {};
  const rawMeta = raw[9];
  if (!isPlainObject(rawMeta)) throw new TracePayloadError(`${where} meta must be a map`);
  for (const key in rawMeta) meta[str(Number(key), 'meta key')] = str(rawMeta[key], 'meta value');
  const metrics: Record<string, number> = {};
  const rawMetrics = raw[10];
  if (!isPlainObject(rawMetrics)) throw new TracePayloadError(`${where} metrics must be a map`);
  for (const key in rawMetrics) metrics[str(Number(key), 'metrics key')] = readNumber(rawMetrics[key], `${where} metrics value`);
  return {
    service: str(raw[0], 'service'),
    name: str(raw[1], 'name'),
    resource: str(raw[2], 'resource'),
    traceId: readId(raw[3], `${where} trace_id`, true),
    spanId: readId(raw[4], `${where} span_id`, true),
    parentId: readId(raw[5], `${where} parent_id`, false),
    start: readInteger(raw[6], `${where} start`),
    duration: readInteger(raw[7], `${where} duration`),
    error: readInteger(raw[8], `${where} error`) != 0,
    meta,
    metrics,
    type: str(raw[11], 'type'),
  };
}

function lookup(table: string[], index: unknown, where: string): string {
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= table.length) {
    throw new TracePayloadError(`${where} must be an index into the string table (0..${table.length - 1})`);
  }
  return table[index];
}

/**
 * Adds one trace chunk's spans. Tracers put the high 64 bits of a 128-bit trace id
 * (`_dd.p.tid`) on the chunk's first span only, so it is applied to every span of the chunk
 * with the same low 64 bits; otherwise children would not join their root.
 */
function appendTrace(trace: WireSpan[], out: Span[]): void {
  let highBits: string | undefined;
  for (const span of trace) {
    const tid = span.meta['_dd.p.tid'];
    if (tid !== undefined && HEX16.test(tid)) {
      highBits = tid;
      break;
    }
  }
  for (const span of trace) {
    const own = span.meta['_dd.p.tid'];
    const high = own !== undefined && HEX16.test(own) ? own : (highBits ?? ZERO_HIGH_BITS);
    const result: Span = {
      traceId: high + hex16(span.traceId),
      spanId: hex16(span.spanId),
      name: span.name,
      service: span.service,
      resource: span.resource,
      startMicros: nanosToMicros(span.start),
      durationMicros: nanosToMicros(span.duration),
      error: span.error,
      meta: span.meta,
      metrics: span.metrics,
    };
    if (span.parentId !== 0n) result.parentId = hex16(span.parentId);
    if (span.type !== '') result.type = span.type;
    out.push(result);
  }
}

function hex16(id: bigint): string {
  return id.toString(16).padStart(16, '0');
}

function nanosToMicros(nanos: number | bigint): number {
  if (typeof nanos === 'number') return Math.round(nanos / 1000);
  // Round half up like Math.round, in BigInt so that epoch nanoseconds keep their precision.
  const micros = nanos >= 0n ? (nanos + 500n) / 1000n : -((-nanos + 499n) / 1000n);
  return Number(micros);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

const DECIMAL = /^\d+$/;

/** A uint64 id. Negative values are the int64 encoding some tracers use for ids with the top bit set. */
function readId(value: unknown, where: string, required: boolean): bigint {
  let id: bigint;
  if (typeof value === 'bigint') id = value;
  else if (typeof value === 'number' && Number.isInteger(value)) id = BigInt(value);
  // JSON cannot carry a uint64 as a number without losing precision, so a decimal string is accepted.
  else if (typeof value === 'string' && DECIMAL.test(value)) id = BigInt(value);
  else if ((value === undefined || value === null) && !required) id = 0n;
  else throw new TracePayloadError(`${where} must be an unsigned 64-bit integer`);
  id = BigInt.asUintN(64, id);
  if (required && id === 0n) throw new TracePayloadError(`${where} must not be 0`);
  return id;
}

function readInteger(value: unknown, where: string): number | bigint {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  throw new TracePayloadError(`${where} must be an integer`);
}

function readNumber(value: unknown, where: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  throw new TracePayloadError(`${where} must be a number`);
}

function readString(value: unknown, where: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  throw new TracePayloadError(`${where} must be a string`);
}

function readMeta(value: unknown, where: string): Record<string, string> {
  const meta: Record<string, string> = {};
  if (value === undefined || value === null) return meta;
  if (!isPlainObject(value)) throw new TracePayloadError(`${where} must be a map of strings`);
  for (const key in value) {
    const item = value[key];
    if (typeof item !== 'string') throw new TracePayloadError(`${where}.${key} must be a string`);
    meta[key] = item;
  }
  return meta;
}

function readMetrics(value: unknown, where: string): Record<string, number> {
  const metrics: Record<string, number> = {};
  if (value === undefined || value === null) return metrics;
  if (!isPlainObject(value)) throw new TracePayloadError(`${where} must be a map of numbers`);
  for (const key in value) metrics[key] = readNumber(value[key], `${where}.${key}`);
  return metrics;
}
