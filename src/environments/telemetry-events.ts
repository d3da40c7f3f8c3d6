/**
 * The platform events of the Telemetry API with their exact fields
 * (shared/reference/lambda-interfaces.md §3.2), for on-demand environments and for
 * Lambda Managed Instances, whose 2025-01-29 schema differs: `platform.initStart` carries
 * the instance, `platform.start` the function ARN, there is no `platform.runtimeDone`,
 * and `platform.report` has `durationMs` only with the response spans (RIE's
 * lambda-managed-instances/interop/events_api.go).
 */
import type { TraceContext } from './extension-registry.ts';

export type TelemetryStatus = 'success' | 'error' | 'failure' | 'timeout';

export interface Span {
  name: string;
  start: string;
  durationMs: number;
}

export interface TelemetryFacts {
  functionName: string;
  functionVersion: string;
  functionArn: string;
  initializationType: string;
  managedInstances: boolean;
  instanceId: string;
  memoryMb: number;
  /** Lambda's `runtimeVersion` (`nodejs:24.v1`); absent for custom runtimes. */
  runtimeVersion?: string;
}

/** `nodejs24.x` → `nodejs:24.v1`, `python3.12` → `python:3.12.v1`, as Lambda names runtime versions. */
export function runtimeVersionOf(runtimeId: string): string | undefined {
  const m = /^(nodejs|python|java|dotnet|ruby)(\d+(?:\.\d+)?)(?:\.x)?$/.exec(runtimeId);
  return m ? `${m[1]}:${m[2]}.v1` : undefined;
}

/** Milliseconds with microsecond precision, as Lambda reports them. */
export const ms = (value: number): number => Math.round(value * 1000) / 1000;

/** A performance.now() time as ISO-8601. */
export const isoAt = (perfMs: number): string => new Date(performance.timeOrigin + perfMs).toISOString();

export function span(name: string, startPerfMs: number, endPerfMs: number): Span {
  return { name, start: isoAt(startPerfMs), durationMs: ms(Math.max(0, endPerfMs - startPerfMs)) };
}

export const tracing = (traceId: string): TraceContext => ({ type: 'X-Amzn-Trace-Id', value: traceId });

export function initStart(f: TelemetryFacts): Record<string, unknown> {
  const record: Record<string, unknown> = {
    initializationType: f.initializationType,
    phase: 'init',
    functionName: f.functionName,
    functionVersion: f.functionVersion,
  };
  if (f.runtimeVersion) record.runtimeVersion = f.runtimeVersion;
  if (f.managedInstances) {
    record.instanceId = f.instanceId;
    record.instanceMaxMemory = f.memoryMb;
  }
  return record;
}

export function initRuntimeDone(f: TelemetryFacts, status: TelemetryStatus, errorType?: string): Record<string, unknown> {
  return { initializationType: f.initializationType, phase: 'init', status, ...(errorType ? { errorType } : {}) };
}

export function initReport(f: TelemetryFacts, status: TelemetryStatus, durationMs: number, errorType?: string): Record<string, unknown> {
  return {
    initializationType: f.initializationType,
    phase: 'init',
    status,
    ...(errorType ? { errorType } : {}),
    metrics: { durationMs: ms(durationMs) },
  };
}

export function start(f: TelemetryFacts, requestId: string, traceId: string): Record<string, unknown> {
  const record: Record<string, unknown> = { requestId, version: f.functionVersion };
  if (f.managedInstances) record.functionArn = f.functionArn;
  record.tracing = tracing(traceId);
  return record;
}

export interface RuntimeDoneFacts {
  requestId: string;
  status: TelemetryStatus;
  errorType?: string;
  durationMs: number;
  producedBytes?: number;
  spans: Span[];
  traceId: string;
}

export function runtimeDone(d: RuntimeDoneFacts): Record<string, unknown> {
  return {
    requestId: d.requestId,
    status: d.status,
    ...(d.errorType ? { errorType: d.errorType } : {}),
    metrics: { durationMs: ms(d.durationMs), ...(d.producedBytes !== undefined ? { producedBytes: d.producedBytes } : {}) },
    ...(d.spans.length > 0 ? { spans: d.spans } : {}),
    tracing: tracing(d.traceId),
  };
}

export interface ReportFacts {
  requestId: string;
  status: TelemetryStatus;
  errorType?: string;
  durationMs: number;
  billedDurationMs: number;
  maxMemoryUsedMb: number;
  initDurationMs?: number;
  spans: Span[];
  traceId: string;
}

export function report(f: TelemetryFacts, r: ReportFacts): Record<string, unknown> {
  const metrics: Record<string, number> = f.managedInstances
    ? { durationMs: ms(r.durationMs) }
    : {
        durationMs: ms(r.durationMs),
        billedDurationMs: r.billedDurationMs,
        memorySizeMB: f.memoryMb,
        maxMemoryUsedMB: r.maxMemoryUsedMb,
        ...(r.initDurationMs !== undefined ? { initDurationMs: ms(r.initDurationMs) } : {}),
      };
  return {
    requestId: r.requestId,
    status: r.status,
    ...(r.errorType ? { errorType: r.errorType } : {}),
    metrics,
    ...(r.spans.length > 0 ? { spans: r.spans } : {}),
    tracing: tracing(r.traceId),
  };
}

export function extension(name: string, state: string, events: string[], errorType?: string): Record<string, unknown> {
  return { name, state, events, ...(errorType ? { errorType } : {}) };
}
