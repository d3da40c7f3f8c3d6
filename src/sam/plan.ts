/**
 * Turns a SAM template into what Nimbus deploys: functions (AWS::Serverless::Function
 * with Globals applied: lists are added, maps merged, scalars overridden, as SAM does),
 * their function URLs (FunctionUrlConfig), and API Gateway APIs with their routes (Api
 * and HttpApi events; the implicit ServerlessRestApi on stage Prod and ServerlessHttpApi
 * on $default, or AWS::Serverless::Api / HttpApi resources). Everything else is listed as
 * skipped, by name and type, never silently dropped.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Resolver, type ResolveContext } from './intrinsics.ts';
import { TemplateError, type Template } from './template.ts';

export interface EsbuildProperties {
  entryPoints?: string[];
  minify?: boolean;
  target?: string;
  sourcemap?: boolean;
  format?: 'cjs' | 'esm';
  outExtension?: string[];
  external?: string[];
  loader?: string[];
  banner?: string;
  mainFields?: string;
}

export interface FunctionPlan {
  logicalId: string;
  functionName: string;
  /** Absolute path of CodeUri. */
  codeDir: string;
  handler: string;
  runtime: string;
  memoryMb?: number;
  timeoutSeconds?: number;
  description?: string;
  architectures?: string[];
  environment: Record<string, string>;
  layers: string[];
  /** `Metadata: BuildMethod: esbuild`, as `sam build` reads it. */
  esbuild?: EsbuildProperties;
  url?: { authType: string; cors?: Record<string, unknown>; invokeMode?: string };
}

export interface ApiPlan {
  logicalId: string;
  apiId: string;
  protocol: 'REST' | 'HTTP';
  stageName: string;
  stageVariables: Record<string, string>;
  binaryMediaTypes: string[];
  routes: Array<{ routeKey: string; functionName: string; payloadFormatVersion: '1.0' | '2.0' }>;
}

export interface DeployPlan {
  stackName: string;
  functions: FunctionPlan[];
  apis: ApiPlan[];
  /** Resources Nimbus does not deploy. */
  skippedResources: Array<{ logicalId: string; type: string }>;
  /** Function events Nimbus does not wire. */
  skippedEvents: Array<{ functionLogicalId: string; event: string; type: string }>;
  /** Things a person should know (stand-in values, ignored properties). */
  notes: string[];
}

export interface PlanOptions {
  templateFile: string;
  stackName: string;
  region: string;
  accountId: string;
  parameterOverrides: Record<string, string>;
}

const FUNCTION = 'AWS::Serverless::Function';
const REST_API = 'AWS::Serverless::Api';
const HTTP_API = 'AWS::Serverless::HttpApi';
const deployed = new Set([FUNCTION, REST_API, HTTP_API]);
const IMPLICIT_REST = 'ServerlessRestApi';
const IMPLICIT_HTTP = 'ServerlessHttpApi';

/** Properties of AWS::Serverless::Function Nimbus acts on; others are listed in the notes. */
const usedFunctionProperties = new Set([
  'CodeUri', 'Handler', 'Runtime', 'MemorySize', 'Timeout', 'Environment', 'Layers', 'Events', 'FunctionUrlConfig',
  'FunctionName', 'Description', 'Architectures',
]);

/** A deterministic id from [a-z0-9] (stable across deploys of the same stack). */
export function stableId(seed: string, length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...createHash('sha256').update(seed).digest()].slice(0, length).map((b) => alphabet[b % 36]).join('');
}

/** `<stack>-<LogicalId>` within Lambda's 64 characters, as CloudFormation names functions. */
export function defaultFunctionName(stackName: string, logicalId: string): string {
  const name = `${stackName}-${logicalId}`.replace(/[^A-Za-z0-9_-]/g, '-');
  return name.length <= 64 ? name : `${name.slice(0, 55)}-${stableId(name, 8)}`;
}

type Props = Record<string, unknown>;

