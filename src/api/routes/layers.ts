/**
 * Layers: PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn, ListLayers,
 * ListLayerVersions, DeleteLayerVersion (API version 2018-10-31), and the wire shapes
 * (PascalCase, fields and nesting of Lambda's model) made here from the internal records.
 */
import { validationError } from '../../errors/platform-errors.ts';
import type { LayerService } from '../../layers/layer-service.ts';
import { parseLayerName, parseLayerVersionArn, parseVersionNumber } from '../../layers/layer-arn.ts';
import { checkListFilters } from '../../layers/publish-input.ts';
import type { LayerVersionRecord } from '../../layers/types.ts';
import type { RequestContext, Route } from '../http.ts';
import { maxCodeRequestBytes } from './functions.ts';

export interface LayerRoutesDeps {
  layers: LayerService;
  /** Public base URL of this server, for Content.Location. */
  baseUrl: () => string;
}

/** MaxLayerListItems: 1 to 50; Lambda's default page is 50. */
const maxListItems = 50;

export function layerRoutes(deps: LayerRoutesDeps): Route[] {
  const { layers } = deps;

  /** LayerVersionsListItem (ListLayers' LatestMatchingVersion, ListLayerVersions' items). */
  const listItem = (r: LayerVersionRecord): Record<string, unknown> => ({
    LayerVersionArn: layers.versionArn(r),
    Version: r.version,
    Description: r.description,
    CreatedDate: r.createdDate,
    ...(r.compatibleRuntimes.length > 0 ? { CompatibleRuntimes: r.compatibleRuntimes } : {}),
    ...(r.licenseInfo !== undefined ? { LicenseInfo: r.licenseInfo } : {}),
    ...(r.compatibleArchitectures.length > 0 ? { CompatibleArchitectures: r.compatibleArchitectures } : {}),
  });

  /** GetLayerVersionResponse / PublishLayerVersionResponse. */
  const fullShape = (r: LayerVersionRecord): Record<string, unknown> => ({
    Content: {
      Location: `${deps.baseUrl()}/nimbus/v1/code/${r.codeSha256Hex}.zip`,
      CodeSha256: r.codeSha256,
      CodeSize: r.codeSizeBytes,
    },
    LayerArn: layers.layerArn(r.layerName),
    ...listItem(r),
  });

  return [
    {
      method: 'POST',
      path: '/2018-10-31/layers/:LayerName/versions',
      operation: 'PublishLayerVersion',
      handler: async (ctx) => {
        const ref = parseLayerName(pathParam(ctx, 'LayerName'));
        const body = await ctx.json(maxCodeRequestBytes);
        return { status: 201, body: fullShape(await layers.publish(ref, body)) };
      },
    },
    {
      method: 'GET',
      path: '/2018-10-31/layers/:LayerName/versions',
      operation: 'ListLayerVersions',
      handler: async (ctx) => {
        const ref = parseLayerName(pathParam(ctx, 'LayerName'));
        const filter = checkListFilters(ctx.query.get('CompatibleRuntime'), ctx.query.get('CompatibleArchitecture'));
        const page = await layers.listVersions(ref, filter, marker(ctx), maxItems(ctx));
        return { status: 200, body: { LayerVersions: page.items.map(listItem), ...(page.nextMarker ? { NextMarker: page.nextMarker } : {}) } };
      },
    },
    {
      method: 'GET',
      path: '/2018-10-31/layers/:LayerName/versions/:VersionNumber',
      operation: 'GetLayerVersion',
      handler: async (ctx) => {
        const ref = parseLayerName(pathParam(ctx, 'LayerName'));
        const version = parseVersionNumber(pathParam(ctx, 'VersionNumber'));
        return { status: 200, body: fullShape(await layers.get(ref, version)) };
      },
    },
    {
      method: 'DELETE',
      path: '/2018-10-31/layers/:LayerName/versions/:VersionNumber',
      operation: 'DeleteLayerVersion',
      handler: async (ctx) => {
        const ref = parseLayerName(pathParam(ctx, 'LayerName'));
        const version = parseVersionNumber(pathParam(ctx, 'VersionNumber'));
        await layers.delete(ref, version);
        return { status: 204 };
      },
    },
    {
      // One path, two operations: `?find=LayerVersion&Arn=` is GetLayerVersionByArn.
      method: 'GET',
      path: '/2018-10-31/layers',
      operation: 'ListLayers',
      handler: async (ctx) => {
        const find = ctx.query.get('find');
        if (find !== null) {
          if (find !== 'LayerVersion') throw validationError(find, 'find', 'Member must satisfy enum value set: [LayerVersion]');
          const arn = ctx.query.get('Arn');
          if (arn === null) throw validationError(null, 'arn', 'Member must not be null');
          return { status: 200, body: fullShape(await layers.getByArn(parseLayerVersionArn(arn))) };
        }
        const filter = checkListFilters(ctx.query.get('CompatibleRuntime'), ctx.query.get('CompatibleArchitecture'));
        const page = await layers.listLayers(filter, marker(ctx), maxItems(ctx));
        return {
          status: 200,
          body: {
            Layers: page.items.map((s) => ({
              LayerName: s.layerName,
              LayerArn: layers.layerArn(s.layerName),
              LatestMatchingVersion: listItem(s.latestMatchingVersion),
            })),
            ...(page.nextMarker ? { NextMarker: page.nextMarker } : {}),
          },
        };
      },
    },
  ];
}

/** A path parameter, percent-decoded (SDKs encode the `:` of layer ARNs). */
function pathParam(ctx: RequestContext, name: string): string {
  const raw = ctx.params[name] ?? '';
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // not valid percent-encoding: the pattern check refuses it with the model's message
  }
}

function marker(ctx: RequestContext): string | undefined {
  return ctx.query.get('Marker') ?? undefined;
}

function maxItems(ctx: RequestContext): number {
  const raw = ctx.query.get('MaxItems');
  if (raw === null) return maxListItems;
  const n = Number(raw);
  if (!/^-?\d+$/.test(raw)) throw validationError(raw, 'maxItems', 'Member must be a whole number');
  if (n < 1) throw validationError(raw, 'maxItems', 'Member must have value greater than or equal to 1');
  if (n > maxListItems) throw validationError(raw, 'maxItems', `Member must have value less than or equal to ${maxListItems}`);
  return n;
}
