/**
 * Applies a DeployPlan to a running Nimbus through its public APIs, as a client: Lambda's
 * control API (AWS SDK) for functions and function URLs, `PUT /nimbus/v1/apis/<id>` for
 * API Gateway APIs. Creates what is missing, updates what exists; a function whose
 * template lost its FunctionUrlConfig loses its URL, as CloudFormation would do.
 */
import path from 'node:path';
import {
  CreateFunctionCommand,
  CreateFunctionUrlConfigCommand,
  DeleteFunctionUrlConfigCommand,
  GetFunctionConfigurationCommand,
  GetFunctionUrlConfigCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  UpdateFunctionUrlConfigCommand,
  type LambdaClient,
} from '@aws-sdk/client-lambda';
import { zipFolder } from '../artifacts/zip-folder.ts';
import { buildWithEsbuild } from './esbuild-build.ts';
import type { ApiPlan, DeployPlan, FunctionPlan } from './plan.ts';

export interface DeployTarget {
  /** Nimbus's base URL, e.g. http://127.0.0.1:9000 */
  endpoint: string;
  client: LambdaClient;
  /** Execution role given to new functions. */
  role: string;
  /** Where esbuild writes built functions (`<buildRoot>/<LogicalId>`). */
  buildRoot: string;
}

export interface DeployedFunction {
  logicalId: string;
  functionName: string;
  action: 'created' | 'updated';
  built: boolean;
  functionUrl?: string;
}

export interface DeployedApi {
  logicalId: string;
  apiId: string;
  protocol: 'REST' | 'HTTP';
  endpoint: string;
  pathEndpoint: string;
  routes: Array<{ routeKey: string; functionName: string }>;
}

export interface DeployResult {
  stackName: string;
  functions: DeployedFunction[];
  apis: DeployedApi[];
  skippedResources: DeployPlan['skippedResources'];
  skippedEvents: DeployPlan['skippedEvents'];
  notes: string[];
}

const isNotFound = (err: unknown) => (err as Error).name === 'ResourceNotFoundException';

/** The folder whose files are the function's code: CodeUri, or its esbuild output. */
export async function codeFolder(fn: FunctionPlan, buildRoot: string): Promise<string> {
  if (!fn.esbuild) return fn.codeDir;
  const out = path.join(buildRoot, fn.logicalId);
  await buildWithEsbuild(fn.codeDir, fn.handler, fn.esbuild, out);
  return out;
}

