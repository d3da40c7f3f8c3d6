/** GetAccountSettings: the account's limits and usage. */
import type { Store } from '../../store/types.ts';
import type { Route } from '../http.ts';

export interface AccountRoutesDeps {
  store: Store;
  accountConcurrencyLimit: number;
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
              ConcurrentExecutions: deps.accountConcurrencyLimit,
              UnreservedConcurrentExecutions: deps.accountConcurrencyLimit,
            },
            AccountUsage: { TotalCodeSize: usage.totalCodeSizeBytes, FunctionCount: usage.functionCount },
          },
        };
      },
    },
  ];
}
