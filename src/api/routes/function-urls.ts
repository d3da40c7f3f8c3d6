/**
 * Function URL configurations (API version 2021-10-31): CreateFunctionUrlConfig (201),
 * GetFunctionUrlConfig, UpdateFunctionUrlConfig (200), DeleteFunctionUrlConfig (204),
 * ListFunctionUrlConfigs (Marker/MaxItems). Serving the URLs is the front door's job
 * (src/triggers/function-urls/url-door.ts).
 */
import { validationError } from '../../errors/platform-errors.ts';
import { parseFunctionRef } from '../../functions/arn.ts';
import { mergeQualifier, type UrlConfigService } from '../../triggers/function-urls/url-config-service.ts';
import { corsWire } from '../../triggers/function-urls/validation.ts';
import type { UrlConfigRecord } from '../../triggers/function-urls/types.ts';
import type { RequestContext, Route } from '../http.ts';
import { maxConfigRequestBytes } from './functions.ts';

export interface FunctionUrlRoutesDeps {
  urls: UrlConfigService;
  region: string;
  accountId: string;
  /** `http://<url-id>.lambda-url.<region>.localhost:<port>/` */
  functionUrl: (urlId: string) => string;
  arn: (functionName: string, qualifier?: string) => string;
}

function urlRef(ctx: RequestContext, deps: FunctionUrlRoutesDeps) {
  const ref = parseFunctionRef(decodeURIComponent(ctx.params.FunctionName ?? ''), deps);
  return { functionName: ref.functionName, qualifier: mergeQualifier(ref.qualifier, ctx.query.get('Qualifier') ?? undefined) };
}

export function functionUrlRoutes(deps: FunctionUrlRoutesDeps): Route[] {
  const { urls } = deps;
  const shape = (r: UrlConfigRecord, withLastModified = true) => {
    const cors = corsWire(r.cors);
    return {
      FunctionUrl: deps.functionUrl(r.urlId),
      FunctionArn: deps.arn(r.functionName, r.qualifier),
      AuthType: r.authType,
      ...(cors ? { Cors: cors } : {}),
      CreationTime: r.creationTime,
      ...(withLastModified ? { LastModifiedTime: r.lastModifiedTime } : {}),
      InvokeMode: r.invokeMode,
    };
  };
  const path = '/2021-10-31/functions/:FunctionName/url';
  return [
    {
      method: 'POST',
      path,
      operation: 'CreateFunctionUrlConfig',
      handler: async (ctx) => ({ status: 201, body: shape(await urls.create(urlRef(ctx, deps), await ctx.json(maxConfigRequestBytes)), false) }),
    },
    {
      method: 'GET',
      path,
      operation: 'GetFunctionUrlConfig',
      handler: async (ctx) => ({ status: 200, body: shape(await urls.get(urlRef(ctx, deps))) }),
    },
    {
      method: 'PUT',
      path,
      operation: 'UpdateFunctionUrlConfig',
      handler: async (ctx) => {
        const ref = urlRef(ctx, deps);
        return { status: 200, body: shape(await urls.update(ref, await ctx.json(maxConfigRequestBytes))) };
      },
    },
    {
      method: 'DELETE',
      path,
      operation: 'DeleteFunctionUrlConfig',
      handler: async (ctx) => {
        await urls.delete(urlRef(ctx, deps));
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      path: '/2021-10-31/functions/:FunctionName/urls',
      operation: 'ListFunctionUrlConfigs',
      handler: async (ctx) => {
        const { functionName } = urlRef(ctx, deps);
        const rawMax = ctx.query.get('MaxItems');
        const maxItems = rawMax === null ? 50 : Number(rawMax);
        if (!Number.isInteger(maxItems) || maxItems < 1 || maxItems > 50) throw validationError(rawMax, 'maxItems', 'Member must have value between 1 and 50');
        const page = await urls.list(functionName, ctx.query.get('Marker') ?? undefined, maxItems);
        return {
          status: 200,
          body: { FunctionUrlConfigs: page.items.map((r) => shape(r)), ...(page.nextMarker ? { NextMarker: page.nextMarker } : {}) },
        };
      },
    },
  ];
}