async function waitUntilSettled(client: LambdaClient, functionName: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const cfg = await client.send(new GetFunctionConfigurationCommand({ FunctionName: functionName }));
    if ((cfg.State === undefined || cfg.State === 'Active') && cfg.LastUpdateStatus !== 'InProgress') return;
    if (cfg.State === 'Failed') throw new Error(`${functionName}: State Failed (${cfg.StateReason ?? 'no reason given'})`);
    if (Date.now() > deadline) throw new Error(`${functionName}: still ${cfg.State}/${cfg.LastUpdateStatus} after 60 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function deployFunction(fn: FunctionPlan, target: DeployTarget): Promise<DeployedFunction> {
  const { client } = target;
  const zip = await zipFolder(await codeFolder(fn, target.buildRoot));
  const configuration = {
    FunctionName: fn.functionName,
    Runtime: fn.runtime as never,
    Handler: fn.handler,
    ...(fn.memoryMb !== undefined ? { MemorySize: fn.memoryMb } : {}),
    ...(fn.timeoutSeconds !== undefined ? { Timeout: fn.timeoutSeconds } : {}),
    ...(fn.description !== undefined ? { Description: fn.description } : {}),
    Environment: { Variables: fn.environment },
    Layers: fn.layers,
  };
  let exists = true;
  try {
    await client.send(new GetFunctionConfigurationCommand({ FunctionName: fn.functionName }));
  } catch (err) {
    if (!isNotFound(err)) throw err;
    exists = false;
  }
  if (exists) {
    await client.send(new UpdateFunctionCodeCommand({ FunctionName: fn.functionName, ZipFile: zip }));
    await waitUntilSettled(client, fn.functionName);
    await client.send(new UpdateFunctionConfigurationCommand(configuration));
  } else {
    await client.send(
      new CreateFunctionCommand({
        ...configuration,
        Role: target.role,
        ...(fn.architectures ? { Architectures: fn.architectures as never } : {}),
        Code: { ZipFile: zip },
      }),
    );
  }
  await waitUntilSettled(client, fn.functionName);
  const functionUrl = await deployUrl(fn, client);
  return { logicalId: fn.logicalId, functionName: fn.functionName, action: exists ? 'updated' : 'created', built: fn.esbuild !== undefined, ...(functionUrl ? { functionUrl } : {}) };
}

async function deployUrl(fn: FunctionPlan, client: LambdaClient): Promise<string | undefined> {
  let existing = true;
  try {
    await client.send(new GetFunctionUrlConfigCommand({ FunctionName: fn.functionName }));
  } catch (err) {
    if (!isNotFound(err)) throw err;
    existing = false;
  }
  if (!fn.url) {
    if (existing) await client.send(new DeleteFunctionUrlConfigCommand({ FunctionName: fn.functionName }));
    return undefined;
  }
  const input = {
    FunctionName: fn.functionName,
    AuthType: fn.url.authType as never,
    Cors: (fn.url.cors ?? {}) as never,
    ...(fn.url.invokeMode !== undefined ? { InvokeMode: fn.url.invokeMode as never } : {}),
  };
  const out = existing
    ? await client.send(new UpdateFunctionUrlConfigCommand({ InvokeMode: 'BUFFERED', ...input }))
    : await client.send(new CreateFunctionUrlConfigCommand(input));
  return out.FunctionUrl;
}

async function deployApi(api: ApiPlan, endpoint: string): Promise<DeployedApi> {
  const res = await fetch(`${endpoint}/nimbus/v1/apis/${api.apiId}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      Name: api.logicalId,
      ProtocolType: api.protocol,
      StageName: api.stageName,
      StageVariables: api.stageVariables,
      BinaryMediaTypes: api.binaryMediaTypes,
      Routes: api.routes.map((r) => ({ RouteKey: r.routeKey, FunctionName: r.functionName, PayloadFormatVersion: r.payloadFormatVersion })),
    }),
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) {
    const err = new Error(`${api.logicalId}: ${String(body.message ?? `HTTP ${res.status}`)}`);
    err.name = res.headers.get('x-amzn-errortype') ?? 'Error';
    throw err;
  }
  return {
    logicalId: api.logicalId,
    apiId: api.apiId,
    protocol: api.protocol,
    endpoint: String(body.Endpoint),
    pathEndpoint: String(body.PathEndpoint),
    routes: api.routes.map((r) => ({ routeKey: r.routeKey, functionName: r.functionName })),
  };
}

/** Deploys functions first (APIs name them), then the APIs. */
export async function deployPlan(plan: DeployPlan, target: DeployTarget): Promise<DeployResult> {
  const functions: DeployedFunction[] = [];
  for (const fn of plan.functions) functions.push(await deployFunction(fn, target));
  const apis: DeployedApi[] = [];
  for (const api of plan.apis) apis.push(await deployApi(api, target.endpoint));
  return { stackName: plan.stackName, functions, apis, skippedResources: plan.skippedResources, skippedEvents: plan.skippedEvents, notes: plan.notes };
}

/** The deploy's summary as a person reads it. */
export function describeResult(result: DeployResult): string {
  const lines: string[] = [`Stack ${result.stackName}:`];
  for (const f of result.functions) {
    lines.push(`  ${f.action} function ${f.functionName} (${f.logicalId}${f.built ? ', built with esbuild' : ''})`);
    if (f.functionUrl) lines.push(`    function URL: ${f.functionUrl}`);
  }
  for (const a of result.apis) {
    lines.push(`  ${a.protocol === 'REST' ? 'REST API' : 'HTTP API'} ${a.logicalId} (${a.apiId}): ${a.endpoint}  (also ${a.pathEndpoint})`);
    for (const r of a.routes) lines.push(`    ${r.routeKey} -> ${r.functionName}`);
  }
  if (result.skippedResources.length > 0) {
    lines.push(`  skipped ${result.skippedResources.length} resource${result.skippedResources.length > 1 ? 's' : ''} Nimbus does not deploy: ${result.skippedResources.map((r) => `${r.logicalId} (${r.type})`).join(', ')}`);
  }
  if (result.skippedEvents.length > 0) {
    lines.push(`  skipped ${result.skippedEvents.length} event${result.skippedEvents.length > 1 ? 's' : ''} Nimbus does not wire: ${result.skippedEvents.map((e) => `${e.functionLogicalId}.Events.${e.event} (${e.type})`).join(', ')}`);
  }
  for (const n of result.notes) lines.push(`  note: ${n}`);
  return lines.join('\n');
}
