/**
 * Nimbus's own routes under /nimbus/v1 (not part of Lambda's API): function logs for
 * `nimbus logs`, code downloads behind GetFunction's Code.Location, and health.
 */
import { InvalidParameterValueException } from '../../errors/platform-errors.ts';
import type { ArtifactStore } from '../../artifacts/types.ts';
import type { FunctionService } from '../../functions/function-service.ts';
import type { Store } from '../../store/types.ts';
import type { Route } from '../http.ts';
import { functionRef, type FunctionRoutesDeps } from './functions.ts';

export interface NimbusRoutesDeps extends FunctionRoutesDeps {
  functions: FunctionService;
  store: Store;
  artifacts: ArtifactStore;
  /** Makes buffered log lines visible to queries. */
  flushLogs: () => Promise<void>;
  info: () => Record<string, unknown>;
}

function optionalInt(value: string | null, name: string): number | undefined {
  if (value === null) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidParameterValueException(`${name} must be a non-negative integer.`);
  return n;
}

export function nimbusRoutes(deps: NimbusRoutesDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/nimbus/v1/health',
      operation: 'Health',
      handler: () => ({ status: 200, body: { status: 'ok', ...deps.info() } }),
    },
    {
      method: 'GET',
      path: '/nimbus/v1/functions/:FunctionName/logs',
      operation: 'GetLogs',
      handler: async (ctx) => {
        const { functionName } = functionRef(ctx, deps);
        await deps.functions.get({ functionName });
        await deps.flushLogs();
        const records = await deps.store.queryLogs({
          functionName,
          afterSeq: optionalInt(ctx.query.get('afterSeq'), 'afterSeq'),
          sinceMs: optionalInt(ctx.query.get('sinceMs'), 'sinceMs'),
          limit: optionalInt(ctx.query.get('limit'), 'limit') ?? 1000,
        });
        return { status: 200, body: { records } };
      },
    },
    {
      method: 'GET',
      path: '/nimbus/v1/code/:file',
      operation: 'GetCode',
      handler: async (ctx) => {
        const hex = /^([0-9a-f]{64})\.zip$/.exec(ctx.params.file ?? '')?.[1];
        if (!hex) throw new InvalidParameterValueException('Unknown code file.');
        return { status: 200, headers: { 'Content-Type': 'application/zip' }, body: await deps.artifacts.readZip(hex) };
      },
    },
  ];
}
