/**
 * The trace agent's intake payload (`POST /api/v0.2/traces`, `application/x-protobuf`):
 * AgentPayload → TracerPayload → TraceChunk → Span, with the field numbers of datadog-agent's
 * pkg/proto/datadog/trace/{agent_payload,tracer_payload,span}.proto (the fields we fill).
 * Encoding from our Span model, and a decoder for tests and recording servers.
 */

import protobuf from 'protobufjs';
import type { Span } from '../model.ts';

const PROTO = `
syntax = "proto3";
package datadog.trace;

message AgentPayload {
  string hostName = 1;
  string env = 2;
  repeated TracerPayload tracerPayloads = 5;
  map<string, string> tags = 6;
  string agentVersion = 7;
  double targetTPS = 8;
  double errorTPS = 9;
}

message TracerPayload {
  string containerID = 1;
  string languageName = 2;
  string languageVersion = 3;
  string tracerVersion = 4;
  string runtimeID = 5;
  repeated TraceChunk chunks = 6;
  map<string, string> tags = 7;
  string env = 8;
  string hostname = 9;
  string appVersion = 10;
}

message TraceChunk {
  int32 priority = 1;
  string origin = 2;
  repeated Span spans = 3;
  map<string, string> tags = 4;
  bool droppedTrace = 5;
}

message Span {
  string service = 1;
  string name = 2;
  string resource = 3;
  uint64 traceID = 4;
  uint64 spanID = 5;
  uint64 parentID = 6;
  int64 start = 7;
  int64 duration = 8;
  int32 error = 9;
  map<string, string> meta = 10;
  map<string, double> metrics = 11;
  string type = 12;
}
`;

const root = protobuf.parse(PROTO, { keepCase: true }).root;
const AgentPayloadType = root.lookupType('datadog.trace.AgentPayload');

/** What Datadog's intake sees of a span, ids and times as bigint (they are 64-bit). */
export interface DecodedSpan {
  service: string;
  name: string;
  resource: string;
  traceID: bigint;
  spanID: bigint;
  parentID: bigint;
  start: bigint;
  duration: bigint;
  error: number;
  meta: Record<string, string>;
  metrics: Record<string, number>;
  type: string;
}

export interface DecodedChunk {
  priority: number;
  origin: string;
  spans: DecodedSpan[];
  tags: Record<string, string>;
  droppedTrace: boolean;
}

export interface DecodedTracerPayload {
  containerID: string;
  languageName: string;
  languageVersion: string;
  tracerVersion: string;
  runtimeID: string;
  chunks: DecodedChunk[];
  tags: Record<string, string>;
  env: string;
  hostname: string;
  appVersion: string;
}

export interface DecodedAgentPayload {
  hostName: string;
  env: string;
  tracerPayloads: DecodedTracerPayload[];
  tags: Record<string, string>;
  agentVersion: string;
  targetTPS: number;
  errorTPS: number;
}

export interface AgentPayloadInput {
  hostName: string;
  env: string;
  agentVersion: string;
  tags: Record<string, string>;
  targetTPS: number;
  errorTPS: number;
  tracer: {
    languageName: string;
    languageVersion: string;
    tracerVersion: string;
    env: string;
    hostname: string;
    appVersion: string;
    tags: Record<string, string>;
  };
  chunks: { priority: number; origin: string; spans: Span[] }[];
}

/** protobufjs takes 64-bit values as {low, high} halves, which needs no Long library. */
interface LongBits {
  low: number;
  high: number;
  unsigned: boolean;
}

const ZERO: LongBits = { low: 0, high: 0, unsigned: true };

/** 16 hex digits → uint64 halves; anything unparsable → 0 (the intake treats 0 as "none"). */
function hexToLong(hex: string | undefined): LongBits {
  if (hex === undefined || !/^[0-9a-f]{1,16}$/i.test(hex)) return ZERO;
  const padded = hex.padStart(16, '0');
  return { low: Number.parseInt(padded.slice(8), 16) | 0, high: Number.parseInt(padded.slice(0, 8), 16) | 0, unsigned: true };
}

/** Whole microseconds → int64 nanoseconds, exact (micros × 1000 overflows a double's integers). */
function microsToNanoLong(micros: number): LongBits {
  const nanos = BigInt(Math.max(0, Math.round(micros))) * 1000n;
  return { low: Number(BigInt.asIntN(32, nanos)), high: Number(BigInt.asIntN(32, nanos >> 32n)), unsigned: false };
}

function toProtoSpan(span: Span): Record<string, unknown> {
  const high = span.traceId.length > 16 ? span.traceId.slice(0, span.traceId.length - 16) : '';
  const low = span.traceId.slice(-16);
  let meta = span.meta;
  // Datadog carries the upper 64 bits of a 128-bit trace id as a tag, the id field being 64-bit.
  if (high !== '' && !/^0+$/.test(high)) meta = { ...span.meta, '_dd.p.tid': high.padStart(16, '0') };
  return {
    service: span.service,
    name: span.name,
    resource: span.resource,
    traceID: hexToLong(low),
    spanID: hexToLong(span.spanId),
    parentID: hexToLong(span.parentId),
    start: microsToNanoLong(span.startMicros),
    duration: microsToNanoLong(span.durationMicros),
    error: span.error ? 1 : 0,
    meta,
    metrics: finiteMetrics(span.metrics),
    type: span.type ?? '',
  };
}

/** Protobuf doubles can hold NaN, but the intake rejects non-finite metrics. */
function finiteMetrics(metrics: Record<string, number>): Record<string, number> {
  for (const key in metrics) {
    if (!Number.isFinite(metrics[key])) {
      const kept: Record<string, number> = {};
      for (const k in metrics) if (Number.isFinite(metrics[k])) kept[k] = metrics[k];
      return kept;
    }
  }
  return metrics;
}

export function encodeAgentPayload(input: AgentPayloadInput): Uint8Array {
  const message = {
    hostName: input.hostName,
    env: input.env,
    agentVersion: input.agentVersion,
    tags: input.tags,
    targetTPS: input.targetTPS,
    errorTPS: input.errorTPS,
    tracerPayloads: [
      {
        ...input.tracer,
        chunks: input.chunks.map((chunk) => ({ priority: chunk.priority, origin: chunk.origin, spans: chunk.spans.map(toProtoSpan) })),
      },
    ],
  };
  // Plain objects encode directly (64-bit fields as {low, high}); fromObject would only copy them.
  return AgentPayloadType.encode(message).finish();
}

/** Decodes a payload as the intake would; throws a DatadogPayloadError on bytes that are not one. */
export function decodeAgentPayload(bytes: Uint8Array): DecodedAgentPayload {
  let decoded: Record<string, unknown>;
  try {
    decoded = AgentPayloadType.toObject(AgentPayloadType.decode(bytes), {
      longs: String,
      defaults: true,
      arrays: true,
      objects: true,
    }) as Record<string, unknown>;
  } catch (error) {
    throw new DatadogPayloadError(`not a Datadog AgentPayload: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const payload = decoded as unknown as DecodedAgentPayload & { tracerPayloads: { chunks: { spans: Record<string, unknown>[] }[] }[] };
  for (const tracer of payload.tracerPayloads) {
    for (const chunk of tracer.chunks) {
      for (const span of chunk.spans) {
        for (const field of ['traceID', 'spanID', 'parentID', 'start', 'duration'] as const) span[field] = BigInt(String(span[field]));
      }
    }
  }
  return payload;
}

export class DatadogPayloadError extends Error {
  override readonly name = 'DatadogPayloadError';
}
