/**
 * Threat detection's deny lists under /nimbus/v1/security (not part of Lambda's API). Agents
 * poll the GET with If-None-Match; `nimbus security block-ip|unblock-ip|block-user|unblock-user`
 * change the lists. The security events themselves are served by the telemetry routes.
 */
import { InvalidParameterValueException, ResourceNotFoundException } from '../../errors/platform-errors.ts';
import type { DenyListKind, DenyListService } from '../../appsec/deny-list-service.ts';
import type { RequestContext, Route } from '../http.ts';

export interface SecurityRoutesDeps {
  denyList: DenyListService;
}

const bodyLimitBytes = 16 * 1024;

/** `If-None-Match: "a", W/"b"` holds `etag`? (`*` matches anything.) */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

function mutationRoutes(deps: SecurityRoutesDeps, kind: DenyListKind, segment: 'ips' | 'users', member: 'ip' | 'userId', param: 'Ip' | 'UserId'): Route[] {
  const label = kind === 'ip' ? 'IP' : 'User';
  return [
    {
      method: 'POST',
      path: `/nimbus/v1/security/deny-list/${segment}`,
      operation: `Deny${label}`,
      handler: async (ctx: RequestContext) => {
        const body = await ctx.json(bodyLimitBytes);
        if (body[member] === undefined) throw new InvalidParameterValueException(`The request must name the ${kind === 'ip' ? 'address' : 'user'} to deny in "${member}".`);
        const { entry, created } = await deps.denyList.add(kind, body[member], body.reason);
        return { status: created ? 201 : 200, body: entry };
      },
    },
    {
      method: 'DELETE',
      path: `/nimbus/v1/security/deny-list/${segment}/:${param}`,
      operation: `Allow${label}`,
      handler: async (ctx: RequestContext) => {
        // A CIDR's slash arrives encoded (%2F) inside the one path segment.
        const value = ctx.params[param] ?? '';
        if (!(await deps.denyList.remove(kind, value))) throw new ResourceNotFoundException(`${value} is not on the ${kind} deny list.`);
        return { status: 204 };
      },
    },
  ];
}

export function securityRoutes(deps: SecurityRoutesDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/nimbus/v1/security/deny-list',
      operation: 'GetDenyList',
      handler: async (ctx) => {
        const view = await deps.denyList.list();
        const headers = { ETag: view.etag, 'Cache-Control': 'no-cache' };
        if (etagMatches(ctx.header('if-none-match'), view.etag)) return { status: 304, headers };
        return { status: 200, headers, body: view };
      },
    },
    ...mutationRoutes(deps, 'ip', 'ips', 'ip', 'Ip'),
    ...mutationRoutes(deps, 'user', 'users', 'userId', 'UserId'),
  ];
}
