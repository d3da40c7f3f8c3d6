/**
 * Nimbus's telemetry routes: the intake the Nimbus agent POSTs its batches to, the JSON
 * query API (used by `nimbus metrics|traces|logs` and the dashboard), and the Prometheus
 * scrape at `/metrics`. Not part of Lambda's API; errors keep AWS's shape all the same.
 */
import { InvalidParameterValueException, ResourceNotFoundException } from '../../errors/platform-errors.ts';
import type { FunctionService } from '../../functions/function-service.ts';
import { parseFunctionRef } from '../../functions/arn.ts';
import { parseTelemetryBatch } from '../../telemetry/batch-validation.ts';
import { prometheusContentType } from '../../telemetry/prometheus.ts';
import type { TelemetryService } from '../../telemetry/telemetry-service.ts';
import type { RequestContext, Route } from '../http.ts';
import { functionRef } from './functions.ts';

/** An agent flush: generous for a busy function's minute, small enough to parse at once. */
export const maxTelemetryBatchBytes = 16 * 1024 * 1024;

export interface TelemetryRoutesDeps {
  functions: FunctionService;
  telemetry: TelemetryService;
  region: string;
  accountId: string;
}

export function telemetryRoutes(deps: TelemetryRoutesDeps): Route[] {
  const { telemetry } = deps;
  /** The function in the path, or ResourceNotFoundException as the other routes answer. */
  const existing = async (ctx: RequestContext): Promise<string> => {
    const { functionName } = functionRef(ctx, deps);
    await deps.functions.get({ functionName });
    return functionName;
  };
  return [
    {
      method: 'POST',
      path: '/nimbus/v1/telemetry',
      operation: 'PutTelemetry',
      handler: async (ctx) => {
        const batch = parseTelemetryBatch(await ctx.json(maxTelemetryBatchBytes));
        await deps.functions.get({ functionName: batch.resource.functionName });
        return { status: 202, body: { accepted: await telemetry.ingest(batch) } };
      },
    },
    {
      method: 'GET',
      path: '/nimbus/v1/functions/:FunctionName/metrics',
      operation: 'GetMetrics',
      handler: async (ctx) => {
        const functionName = await existing(ctx);
        const window = { sinceMs: timeParam(ctx, 'since'), untilMs: timeParam(ctx, 'until') };
        const name = ctx.query.get('name') ?? undefined;
        if (boolParam(ctx, 'summary')) {
          return { status: 200, body: { metrics: await telemetry.metricSummary(functionName, { ...window, name }) } };
        }
        const limit = limitParam(ctx, 1000, 10_000);
        return { status: 200, body: { points: await telemetry.metrics(functionName, { ...window, name, limit }) } };
      },
    },
    {
      method: 'GET',
      path: '/nimbus/v1/functions/:FunctionName/traces',
      operation: 'ListTraces',
      handler: async (ctx) => {
        const functionName = await existing(ctx);
        const traces = await telemetry.traces(functionName, { sinceMs: timeParam(ctx, 'since'), limit: limitParam(ctx, 50, 1000) });
        return { status: 200, body: { traces } };
      },
    },
    {
      method: 'GET',
      path: '/nimbus/v1/functions/:FunctionName/traces/:TraceId',
      operation: 'GetTrace',
      handler: async (ctx) => {
        const functionName = await existing(ctx);
        const traceId = ctx.params.TraceId ?? '';
        if (!/^[0-9a-f]{32}$/.test(traceId)) throw new InvalidParameterValueException('TraceId must be 32 lowercase hex digits.');
        const spans = await telemetry.trace(functionName, traceId);
        if (spans.length === 0) throw new ResourceNotFoundException(`Trace not found: ${traceId} of function ${functionName}`);
        return { status: 200, body: { traceId, spans } };
      },
    },
    {
      method: 'GET',
      path: '/nimbus/v1/functions/:FunctionName/telemetry-logs',
      operation: 'GetTelemetryLogs',
      handler: async (ctx) => {
        const functionName = await existing(ctx);
        const records = await telemetry.logs(functionName, {
          sinceMs: timeParam(ctx, 'since'),
          requestId: ctx.query.get('requestId') ?? undefined,
          afterSeq: intParam(ctx, 'afterSeq', 0, Number.MAX_SAFE_INTEGER),
          limit: limitParam(ctx, 1000, 10_000),
        });
        return { status: 200, body: { records } };
      },
    },
    {
      method: 'GET',
      path: '/nimbus/v1/security/events',
      operation: 'ListSecurityEvents',
      handler: async (ctx) => {
        const raw = ctx.query.get('function');
        let functionName: string | undefined;
        if (raw !== null) {
          functionName = parseFunctionRef(raw, deps).functionName;
          await deps.functions.get({ functionName });
        }
        const events = await telemetry.securityEvents({ functionName, sinceMs: timeParam(ctx, 'since'), limit: limitParam(ctx, 100, 10_000) });
        return { status: 200, body: { events } };
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      operation: 'PrometheusMetrics',
      handler: () => ({ status: 200, headers: { 'Content-Type': prometheusContentType }, body: telemetry.prometheus() }),
    },
  ];
}

/** Epoch milliseconds or an ISO-8601 date. */
function timeParam(ctx: RequestContext, name: string): number | undefined {
  const raw = ctx.query.get(name);
  if (raw === null) return undefined;
  const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isSafeInteger(ms)) throw new InvalidParameterValueException(`${name} must be epoch milliseconds or an ISO-8601 date, got ${raw}.`);
  return ms;
}

function intParam(ctx: RequestContext, name: string, min: number, max: number): number | undefined {
  const raw = ctx.query.get(name);
  if (raw === null) return undefined;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidParameterValueException(`${name} must be an integer from ${min} to ${max}, got ${raw}.`);
  return n;
}

function limitParam(ctx: RequestContext, fallback: number, max: number): number {
  return intParam(ctx, 'limit', 1, max) ?? fallback;
}

function boolParam(ctx: RequestContext, name: string): boolean {
  const raw = ctx.query.get(name);
  if (raw === null || raw === 'false' || raw === '0') return false;
  if (raw === 'true' || raw === '1' || raw === '') return true;
  throw new InvalidParameterValueException(`${name} must be true or false, got ${raw}.`);
}
