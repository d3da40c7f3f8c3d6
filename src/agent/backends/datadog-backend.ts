/**
 * Datadog's public intake, as the Datadog extension uses it (datadog-extension-notes.md §1.5):
 * - counts, gauges and sets → `POST {metricsUrl}/api/v2/series` (sets as gauges: we already
 *   hold the number of distinct values);
 * - distributions → `POST {metricsUrl}/api/v1/distribution_points` with the raw samples (the
 *   extension sends DDSketches to `/api/beta/sketches`; raw points need no sketch library);
 * - logs → `POST {logsUrl}/api/v2/logs`, ≤1000 entries and ≤5 MiB per request, each message cut at 1 MiB;
 * - traces → `POST {tracesUrl}/api/v0.2/traces`, the trace agent's protobuf AgentPayload.
 * Security signals are not sent here: Datadog shows attacks from the `aws.lambda` span's tags.
 * A 403 (bad API key) is dropped, as Datadog does; every other failure is retried.
 */

import type { AgentResource, LogRecord, MetricPoint, Span, TelemetryBackend, TelemetryBatch } from '../model.ts';
import { encodeAgentPayload } from './datadog-trace-payload.ts';
import { postAccepted, sendParts, type BatchPart } from './http-post.ts';

export interface DatadogBackendOptions {
  apiKey: string;
  metricsUrl: string;
  logsUrl: string;
  tracesUrl: string;
}

const MAX_SERIES_PER_REQUEST = 1000;
const MAX_LOGS_PER_REQUEST = 1000;
const MAX_LOGS_REQUEST_BYTES = 5 * 1024 * 1024;
const MAX_LOG_MESSAGE_BYTES = 1024 * 1024;
const MAX_TRACE_PAYLOAD_BYTES = 12 * 1000 * 1000;
/** A sample with weight w (sample rate 1/w) is sent w times, up to this many. */
const MAX_SAMPLE_REPEAT = 1000;
const SERIES_TYPE = { count: 1, gauge: 3, set: 3 } as const;
/** The trace agent's defaults for its sampler targets, reported in every payload. */
const TARGET_TPS = 10;
const ERROR_TPS = 10;

function isPermanent(status: number): boolean {
  return status === 403;
}

export class DatadogBackend implements TelemetryBackend {
  readonly name = 'datadog';
  readonly #options: DatadogBackendOptions;

  constructor(options: DatadogBackendOptions) {
    const trim = (url: string) => url.replace(/\/+$/, '');
    this.#options = { apiKey: options.apiKey, metricsUrl: trim(options.metricsUrl), logsUrl: trim(options.logsUrl), tracesUrl: trim(options.tracesUrl) };
  }

  async send(batch: TelemetryBatch, signal?: AbortSignal): Promise<void> {
    const { apiKey, metricsUrl, logsUrl, tracesUrl } = this.#options;
    const json = { 'DD-API-KEY': apiKey, 'Content-Type': 'application/json' };
    const post = (url: string, body: Buffer | string, headers: Record<string, string>) => () =>
      postAccepted(this.name, url, body, { headers, signal }, isPermanent);
    const parts: BatchPart[] = [];

    for (const body of seriesBodies(batch)) parts.push({ kinds: ['metrics'], send: post(`${metricsUrl}/api/v2/series`, body, json) });
    for (const body of distributionBodies(batch)) {
      parts.push({ kinds: ['metrics'], send: post(`${metricsUrl}/api/v1/distribution_points`, body, json) });
    }
    for (const body of logBodies(batch)) parts.push({ kinds: ['logs'], send: post(`${logsUrl}/api/v2/logs`, body, json) });
    if (batch.spans.length > 0) {
      const language = runtimeLanguage(batch.resource.runtime).name;
      const headers = { 'DD-API-KEY': apiKey, 'Content-Type': 'application/x-protobuf', 'X-Datadog-Reported-Languages': language };
      for (const body of tracePayloads(batch)) parts.push({ kinds: ['spans'], send: post(`${tracesUrl}/api/v0.2/traces`, Buffer.from(body), headers) });
    }
    await sendParts(parts);
  }
}

