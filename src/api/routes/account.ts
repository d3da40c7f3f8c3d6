/** GetAccountSettings: the account's limits and usage. */
import type { Store } from '../../store/types.ts';
import type { ReservedConcurrency } from '../../functions/concurrency.ts';
import type { Route } from '../http.ts';

export interface AccountRoutesDeps {
  store: Store;
  reserved: ReservedConcurrency;
}

export function accountRoutes(deps: AccountRoutesDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/2016-08-19/account-settings',
      operation: 'GetAccountSettings',
      handler: async () => {
        const usage = await deps.store.usage();
        return {
          status: 200,
          body: {
            AccountLimit: {
              TotalCodeSize: 80_530_636_800,
              CodeSizeUnzipped: 262_144_000,
              CodeSizeZipped: 52_428_800,
              ConcurrentExecutions: deps.reserved.accountLimit,
              UnreservedConcurrentExecutions: deps.reserved.unreserved,
            },
            AccountUsage: { TotalCodeSize: usage.totalCodeSizeBytes, FunctionCount: usage.functionCount },
          },
        };
      },
    },
  ];
}
