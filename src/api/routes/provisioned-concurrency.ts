/** Provisioned concurrency: Put/Get/Delete/ListProvisionedConcurrencyConfigs. */
import type { ProvisionedConcurrency, ProvisionedConcurrencyView } from '../../invoker/provisioned-concurrency.ts';
import type { FunctionService } from '../../functions/function-service.ts';
import type { Route } from '../http.ts';
import { functionRef, maxConfigRequestBytes, maxItemsOf, type FunctionRoutesDeps } from './functions.ts';

export interface ProvisionedRoutesDeps extends FunctionRoutesDeps {
  provisioned: ProvisionedConcurrency;
}

function shape(functions: FunctionService, v: ProvisionedConcurrencyView, withArn: boolean): Record<string, unknown> {
  return {
    ...(withArn ? { FunctionArn: functions.arn(v.functionName, v.qualifier) } : {}),
    RequestedProvisionedConcurrentExecutions: v.requested,
    AvailableProvisionedConcurrentExecutions: v.allocated,
    AllocatedProvisionedConcurrentExecutions: v.allocated,
    Status: v.status,
    ...(v.statusReason ? { StatusReason: v.statusReason } : {}),
    LastModified: v.lastModified,
  };
}

export function provisionedConcurrencyRoutes(deps: ProvisionedRoutesDeps): Route[] {
  const { functions, provisioned } = deps;
  const path = '/2019-09-30/functions/:FunctionName/provisioned-concurrency';
  return [
    {
      method: 'PUT',
      path,
      operation: 'PutProvisionedConcurrencyConfig',
      handler: async (ctx) => {
        const ref = functionRef(ctx, deps);
        await functions.get({ functionName: ref.functionName });
        const body = await ctx.json(maxConfigRequestBytes);
        return { status: 202, body: shape(functions, await provisioned.put(ref.functionName, ref.qualifier, body.ProvisionedConcurrentExecutions), false) };
      },
    },
    {
      method: 'GET',
      path,
      operation: 'GetProvisionedConcurrencyConfig',
      handler: async (ctx) => {
        const ref = functionRef(ctx, deps);
        await functions.get({ functionName: ref.functionName });
        if (ctx.query.get('List') === 'ALL') {
          const page = await provisioned.list(ref.functionName, { marker: ctx.query.get('Marker') ?? undefined, maxItems: maxItemsOf(ctx) });
          return { status: 200, body: { ProvisionedConcurrencyConfigs: page.items.map((v) => shape(functions, v, true)), ...(page.nextMarker ? { NextMarker: page.nextMarker } : {}) } };
        }
        return { status: 200, body: shape(functions, await provisioned.get(ref.functionName, ref.qualifier), false) };
      },
    },
    {
      method: 'DELETE',
      path,
      operation: 'DeleteProvisionedConcurrencyConfig',
      handler: async (ctx) => {
        const ref = functionRef(ctx, deps);
        await functions.get({ functionName: ref.functionName });
        await provisioned.delete(ref.functionName, ref.qualifier);
        return { status: 204 };
      },
    },
  ];
}