/** `/api/v2/series` bodies: one series per (name, type, tags), its points in time order. */
export function seriesBodies(batch: TelemetryBatch): string[] {
  const resources = batch.resource.functionArn ? [{ name: batch.resource.functionArn, type: 'host' }] : undefined;
  const series = new Map<string, { metric: string; type: number; points: { timestamp: number; value: number }[]; tags: string[]; resources?: unknown }>();
  for (const point of batch.metrics) {
    if (point.type === 'distribution' || !Number.isFinite(point.value)) continue;
    const tags = withResourceTags(point.tags, batch.resource.tags);
    const key = `${point.type}\u0000${point.name}\u0000${tags.join(',')}`;
    const entry = series.get(key);
    const sample = { timestamp: Math.floor(point.timestamp / 1000), value: point.value };
    if (entry !== undefined) entry.points.push(sample);
    else series.set(key, { metric: point.name, type: SERIES_TYPE[point.type], points: [sample], tags, ...(resources ? { resources } : {}) });
  }
  return inGroups([...series.values()], MAX_SERIES_PER_REQUEST).map((group) => JSON.stringify({ series: group }));
}

/** `/api/v1/distribution_points` bodies: each point's samples, repeated by their weights. */
export function distributionBodies(batch: TelemetryBatch): string[] {
  const series: unknown[] = [];
  for (const point of batch.metrics) {
    if (point.type !== 'distribution') continue;
    const samples = expandWeights(point);
    if (samples.length === 0) continue;
    series.push({
      metric: point.name,
      points: [[Math.floor(point.timestamp / 1000), samples]],
      tags: withResourceTags(point.tags, batch.resource.tags),
      type: 'distribution',
    });
  }
  return inGroups(series, MAX_SERIES_PER_REQUEST).map((group) => JSON.stringify({ series: group }));
}

/**
 * Datadog's distribution points carry no weights, so a sample seen at rate 1/w stands for w
 * samples: repeated round(w) times (at least once, at most MAX_SAMPLE_REPEAT).
 */
function expandWeights(point: MetricPoint): number[] {
  const values = (point.values ?? [point.value]).filter(Number.isFinite);
  if (point.weights === undefined || point.values === undefined) return values;
  const samples: number[] = [];
  point.values.forEach((value, i) => {
    if (!Number.isFinite(value)) return;
    const weight = point.weights?.[i] ?? 1;
    const repeat = Number.isFinite(weight) ? Math.min(MAX_SAMPLE_REPEAT, Math.max(1, Math.round(weight))) : 1;
    for (let r = 0; r < repeat; r++) samples.push(value);
  });
  return samples;
}

/** `/api/v2/logs` bodies: JSON arrays of ≤1000 entries and ≤5 MiB. */
export function logBodies(batch: TelemetryBatch): string[] {
  const bodies: string[] = [];
  const ddtags = functionTags(batch.resource).join(',');
  const service = serviceOf(batch.resource);
  let entries: string[] = [];
  let bytes = 2; // the brackets
  for (const record of batch.logs) {
    const entry = logEntry(record, batch.resource, service, ddtags);
    const size = Buffer.byteLength(entry) + 1; // and its comma
    if (entries.length > 0 && (entries.length >= MAX_LOGS_PER_REQUEST || bytes + size > MAX_LOGS_REQUEST_BYTES)) {
      bodies.push(`[${entries.join(',')}]`);
      entries = [];
      bytes = 2;
    }
    entries.push(entry);
    bytes += size;
  }
  if (entries.length > 0) bodies.push(`[${entries.join(',')}]`);
  return bodies;
}

function logEntry(record: LogRecord, resource: AgentResource, service: string, ddtags: string): string {
  const fixed = {
    message: truncateUtf8(record.message, MAX_LOG_MESSAGE_BYTES),
    ddsource: 'lambda',
    service,
    hostname: resource.functionArn,
    status: record.level ?? 'info',
    ddtags,
    timestamp: record.timestamp,
    lambda: { arn: resource.functionArn, ...(record.requestId ? { request_id: record.requestId } : {}) },
  };
  // A JSON log's own fields become searchable attributes; ours win a clash of names.
  const entry = JSON.stringify(record.attributes ? { ...record.attributes, ...fixed } : fixed);
  // The attributes repeat the message's content, so an entry past the request limit loses them.
  return Buffer.byteLength(entry) + 2 > MAX_LOGS_REQUEST_BYTES ? JSON.stringify(fixed) : entry;
}

