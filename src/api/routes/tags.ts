/** Tags on functions: TagResource, UntagResource, ListTags (/2017-03-31/tags/{ARN}). */
import { InvalidParameterValueException, validationError } from '../../errors/platform-errors.ts';
import { checkTags } from '../../functions/validation.ts';
import { parseFunctionRef } from '../../functions/arn.ts';
import type { RequestContext, Route } from '../http.ts';
import { maxConfigRequestBytes, type FunctionRoutesDeps } from './functions.ts';

/** Lambda: at most 50 tags, keys up to 128 characters, values up to 256, no `aws:` prefix. */
function checkTagLimits(tags: Record<string, string>): void {
  if (Object.keys(tags).length > 50) throw new InvalidParameterValueException('A function can have at most 50 tags.');
  for (const [k, v] of Object.entries(tags)) {
    if (k.length < 1 || k.length > 128) throw validationError(k, 'tags', 'Member must have key length between 1 and 128');
    if (v.length > 256) throw validationError(v, 'tags', 'Member must have value length less than or equal to 256');
    if (k.toLowerCase().startsWith('aws:')) throw new InvalidParameterValueException(`Tag keys starting with aws: are reserved: ${k}`);
  }
}

export function tagRoutes(deps: FunctionRoutesDeps): Route[] {
  const { functions } = deps;
  /** The resource is a function ARN (unqualified). */
  const resource = async (ctx: RequestContext) => {
    const arn = decodeURIComponent(ctx.params.ARN ?? '');
    if (!arn.startsWith('arn:')) throw new InvalidParameterValueException(`${arn} is not a valid resource ARN: pass a function ARN.`);
    const ref = parseFunctionRef(arn, deps);
    if (ref.qualifier !== undefined) throw new InvalidParameterValueException('Tags apply to the function: pass its unqualified ARN.');
    await functions.get({ functionName: ref.functionName });
    return ref.functionName;
  };
  return [
    {
      method: 'GET',
      path: '/2017-03-31/tags/:ARN',
      operation: 'ListTags',
      handler: async (ctx) => ({ status: 200, body: { Tags: (await functions.get({ functionName: await resource(ctx) })).tags } }),
    },
    {
      method: 'POST',
      path: '/2017-03-31/tags/:ARN',
      operation: 'TagResource',
      handler: async (ctx) => {
        const name = await resource(ctx);
        const add = checkTags((await ctx.json(maxConfigRequestBytes)).Tags);
        const current = (await functions.get({ functionName: name })).tags;
        checkTagLimits({ ...current, ...add });
        await functions.updateTags(name, (tags) => ({ ...tags, ...add }));
        return { status: 204 };
      },
    },
    {
      method: 'DELETE',
      path: '/2017-03-31/tags/:ARN',
      operation: 'UntagResource',
      handler: async (ctx) => {
        const name = await resource(ctx);
        const keys = ctx.query.getAll('tagKeys');
        await functions.updateTags(name, (tags) => {
          for (const k of keys) delete tags[k];
          return tags;
        });
        return { status: 204 };
      },
    },
  ];
}
