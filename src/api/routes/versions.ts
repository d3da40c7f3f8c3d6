/**
 * Versions and aliases: PublishVersion, ListVersionsByFunction, CreateAlias, GetAlias,
 * UpdateAlias, DeleteAlias, ListAliases.
 */
import type { FunctionService } from '../../functions/function-service.ts';
import type { AliasRecord } from '../../functions/aliases.ts';
import type { RequestContext, Route } from '../http.ts';
import { configurationOf, functionRef, maxConfigRequestBytes, maxItemsOf, type FunctionRoutesDeps } from './functions.ts';

export function aliasShape(functions: FunctionService, alias: AliasRecord): Record<string, unknown> {
  const hasRouting = Object.keys(alias.additionalVersionWeights).length > 0;
  return {
    AliasArn: functions.arn(alias.functionName, alias.name),
    Name: alias.name,
    FunctionVersion: alias.functionVersion,
    Description: alias.description,
    ...(hasRouting ? { RoutingConfig: { AdditionalVersionWeights: alias.additionalVersionWeights } } : {}),
    RevisionId: alias.revisionId,
  };
}

export function versionRoutes(deps: FunctionRoutesDeps): Route[] {
  const { functions } = deps;
  /** The function (which must exist) and the alias a request names, with the alias's ARN. */
  const aliasTarget = async (ctx: RequestContext) => {
    const { functionName } = functionRef(ctx, deps);
    await functions.get({ functionName });
    const name = decodeURIComponent(ctx.params.Name ?? '');
    return { functionName, name, arn: functions.arn(functionName, name) };
  };
  return [
    {
      method: 'POST',
      path: '/2015-03-31/functions/:FunctionName/versions',
      operation: 'PublishVersion',
      handler: async (ctx) => {
        const ref = functionRef(ctx, deps);
        const body = await ctx.json(maxConfigRequestBytes);
        return { status: 201, body: configurationOf(functions, await functions.publishVersion(ref, body)) };
      },
    },
    {
      method: 'GET',
      path: '/2015-03-31/functions/:FunctionName/versions',
      operation: 'ListVersionsByFunction',
      handler: async (ctx) => {
        const ref = functionRef(ctx, deps);
        const latest = await functions.get({ functionName: ref.functionName });
        const maxItems = maxItemsOf(ctx);
        const marker = ctx.query.get('Marker') ?? undefined;
        // $LATEST comes first, on the first page only.
        const page = await functions.versions.list(ref.functionName, { marker, maxItems: marker ? maxItems : Math.max(1, maxItems - 1) });
        const items = marker ? page.items : [latest, ...page.items];
        return { status: 200, body: { Versions: items.map((r) => configurationOf(functions, r)), ...(page.nextMarker ? { NextMarker: page.nextMarker } : {}) } };
      },
    },
    {
      method: 'POST',
      path: '/2015-03-31/functions/:FunctionName/aliases',
      operation: 'CreateAlias',
      handler: async (ctx) => {
        const ref = functionRef(ctx, deps);
        await functions.get({ functionName: ref.functionName });
        const body = await ctx.json(maxConfigRequestBytes);
        const alias = await functions.aliases.create(ref.functionName, body, (name) => functions.arn(ref.functionName, name));
        return { status: 201, body: aliasShape(functions, alias) };
      },
    },
    {
      method: 'GET',
      path: '/2015-03-31/functions/:FunctionName/aliases',
      operation: 'ListAliases',
      handler: async (ctx) => {
        const ref = functionRef(ctx, deps);
        await functions.get({ functionName: ref.functionName });
        const page = await functions.aliases.list(ref.functionName, {
          marker: ctx.query.get('Marker') ?? undefined,
          maxItems: maxItemsOf(ctx),
          functionVersion: ctx.query.get('FunctionVersion') ?? undefined,
        });
        return { status: 200, body: { Aliases: page.items.map((a) => aliasShape(functions, a)), ...(page.nextMarker ? { NextMarker: page.nextMarker } : {}) } };
      },
    },
    {
      method: 'GET',
      path: '/2015-03-31/functions/:FunctionName/aliases/:Name',
      operation: 'GetAlias',
      handler: async (ctx) => {
        const t = await aliasTarget(ctx);
        return { status: 200, body: aliasShape(functions, await functions.aliases.require(t.functionName, t.name, t.arn)) };
      },
    },
    {
      method: 'PUT',
      path: '/2015-03-31/functions/:FunctionName/aliases/:Name',
      operation: 'UpdateAlias',
      handler: async (ctx) => {
        const t = await aliasTarget(ctx);
        const body = await ctx.json(maxConfigRequestBytes);
        return { status: 200, body: aliasShape(functions, await functions.aliases.update(t.functionName, t.name, body, t.arn)) };
      },
    },
    {
      method: 'DELETE',
      path: '/2015-03-31/functions/:FunctionName/aliases/:Name',
      operation: 'DeleteAlias',
      handler: async (ctx) => {
        const t = await aliasTarget(ctx);
        await functions.aliases.delete(t.functionName, t.name);
        return { status: 204 };
      },
    },
  ];
}