function mergeGlobals(globals: Props, props: Props): Props {
  const out: Props = { ...props };
  for (const [k, g] of Object.entries(globals)) {
    const own = props[k];
    if (own === undefined) out[k] = g;
    else if (Array.isArray(g) && Array.isArray(own)) out[k] = [...g, ...own];
    else if (isMap(g) && isMap(own)) out[k] = mergeGlobals(g, own);
  }
  return out;
}

function isMap(v: unknown): v is Props {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parameters(template: Template, overrides: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const declared = (template.Parameters ?? {}) as Record<string, Props>;
  for (const [name, def] of Object.entries(declared)) {
    const raw = overrides[name] ?? def?.Default;
    if (raw === undefined) throw new TemplateError(`Parameter ${name} has no Default: pass --parameter-overrides ${name}=<value>.`);
    out[name] = def?.Type === 'CommaDelimitedList' || String(def?.Type ?? '').startsWith('List<') ? String(raw).split(',') : raw;
  }
  for (const name of Object.keys(overrides)) if (!(name in declared)) throw new TemplateError(`--parameter-overrides: ${name} is not a parameter of the template.`);
  return out;
}

export function planTemplate(template: Template, options: PlanOptions): DeployPlan {
  const notes: string[] = [];
  const skippedResources: DeployPlan['skippedResources'] = [];
  const skippedEvents: DeployPlan['skippedEvents'] = [];
  const skipped: Record<string, string> = {};
  const refs: Record<string, string> = {};
  const attributes: Record<string, string> = {};
  const arn = (name: string) => `arn:aws:lambda:${options.region}:${options.accountId}:function:${name}`;

  const resources = Object.entries(template.Resources);
  for (const [id, r] of resources) {
    const type = r.Type as string;
    if (!deployed.has(type)) {
      skipped[id] = type;
      skippedResources.push({ logicalId: id, type });
    }
  }
  const ctx: ResolveContext = {
    region: options.region,
    accountId: options.accountId,
    stackName: options.stackName,
    parameters: parameters(template, options.parameterOverrides),
    mappings: (template.Mappings ?? {}) as ResolveContext['mappings'],
    conditions: (template.Conditions ?? {}) as Record<string, unknown>,
    refs,
    attributes,
    skipped,
    note: (m) => notes.push(m),
  };
  const resolver = new Resolver(ctx);
  const globals = (template.Globals ?? {}) as Record<string, Props>;

  // Names first: functions and APIs may refer to each other in any order.
  for (const [id, r] of resources) {
    const props = (r.Properties ?? {}) as Props;
    if (r.Type === FUNCTION) {
      const name = props.FunctionName === undefined ? defaultFunctionName(options.stackName, id) : resolver.string(props.FunctionName, `Resources.${id}.Properties.FunctionName`);
      refs[id] = name;
      attributes[`${id}.Arn`] = arn(name);
    } else if (r.Type === REST_API || r.Type === HTTP_API) {
      refs[id] = stableId(`${options.stackName}/${id}`, 10);
    }
  }

  const apis = new Map<string, ApiPlan>();
  const apiFor = (logicalId: string, protocol: 'REST' | 'HTTP'): ApiPlan => {
    let api = apis.get(logicalId);
    if (api) {
      if (api.protocol !== protocol) throw new TemplateError(`${logicalId} is used by both Api and HttpApi events.`);
      return api;
    }
    const resource = template.Resources[logicalId];
    const implicit = resource === undefined;
    if (!implicit && resource.Type !== (protocol === 'REST' ? REST_API : HTTP_API)) {
      throw new TemplateError(`${logicalId} is a ${String(resource.Type)}, not an ${protocol === 'REST' ? REST_API : HTTP_API}.`);
    }
    const g = mergeGlobals(globals[protocol === 'REST' ? 'Api' : 'HttpApi'] ?? {}, implicit ? {} : ((resource.Properties ?? {}) as Props));
    const where = `Resources.${logicalId}.Properties`;
    const stageName = g.StageName === undefined ? (protocol === 'REST' ? 'Prod' : '$default') : resolver.string(g.StageName, `${where}.StageName`);
    const variables = resolver.resolve(protocol === 'REST' ? g.Variables : g.StageVariables, `${where}.Variables`) ?? {};
    const binary = (resolver.resolve(g.BinaryMediaTypes, `${where}.BinaryMediaTypes`) ?? []) as unknown[];
    api = {
      logicalId,
      apiId: stableId(`${options.stackName}/${logicalId}`, 10),
      protocol,
      stageName,
      stageVariables: Object.fromEntries(Object.entries(variables as Props).map(([k, v]) => [k, String(v)])),
      binaryMediaTypes: binary.map((t) => String(t).replace(/~1/g, '/')),
      routes: [],
    };
    apis.set(logicalId, api);
    return api;
  };
  // APIs declared as resources are deployed even before any event uses them.
  for (const [id, r] of resources) {
    if (r.Type === REST_API) apiFor(id, 'REST');
    if (r.Type === HTTP_API) apiFor(id, 'HTTP');
  }

  const functions: FunctionPlan[] = [];
  const templateDir = path.dirname(path.resolve(options.templateFile));
  for (const [id, r] of resources) {
    if (r.Type !== FUNCTION) continue;
    const where = `Resources.${id}.Properties`;
    const props = mergeGlobals(globals.Function ?? {}, (r.Properties ?? {}) as Props);
    if (props.PackageType === 'Image') throw new TemplateError(`${where}.PackageType: Image functions are not available in Nimbus; use Zip.`);
    if (props.InlineCode !== undefined) throw new TemplateError(`${where}.InlineCode: Nimbus deploys code from CodeUri folders; put the code in a folder.`);
    const codeUri = resolver.resolve(props.CodeUri ?? '.', `${where}.CodeUri`);
    if (typeof codeUri !== 'string') throw new TemplateError(`${where}.CodeUri must be a local folder (S3 locations are not available locally).`);
    const ignored = Object.keys(props).filter((k) => !usedFunctionProperties.has(k) && !(k in (globals.Function ?? {})));
    if (ignored.length > 0) notes.push(`${id}: properties not used locally: ${ignored.join(', ')}`);
    const env = resolver.resolve((props.Environment as Props | undefined)?.Variables ?? {}, `${where}.Environment.Variables`) as Props;
    const metadata = (r.Metadata ?? {}) as Props;
    const fn: FunctionPlan = {
      logicalId: id,
      functionName: refs[id]!,
      codeDir: path.resolve(templateDir, codeUri),
      handler: resolver.string(props.Handler, `${where}.Handler`),
      runtime: resolver.string(props.Runtime, `${where}.Runtime`),
      environment: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])),
      layers: ((resolver.resolve(props.Layers ?? [], `${where}.Layers`) as unknown[]) ?? []).map(String),
    };
    if (props.MemorySize !== undefined) fn.memoryMb = Number(resolver.resolve(props.MemorySize, `${where}.MemorySize`));
    if (props.Timeout !== undefined) fn.timeoutSeconds = Number(resolver.resolve(props.Timeout, `${where}.Timeout`));
    if (props.Description !== undefined) fn.description = resolver.string(props.Description, `${where}.Description`);
    if (props.Architectures !== undefined) fn.architectures = (resolver.resolve(props.Architectures, `${where}.Architectures`) as unknown[]).map(String);
    if (metadata.BuildMethod !== undefined) {
      if (metadata.BuildMethod !== 'esbuild') throw new TemplateError(`Resources.${id}.Metadata.BuildMethod: only esbuild is available in Nimbus.`);
      fn.esbuild = esbuildProperties(resolver.resolve(metadata.BuildProperties ?? {}, `Resources.${id}.Metadata.BuildProperties`) as Props);
    }
    if (props.FunctionUrlConfig !== undefined) {
      const u = resolver.resolve(props.FunctionUrlConfig, `${where}.FunctionUrlConfig`) as Props;
      fn.url = { authType: String(u.AuthType), ...(u.Cors !== undefined ? { cors: u.Cors as Props } : {}), ...(u.InvokeMode !== undefined ? { invokeMode: String(u.InvokeMode) } : {}) };
    }
    for (const [eventId, e] of Object.entries((props.Events ?? {}) as Record<string, Props>)) {
      const type = String(e?.Type);
      if (type !== 'Api' && type !== 'HttpApi') {
        // Not resolved: a skipped event may well point at resources Nimbus skips too.
        skippedEvents.push({ functionLogicalId: id, event: eventId, type });
        continue;
      }
      const ep = resolver.resolve(e?.Properties ?? {}, `${where}.Events.${eventId}.Properties`) as Props;
      if (type === 'Api') {
        const api = apiFor(ep.RestApiId === undefined ? IMPLICIT_REST : logicalIdOf(ep.RestApiId, refs), 'REST');
        api.routes.push({ routeKey: `${String(ep.Method).toUpperCase()} ${String(ep.Path)}`, functionName: fn.functionName, payloadFormatVersion: '1.0' });
      } else if (type === 'HttpApi') {
        const api = apiFor(ep.ApiId === undefined ? IMPLICIT_HTTP : logicalIdOf(ep.ApiId, refs), 'HTTP');
        const routeKey = ep.Path === undefined && ep.Method === undefined ? '$default' : `${String(ep.Method ?? 'ANY').toUpperCase()} ${String(ep.Path)}`;
        const version = String(ep.PayloadFormatVersion ?? '2.0');
        if (version !== '1.0' && version !== '2.0') throw new TemplateError(`${where}.Events.${eventId}.Properties.PayloadFormatVersion must be 1.0 or 2.0.`);
        api.routes.push({ routeKey, functionName: fn.functionName, payloadFormatVersion: version });
      }
    }
    functions.push(fn);
  }
  return { stackName: options.stackName, functions, apis: [...apis.values()], skippedResources, skippedEvents, notes };
}

