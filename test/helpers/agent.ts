/**
 * What the agent's end-to-end tests share: the built-in layer's ARN, handlers bundled the
 * way `sam build` bundles them, REPORT lines read back, and the telemetry store's query API.
 */
import path from 'node:path';
import { build } from 'esbuild';
import { InvokeCommand, ListLayersCommand, type InvokeCommandOutput } from '@aws-sdk/client-lambda';
import { repoRoot, logResult, type TestServer } from './nimbus.ts';

/** The built-in layer is published in the background at start; waits for it. */
export async function agentLayerArn(server: TestServer, timeoutMs = 90_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await server.client.send(new ListLayersCommand({}));
    const layer = out.Layers?.find((l) => l.LayerName === 'nimbus-agent');
    if (layer?.LatestMatchingVersion?.LayerVersionArn) return layer.LatestMatchingVersion.LayerVersionArn;
    if (Date.now() > deadline) throw new Error('the nimbus-agent layer was not published');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A fixture under test/fixtures/agent bundled into one CommonJS file, as `sam build` would. */
export async function bundledHandler(fixture: string): Promise<string> {
  const out = await build({
    entryPoints: [path.join(repoRoot, 'test', 'fixtures', 'agent', fixture)],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    logLevel: 'error',
  });
  return out.outputFiles[0]!.text;
}

export interface Report {
  requestId: string;
  durationMs: number;
  billedMs: number;
  memoryMb: number;
  maxMemoryMb: number;
  initMs?: number;
}

/** The REPORT line of a tailed invoke. */
export function reportOf(out: InvokeCommandOutput): Report {
  const tail = logResult(out.LogResult);
  const m = /REPORT RequestId: (\S+)\tDuration: ([\d.]+) ms\tBilled Duration: (\d+) ms\tMemory Size: (\d+) MB\tMax Memory Used: (\d+) MB(?:\tInit Duration: ([\d.]+) ms)?/.exec(tail);
  if (!m) throw new Error(`no REPORT line in:\n${tail}`);
  return {
    requestId: m[1]!,
    durationMs: Number(m[2]),
    billedMs: Number(m[3]),
    memoryMb: Number(m[4]),
    maxMemoryMb: Number(m[5]),
    ...(m[6] ? { initMs: Number(m[6]) } : {}),
  };
}

export async function invokeTail(server: TestServer, FunctionName: string, payload: unknown = {}): Promise<InvokeCommandOutput> {
  return server.client.send(new InvokeCommand({ FunctionName, Payload: Buffer.from(JSON.stringify(payload)), LogType: 'Tail' }));
}

export interface StoredPoint {
  name: string;
  type: string;
  value: number;
  values?: number[];
  tags: string[];
  timestamp: number;
  requestId?: string;
}

export interface StoredSpan {
  traceId: string;
  spanId: string;
  parentId?: string;
  name: string;
  service: string;
  resource: string;
  error: boolean;
  meta: Record<string, string>;
  metrics: Record<string, number>;
  requestId?: string;
  startMicros: number;
  durationMicros: number;
}

export interface StoredLog {
  timestamp: number;
  source: string;
  requestId?: string;
  level?: string;
  message: string;
  attributes?: Record<string, unknown>;
}

async function getJson<T>(server: TestServer, pathAndQuery: string): Promise<T> {
  const res = await server.fetch(pathAndQuery);
  if (!res.ok) throw new Error(`GET ${pathAndQuery}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/**
 * The function's metric points, with merged per-invocation distributions (`requestIds`
 * beside `values`) expanded back into one point per invocation, as the tests compare them
 * with REPORT lines.
 */
export async function metricPoints(server: TestServer, fn: string, name?: string): Promise<StoredPoint[]> {
  const q = name ? `?name=${encodeURIComponent(name)}&limit=10000` : '?limit=10000';
  const points = (await getJson<{ points: Array<StoredPoint & { requestIds?: string[] }> }>(server, `/nimbus/v1/functions/${fn}/metrics${q}`)).points;
  return points.flatMap(({ requestIds, ...p }) => (requestIds ? requestIds.map((requestId, i) => ({ ...p, value: p.values![i]!, values: [p.values![i]!], requestId })) : [p]));
}

export async function traceSpans(server: TestServer, fn: string): Promise<StoredSpan[]> {
  const list = await getJson<{ traces: Array<{ traceId: string }> }>(server, `/nimbus/v1/functions/${fn}/traces?limit=1000`);
  const spans: StoredSpan[] = [];
  for (const t of list.traces) spans.push(...(await getJson<{ spans: StoredSpan[] }>(server, `/nimbus/v1/functions/${fn}/traces/${t.traceId}`)).spans);
  return spans;
}

export async function agentLogs(server: TestServer, fn: string): Promise<StoredLog[]> {
  return (await getJson<{ records: StoredLog[] }>(server, `/nimbus/v1/functions/${fn}/telemetry-logs?limit=10000`)).records;
}

/** Polls `read` until `done` holds (telemetry arrives after the invoke returns). */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what} not met after ${timeoutMs} ms; last value: ${JSON.stringify(value).slice(0, 4000)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

export const enhanced = (points: StoredPoint[], metric: string): StoredPoint[] => points.filter((p) => p.name === `aws.lambda.enhanced.${metric}`);
