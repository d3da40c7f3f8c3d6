/**
 * Function CRUD: CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions,
 * UpdateFunctionCode, UpdateFunctionConfiguration, DeleteFunction.
 */
import { InvalidParameterValueException, validationError } from '../../errors/platform-errors.ts';
import type { FunctionService } from '../../functions/function-service.ts';
import type { FunctionRecord } from '../../functions/types.ts';
import { parseFunctionRef, type FunctionRef } from '../../functions/arn.ts';
import type { RequestContext, Route } from '../http.ts';
import { functionConfiguration } from '../function-shape.ts';

/** Base64 of a 50 MB zip plus the JSON around it: Lambda's CreateFunction request limit. */
export const maxCodeRequestBytes = 69_905_067;
/** Configuration-only requests are small; this is generous. */
export const maxConfigRequestBytes = 1024 * 1024;

export interface FunctionRoutesDeps {
  functions: FunctionService;
  region: string;
  accountId: string;
  /** Public base URL of this server, for Code.Location. */
  baseUrl: () => string;
  /** Reserved concurrency of a function, for GetFunction's Concurrency. */
  reservedFor?: (functionName: string) => number | undefined;
}

/** The function a request names, from the path (name or ARN, maybe qualified) and `?Qualifier`. */
export function functionRef(ctx: RequestContext, deps: Pick<FunctionRoutesDeps, 'region' | 'accountId'>): FunctionRef {
  const ref = parseFunctionRef(decodeURIComponent(ctx.params.FunctionName ?? ''), deps);
  const qualifier = ctx.query.get('Qualifier') ?? undefined;
  if (qualifier !== undefined && ref.qualifier !== undefined && qualifier !== ref.qualifier) {
    throw new InvalidParameterValueException('The derived qualifier from the function name does not match the specified qualifier.');
  }
  if (qualifier !== undefined && !/^(\$LATEST|[a-zA-Z0-9-_]{1,128})$/.test(qualifier)) {
    throw validationError(qualifier, 'qualifier', 'Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)');
  }
  return { functionName: ref.functionName, qualifier: qualifier ?? ref.qualifier };
}

/** `?MaxItems` of a List operation: 1 to 10,000, default 50. */
export function maxItemsOf(ctx: RequestContext, fallback = 50): number {
  const raw = ctx.query.get('MaxItems');
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw validationError(raw, 'maxItems', 'Member must have value between 1 and 10000');
  return n;
}

/** A version's ARN is qualified with its number; `$LATEST`'s is not. */
export function configurationOf(functions: FunctionService, record: FunctionRecord): Record<string, unknown> {
  return functionConfiguration(record, functions.arn(record.functionName, record.version === '$LATEST' ? undefined : record.version));
}

export function functionRoutes(deps: FunctionRoutesDeps): Route[] {
  const { functions } = deps;
  const shape = (record: FunctionRecord) => configurationOf(functions, record);
  return [
    {
      method: 'POST',
      path: '/2015-03-31/functions',
      operation: 'CreateFunction',
      handler: async (ctx) => ({ status: 201, body: shape(await functions.create(await ctx.json(maxCodeRequestBytes))) }),
    },
    {
      method: 'GET',
      path: '/2015-03-31/functions',
      operation: 'ListFunctions',
      handler: async (ctx) => {
        const page = await functions.list(ctx.query.get('Marker') ?? undefined, maxItemsOf(ctx));
        return { status: 200, body: { Functions: page.items.map(shape), ...(page.nextMarker ? { NextMarker: page.nextMarker } : {}) } };
      },
    },
    {
      method: 'GET',
      path: '/2015-03-31/functions/:FunctionName',
      operation: 'GetFunction',
      handler: async (ctx) => {
        const record = await functions.get(functionRef(ctx, deps));
        const hex = Buffer.from(record.codeSha256, 'base64').toString('hex');
        return {
          status: 200,
          body: {
            Configuration: shape(record),
            Code: { RepositoryType: 'S3', Location: `${deps.baseUrl()}/nimbus/v1/code/${hex}.zip` },
            ...(Object.keys(record.tags).length > 0 ? { Tags: record.tags } : {}),
            ...(deps.reservedFor?.(record.functionName) !== undefined ? { Concurrency: { ReservedConcurrentExecutions: deps.reservedFor(record.functionName) } } : {}),
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/2015-03-31/functions/:FunctionName/configuration',
      operation: 'GetFunctionConfiguration',
      handler: async (ctx) => ({ status: 200, body: shape(await functions.get(functionRef(ctx, deps))) }),
    },
    {
      method: 'PUT',
      path: '/2015-03-31/functions/:FunctionName/code',
      operation: 'UpdateFunctionCode',
      handler: async (ctx) => {
        const ref = functionRef(ctx, deps);
        const body = await ctx.json(maxCodeRequestBytes);
        return { status: 200, body: shape(await functions.updateCode(ref, body)) };
      },
    },
    {
      method: 'PUT',
      path: '/2015-03-31/functions/:FunctionName/configuration',
      operation: 'UpdateFunctionConfiguration',
      handler: async (ctx) => {
        const ref = functionRef(ctx, deps);
        const body = await ctx.json(maxConfigRequestBytes);
        return { status: 200, body: shape(await functions.updateConfiguration(ref, body)) };
      },
    },
    {
      method: 'DELETE',
      path: '/2015-03-31/functions/:FunctionName',
      operation: 'DeleteFunction',
      handler: async (ctx) => {
        await functions.delete(functionRef(ctx, deps));
        return { status: 204 };
      },
    },
  ];
}
