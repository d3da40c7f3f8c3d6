/**
 * Nimbus's own routes for the front doors it emulates beyond Lambda's API (which has no
 * notion of API Gateway or load balancers):
 *
 *   PUT|GET|DELETE /nimbus/v1/apis/<api-id>, GET /nimbus/v1/apis
 *   PUT|GET|DELETE /nimbus/v1/alb-targets/<name>, GET /nimbus/v1/alb-targets
 *
 * Each answer carries the endpoints the API or target is served on.
 */
import type { Route } from '../api/http.ts';
import type { ApiService } from './api-gateway/api-service.ts';
import type { ApiRecord } from './api-gateway/types.ts';
import type { AlbService, AlbTargetRecord } from './alb/alb-service.ts';

const maxBodyBytes = 1024 * 1024;

export interface TriggerRoutesDeps {
  apis: ApiService;
  albs: AlbService;
  region: string;
  /** `http://127.0.0.1:9000`, once listening. */
  baseUrl: () => string;
  arn: (functionName: string, qualifier?: string) => string;
}

/** The server's port, for host-based endpoints. */
function portOf(baseUrl: string): string {
  return new URL(baseUrl).port;
}

export function apiShape(r: ApiRecord, deps: Pick<TriggerRoutesDeps, 'region' | 'baseUrl'>): Record<string, unknown> {
  const stagePath = r.stageName === '$default' ? '/' : `/${r.stageName}/`;
  const base = deps.baseUrl();
  return {
    ApiId: r.apiId,
    Name: r.name,
    ProtocolType: r.protocol,
    StageName: r.stageName,
    StageVariables: r.stageVariables,
    BinaryMediaTypes: r.binaryMediaTypes,
    Routes: r.routes.map((route) => ({
      RouteKey: route.routeKey,
      FunctionName: route.functionName,
      ...(route.qualifier !== undefined ? { Qualifier: route.qualifier } : {}),
      PayloadFormatVersion: route.payloadFormatVersion,
    })),
    Endpoint: `http://${r.apiId}.execute-api.${deps.region}.localhost:${portOf(base)}${stagePath}`,
    PathEndpoint: `${base}/nimbus/apis/${r.apiId}${stagePath}`,
    CreatedTime: r.createdTime,
    LastUpdatedTime: r.lastUpdatedTime,
  };
}

function albShape(r: AlbTargetRecord, deps: TriggerRoutesDeps): Record<string, unknown> {
  const base = deps.baseUrl();
  return {
    Name: r.name,
    FunctionArn: deps.arn(r.functionName, r.qualifier),
    MultiValueHeaders: r.multiValueHeaders,
    TargetGroupArn: r.targetGroupArn,
    Endpoint: `http://${r.name}.elb.${deps.region}.localhost:${portOf(base)}/`,
    PathEndpoint: `${base}/nimbus/albs/${r.name}/`,
    CreatedTime: r.createdTime,
  };
}

export function triggerRoutes(deps: TriggerRoutesDeps): Route[] {
  const { apis, albs } = deps;
  return [
    { method: 'GET', path: '/nimbus/v1/apis', operation: 'ListApis', handler: async () => ({ status: 200, body: { Items: (await apis.list()).map((a) => apiShape(a, deps)) } }) },
    {
      method: 'PUT',
      path: '/nimbus/v1/apis/:ApiId',
      operation: 'PutApi',
      handler: async (ctx) => ({ status: 200, body: apiShape(await apis.put(ctx.params.ApiId ?? '', await ctx.json(maxBodyBytes)), deps) }),
    },
    { method: 'GET', path: '/nimbus/v1/apis/:ApiId', operation: 'GetApi', handler: async (ctx) => ({ status: 200, body: apiShape(await apis.get(ctx.params.ApiId ?? ''), deps) }) },
    {
      method: 'DELETE',
      path: '/nimbus/v1/apis/:ApiId',
      operation: 'DeleteApi',
      handler: async (ctx) => {
        await apis.delete(ctx.params.ApiId ?? '');
        return { status: 204 };
      },
    },
    { method: 'GET', path: '/nimbus/v1/alb-targets', operation: 'ListAlbTargets', handler: async () => ({ status: 200, body: { Items: (await albs.list()).map((t) => albShape(t, deps)) } }) },
    {
      method: 'PUT',
      path: '/nimbus/v1/alb-targets/:Name',
      operation: 'PutAlbTarget',
      handler: async (ctx) => ({ status: 200, body: albShape(await albs.put(ctx.params.Name ?? '', await ctx.json(maxBodyBytes)), deps) }),
    },
    { method: 'GET', path: '/nimbus/v1/alb-targets/:Name', operation: 'GetAlbTarget', handler: async (ctx) => ({ status: 200, body: albShape(await albs.get(ctx.params.Name ?? ''), deps) }) },
    {
      method: 'DELETE',
      path: '/nimbus/v1/alb-targets/:Name',
      operation: 'DeleteAlbTarget',
      handler: async (ctx) => {
        await albs.delete(ctx.params.Name ?? '');
        return { status: 204 };
      },
    },
  ];
}
