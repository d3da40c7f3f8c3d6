/** Reserved concurrency: PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency. */
import type { ReservedConcurrency } from '../../functions/concurrency.ts';
import type { Route } from '../http.ts';
import { functionRef, maxConfigRequestBytes, type FunctionRoutesDeps } from './functions.ts';

export interface ConcurrencyRoutesDeps extends FunctionRoutesDeps {
  reserved: ReservedConcurrency;
}

export function concurrencyRoutes(deps: ConcurrencyRoutesDeps): Route[] {
  const { functions, reserved } = deps;
  const unqualified = async (ctx: Parameters<typeof functionRef>[0]) => {
    const ref = functionRef(ctx, deps);
    await functions.get({ functionName: ref.functionName });
    return ref.functionName;
  };
  return [
    {
      method: 'PUT',
      path: '/2017-10-31/functions/:FunctionName/concurrency',
      operation: 'PutFunctionConcurrency',
      handler: async (ctx) => {
        const name = await unqualified(ctx);
        const body = await ctx.json(maxConfigRequestBytes);
        return { status: 200, body: { ReservedConcurrentExecutions: await reserved.put(name, body.ReservedConcurrentExecutions) } };
      },
    },
    {
      method: 'GET',
      path: '/2019-09-30/functions/:FunctionName/concurrency',
      operation: 'GetFunctionConcurrency',
      handler: async (ctx) => {
        const value = reserved.reservedFor(await unqualified(ctx));
        return { status: 200, body: value === undefined ? {} : { ReservedConcurrentExecutions: value } };
      },
    },
    {
      method: 'DELETE',
      path: '/2017-10-31/functions/:FunctionName/concurrency',
      operation: 'DeleteFunctionConcurrency',
      handler: async (ctx) => {
        await reserved.delete(await unqualified(ctx));
        return { status: 204 };
      },
    },
  ];
}
