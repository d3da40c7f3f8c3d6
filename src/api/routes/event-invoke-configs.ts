/**
 * Asynchronous invocation settings: Put/Update/Get/Delete/ListFunctionEventInvokeConfigs
 * (/2019-09-25/functions/{FunctionName}/event-invoke-config).
 */
import type { EventInvokeConfig, EventInvokeConfigs } from '../../invoker/async/event-invoke-configs.ts';
import type { FunctionService } from '../../functions/function-service.ts';
import type { RequestContext, Route } from '../http.ts';
import { functionRef, maxConfigRequestBytes, maxItemsOf, type FunctionRoutesDeps } from './functions.ts';

export interface EventInvokeConfigRoutesDeps extends FunctionRoutesDeps {
  configs: EventInvokeConfigs;
}

export function eventInvokeConfigShape(functions: FunctionService, c: EventInvokeConfig): Record<string, unknown> {
  const destinations: Record<string, unknown> = {};
  if (c.onSuccess) destinations.OnSuccess = { Destination: c.onSuccess };
  if (c.onFailure) destinations.OnFailure = { Destination: c.onFailure };
  return {
    LastModified: c.lastModified,
    FunctionArn: functions.arn(c.functionName, c.qualifier),
    ...(c.maximumRetryAttempts !== undefined ? { MaximumRetryAttempts: c.maximumRetryAttempts } : {}),
    ...(c.maximumEventAgeInSeconds !== undefined ? { MaximumEventAgeInSeconds: c.maximumEventAgeInSeconds } : {}),
    DestinationConfig: { OnSuccess: destinations.OnSuccess ?? {}, OnFailure: destinations.OnFailure ?? {} },
  };
}

export function eventInvokeConfigRoutes(deps: EventInvokeConfigRoutesDeps): Route[] {
  const { functions, configs } = deps;
  /** The function must exist, and so must the version or alias named. */
  const target = async (ctx: RequestContext) => {
    const ref = functionRef(ctx, deps);
    await functions.get(ref);
    const qualifier = ref.qualifier ?? '$LATEST';
    return { functionName: ref.functionName, qualifier, arn: functions.arn(ref.functionName, qualifier) };
  };
  const write = (mode: 'put' | 'update') => async (ctx: RequestContext) => {
    const t = await target(ctx);
    const body = await ctx.json(maxConfigRequestBytes);
    return { status: 200, body: eventInvokeConfigShape(functions, await configs.put(t.functionName, t.qualifier, body, mode, t.arn)) };
  };
  return [
    { method: 'PUT', path: '/2019-09-25/functions/:FunctionName/event-invoke-config', operation: 'PutFunctionEventInvokeConfig', handler: write('put') },
    { method: 'POST', path: '/2019-09-25/functions/:FunctionName/event-invoke-config', operation: 'UpdateFunctionEventInvokeConfig', handler: write('update') },
    {
      method: 'GET',
      path: '/2019-09-25/functions/:FunctionName/event-invoke-config',
      operation: 'GetFunctionEventInvokeConfig',
      handler: async (ctx) => {
        const t = await target(ctx);
        return { status: 200, body: eventInvokeConfigShape(functions, await configs.require(t.functionName, t.qualifier, t.arn)) };
      },
    },
    {
      method: 'DELETE',
      path: '/2019-09-25/functions/:FunctionName/event-invoke-config',
      operation: 'DeleteFunctionEventInvokeConfig',
      handler: async (ctx) => {
        const t = await target(ctx);
        await configs.delete(t.functionName, t.qualifier, t.arn);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      path: '/2019-09-25/functions/:FunctionName/event-invoke-config/list',
      operation: 'ListFunctionEventInvokeConfigs',
      handler: async (ctx) => {
        const ref = functionRef(ctx, deps);
        await functions.get({ functionName: ref.functionName });
        const page = await configs.list(ref.functionName, { marker: ctx.query.get('Marker') ?? undefined, maxItems: maxItemsOf(ctx) });
        return {
          status: 200,
          body: { FunctionEventInvokeConfigs: page.items.map((c) => eventInvokeConfigShape(functions, c)), ...(page.nextMarker ? { NextMarker: page.nextMarker } : {}) },
        };
      },
    },
  ];
}
