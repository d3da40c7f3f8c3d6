/**
 * Route selection as API Gateway does it: among the routes whose path template matches,
 * the most specific wins, segment by segment (a literal beats `{param}`, which beats a
 * greedy `{proxy+}`), then an exact method beats `ANY`. HTTP APIs fall back to their
 * `$default` route. Path parameters are the decoded segments; a greedy one takes the
 * rest of the path.
 */
import type { ApiRoute } from './types.ts';

type Segment = { kind: 'literal'; value: string } | { kind: 'param'; name: string } | { kind: 'greedy'; name: string };

interface CompiledRoute {
  route: ApiRoute;
  method: string;
  /** The template, e.g. `/items/{id}`. */
  resource: string;
  segments: Segment[];
}

export interface RouteMatch {
  route: ApiRoute;
  /** The path template (`$default` for the default route). */
  resource: string;
  pathParameters: Record<string, string>;
}

export const httpMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'ANY'] as const;

const literalSegment = /^[A-Za-z0-9._~:@!$&'()*,;=+-]+$/;
const paramSegment = /^\{([A-Za-z_][A-Za-z0-9_.-]*)(\+?)\}$/;

/** Splits `METHOD /path` and checks the template; returns an error message when it is not one. */
export function parseRouteKey(routeKey: string): { method: string; path: string; segments: Segment[] } | string {
  const m = /^([A-Z]+) (\/.*)$/.exec(routeKey);
  if (!m) return `Route key ${JSON.stringify(routeKey)} must look like "GET /items/{id}" or be "$default".`;
  const [, method, path] = m as unknown as [string, string, string];
  if (!(httpMethods as readonly string[]).includes(method)) return `Route key ${routeKey}: method must be one of ${httpMethods.join(', ')}.`;
  const parts = path.split('/').filter((p) => p !== '');
  const segments: Segment[] = [];
  const names = new Set<string>();
  for (const [i, part] of parts.entries()) {
    const p = paramSegment.exec(part);
    if (p) {
      const name = p[1]!;
      if (names.has(name)) return `Route key ${routeKey}: path parameter ${name} appears twice.`;
      names.add(name);
      if (p[2] === '+') {
        if (i !== parts.length - 1) return `Route key ${routeKey}: a greedy path variable must be the last segment.`;
        segments.push({ kind: 'greedy', name });
      } else segments.push({ kind: 'param', name });
    } else if (literalSegment.test(part)) segments.push({ kind: 'literal', value: part });
    else return `Route key ${routeKey}: path segment ${JSON.stringify(part)} is not allowed.`;
  }
  return { method, path: '/' + parts.join('/'), segments };
}

function decodeSegment(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

export class RouteTable {
  readonly #routes: CompiledRoute[] = [];
  readonly #default: ApiRoute | undefined;

  constructor(routes: readonly ApiRoute[]) {
    let fallback: ApiRoute | undefined;
    for (const route of routes) {
      if (route.routeKey === '$default') {
        fallback = route;
        continue;
      }
      const parsed = parseRouteKey(route.routeKey);
      if (typeof parsed === 'string') throw new Error(parsed);
      this.#routes.push({ route, method: parsed.method, resource: parsed.path, segments: parsed.segments });
    }
    this.#default = fallback;
  }

  /** The route for a request, or undefined (API Gateway's 403 / 404). */
  match(method: string, rawPath: string): RouteMatch | undefined {
    const parts = rawPath.split('/').filter((p) => p !== '');
    let best: { compiled: CompiledRoute; score: number[]; params: Record<string, string> } | undefined;
    for (const compiled of this.#routes) {
      if (compiled.method !== method && compiled.method !== 'ANY') continue;
      const params = this.#match(compiled, parts);
      if (!params) continue;
      const rank = { literal: 3, param: 2, greedy: 1 } as const;
      const score = [...compiled.segments.map((s) => rank[s.kind]), compiled.method === 'ANY' ? 0 : 1];
      if (!best || compare(score, best.score) > 0) best = { compiled, score, params };
    }
    if (best) return { route: best.compiled.route, resource: best.compiled.resource, pathParameters: best.params };
    if (this.#default) return { route: this.#default, resource: '$default', pathParameters: {} };
    return undefined;
  }

  #match(compiled: CompiledRoute, parts: string[]): Record<string, string> | undefined {
    const params: Record<string, string> = {};
    const { segments } = compiled;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      if (seg.kind === 'greedy') {
        const rest = parts.slice(i);
        if (rest.length === 0) return undefined;
        const decoded = rest.map(decodeSegment);
        if (decoded.some((d) => d === undefined)) return undefined;
        params[seg.name] = decoded.join('/');
        return params;
      }
      const part = parts[i];
      if (part === undefined) return undefined;
      const decoded = decodeSegment(part);
      if (decoded === undefined) return undefined;
      if (seg.kind === 'literal') {
        if (decoded !== seg.value) return undefined;
      } else params[seg.name] = decoded;
    }
    return parts.length === segments.length ? params : undefined;
  }
}

function compare(a: number[], b: number[]): number {
  // Longer templates are more specific when the shared prefix ties (the method rank is last).
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}