/** `RestApiId: !Ref MyApi` resolves to the API id; find the logical id back. */
function logicalIdOf(apiId: unknown, refs: Record<string, string>): string {
  const found = Object.entries(refs).find(([, v]) => v === apiId)?.[0];
  if (!found) throw new TemplateError(`API ${String(apiId)} is not an API of this template.`);
  return found;
}

function esbuildProperties(p: Props): EsbuildProperties {
  const list = (v: unknown) => (v === undefined ? undefined : Array.isArray(v) ? v.map(String) : String(v).split(','));
  const bool = (v: unknown) => (v === undefined ? undefined : v === true || v === 'true');
  const format = p.Format === undefined ? undefined : String(p.Format).toLowerCase();
  if (format !== undefined && format !== 'cjs' && format !== 'esm') throw new TemplateError(`BuildProperties.Format must be cjs or esm, got ${format}.`);
  return {
    ...(p.EntryPoints !== undefined ? { entryPoints: list(p.EntryPoints) } : {}),
    ...(p.Minify !== undefined ? { minify: bool(p.Minify) } : {}),
    ...(p.Target !== undefined ? { target: String(p.Target) } : {}),
    ...(p.Sourcemap !== undefined ? { sourcemap: bool(p.Sourcemap) } : {}),
    ...(format !== undefined ? { format } : {}),
    ...(p.OutExtension !== undefined ? { outExtension: list(p.OutExtension) } : {}),
    ...(p.External !== undefined ? { external: list(p.External) } : {}),
    ...(p.Loader !== undefined ? { loader: list(p.Loader) } : {}),
    ...(p.Banner !== undefined ? { banner: String(p.Banner) } : {}),
    ...(p.MainFields !== undefined ? { mainFields: String(p.MainFields) } : {}),
  };
}