function truncateUtf8(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes) return text;
  // Cutting mid-character leaves a replacement character at the end; drop it.
  return Buffer.from(text).subarray(0, maxBytes).toString('utf8').replace(/\uFFFD+$/, '');
}

/** Protobuf AgentPayloads, one per trace chunk group, each under the intake's 12 MB limit. */
export function tracePayloads(batch: TelemetryBatch): Uint8Array[] {
  const byTrace = new Map<string, Span[]>();
  for (const span of batch.spans) {
    const list = byTrace.get(span.traceId);
    if (list === undefined) byTrace.set(span.traceId, [span]);
    else list.push(span);
  }
  const chunks = [...byTrace.values()].map((spans) => ({ priority: chunkPriority(spans), origin: 'lambda', spans }));
  const { resource } = batch;
  const language = runtimeLanguage(resource.runtime);
  const env = tagValue(resource.tags, 'env') ?? '';
  const encode = (group: typeof chunks): Uint8Array[] => {
    const bytes = encodeAgentPayload({
      hostName: '',
      env,
      agentVersion: resource.extensionVersion,
      tags: { functionname: resource.functionName.toLowerCase() },
      targetTPS: TARGET_TPS,
      errorTPS: ERROR_TPS,
      tracer: {
        languageName: language.name,
        languageVersion: language.version,
        tracerVersion: '',
        env,
        hostname: '',
        appVersion: tagValue(resource.tags, 'version') ?? '',
        tags: {},
      },
      chunks: group,
    });
    if (bytes.length <= MAX_TRACE_PAYLOAD_BYTES || group.length < 2) return [bytes];
    const half = Math.ceil(group.length / 2);
    return [...encode(group.slice(0, half)), ...encode(group.slice(half))];
  };
  return encode(chunks);
}

/** The tracer's sampling decision travels on the root span; without one, keep the trace (auto-keep, 1). */
function chunkPriority(spans: Span[]): number {
  const root = spans.find((s) => s.parentId === undefined) ?? spans[0];
  const priority = root.metrics['_sampling_priority_v1'];
  return Number.isInteger(priority) ? priority : 1;
}

/** `nodejs20.x` → nodejs 20.x; `python3.12` → python 3.12; `provided.al2023` → provided al2023. */
function runtimeLanguage(runtime: string): { name: string; version: string } {
  const match = /^([a-z]+)[.]?(.*)$/i.exec(runtime);
  return match ? { name: match[1].toLowerCase(), version: match[2] } : { name: runtime, version: '' };
}

function functionTags(resource: AgentResource): string[] {
  const own = [
    `functionname:${resource.functionName.toLowerCase()}`,
    `region:${resource.region}`,
    `account_id:${resource.accountId}`,
    `runtime:${resource.runtime}`,
  ];
  return withResourceTags(resource.tags, own);
}

/** The point's tags, then each extra tag whose key the point does not already have. */
function withResourceTags(tags: string[], extra: string[]): string[] {
  if (extra.length === 0) return tags;
  const keys = new Set(tags.map(tagKey));
  const merged = tags.slice();
  for (const tag of extra) if (!keys.has(tagKey(tag))) merged.push(tag);
  return merged;
}

function tagKey(tag: string): string {
  const colon = tag.indexOf(':');
  return colon < 0 ? tag : tag.slice(0, colon);
}

function tagValue(tags: string[], key: string): string | undefined {
  const tag = tags.find((t) => t.startsWith(`${key}:`));
  return tag?.slice(key.length + 1);
}

function serviceOf(resource: AgentResource): string {
  return tagValue(resource.tags, 'service') ?? resource.functionName.toLowerCase();
}

function inGroups<T>(items: T[], size: number): T[][] {
  const groups: T[][] = [];
  for (let i = 0; i < items.length; i += size) groups.push(items.slice(i, i + size));
  return groups;
}
