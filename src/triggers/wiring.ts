/**
 * Builds the HTTP front doors from what the server already has (the store, the function
 * domain, the invocation plane), for src/server.ts to hand to the ApiServer: the hook
 * that routes requests to the doors, the services behind them, and their control routes.
 */
import type { Route } from '../api/http.ts';
import type { Clock } from '../clock/clock.ts';
import type { Logger } from '../logging/logger.ts';
import type { ResourceStore } from '../store/types.ts';
import type { FrontDoorInvoker } from './types.ts';
import type { FunctionLookup } from './function-urls/types.ts';
import { UrlConfigService } from './function-urls/url-config-service.ts';
import { FunctionUrlDoor } from './function-urls/url-door.ts';
import { SigV4Verifier } from './function-urls/sigv4.ts';
import { ApiService } from './api-gateway/api-service.ts';
import { ApiGatewayDoor } from './api-gateway/api-door.ts';
import { AlbService } from './alb/alb-service.ts';
import { AlbDoor } from './alb/alb-door.ts';
import { FrontDoors } from './front-doors.ts';
import { triggerRoutes } from './control-routes.ts';

export interface FrontDoorDeps {
  store: ResourceStore;
  clock: Clock;
  functions: FunctionLookup;
  invoker: FrontDoorInvoker;
  region: string;
  accountId: string;
  accessKeys: Readonly<Record<string, string>>;
  logger: Logger;
  /** `http://127.0.0.1:9000`, once listening. */
  baseUrl: () => string;
}

export interface FrontDoorWiring {
  hook: FrontDoors['hook'];
  urls: UrlConfigService;
  apis: ApiService;
  albs: AlbService;
  /** `http://<url-id>.lambda-url.<region>.localhost:<port>/` */
  functionUrl: (urlId: string) => string;
  routes: Route[];
}

export function createFrontDoors(deps: FrontDoorDeps): FrontDoorWiring {
  const { store, clock, functions, invoker, region, accountId, logger } = deps;
  const checkFunction = (ref: { functionName: string; qualifier?: string }) => functions.get(ref);
  const urls = new UrlConfigService({ store, functions, clock });
  const apis = new ApiService({ store, clock, checkFunction });
  const albs = new AlbService({ store, clock, region, accountId, checkFunction });
  const doors = new FrontDoors({
    region,
    logger,
    urls: new FunctionUrlDoor({ urls, invoker, verifier: new SigV4Verifier({ accessKeys: deps.accessKeys, region }), region, accountId, logger }),
    apis: new ApiGatewayDoor({ apis, invoker, region, accountId, logger }),
    albs: new AlbDoor({ targets: albs, invoker, logger }),
  });
  return {
    hook: doors.hook,
    urls,
    apis,
    albs,
    functionUrl: (urlId) => `http://${urlId}.lambda-url.${region}.localhost:${new URL(deps.baseUrl()).port}/`,
    routes: triggerRoutes({ apis, albs, region, baseUrl: deps.baseUrl, arn: (name, qualifier) => functions.arn(name, qualifier) }),
  };
}
