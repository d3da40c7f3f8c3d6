/**
 * `nimbus deploy --template template.yaml`: creates or updates the functions, function
 * URLs and API Gateway routes of an AWS SAM template on a running Nimbus, and says what
 * it skipped. Shared with `nimbus dev`, which deploys the same way before serving.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { lambdaClient, endpointOf, printJson, type ClientOptions } from '../client.ts';
import { readTemplate } from '../../sam/template.ts';
import { planTemplate, type DeployPlan } from '../../sam/plan.ts';
import { deployPlan, describeResult } from '../../sam/deployer.ts';

export interface TemplateOptions {
  template: string;
  stackName?: string;
  parameterOverrides: string[];
  role: string;
}

/** `--template` may name the file or the folder holding template.yaml / template.yml. */
export function resolveTemplateFile(arg: string): string {
  const full = path.resolve(arg);
  if (existsSync(full) && statSync(full).isDirectory()) {
    for (const name of ['template.yaml', 'template.yml', 'template.json']) {
      if (existsSync(path.join(full, name))) return path.join(full, name);
    }
    throw new Error(`${full} has no template.yaml, template.yml or template.json`);
  }
  return full;
}

function overrides(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs.flatMap((p) => p.split(/\s+/)).filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--parameter-overrides takes Name=Value, got ${pair}`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** The stack name: --stack-name, or the template folder's name (as a CloudFormation name). */
export function stackNameFor(templateFile: string, flag: string | undefined): string {
  const name = flag ?? path.basename(path.dirname(templateFile));
  const clean = name.replace(/[^A-Za-z0-9-]/g, '-').replace(/^[^A-Za-z]+/, '');
  if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(clean)) throw new Error(`Stack name ${name} is not usable: pass --stack-name`);
  return clean;
}

export async function planFor(options: TemplateOptions, server: { region: string; accountId: string }): Promise<{ file: string; plan: DeployPlan }> {
  const file = resolveTemplateFile(options.template);
  const template = await readTemplate(file);
  const plan = planTemplate(template, {
    templateFile: file,
    stackName: stackNameFor(file, options.stackName),
    region: server.region,
    accountId: server.accountId,
    parameterOverrides: overrides(options.parameterOverrides),
  });
  return { file, plan };
}

/** Region and account of the server at `endpoint` (they go into ARNs and Sub). */
export async function serverIdentity(endpoint: string): Promise<{ region: string; accountId: string }> {
  const res = await fetch(`${endpoint}/nimbus/v1/health`);
  if (!res.ok) throw new Error(`${endpoint} did not answer /nimbus/v1/health (HTTP ${res.status}); is it a Nimbus server?`);
  const body = (await res.json()) as { region: string; accountId: string };
  return { region: body.region, accountId: body.accountId };
}

export async function deployTemplate(options: TemplateOptions & ClientOptions): Promise<void> {
  const endpoint = endpointOf(options);
  const { plan } = await planFor(options, await serverIdentity(endpoint));
  const { client } = await lambdaClient(options);
  const buildRoot = await mkdtemp(path.join(os.tmpdir(), 'nimbus-build-'));
  try {
    const result = await deployPlan(plan, { endpoint, client, role: options.role, buildRoot });
    if (options.json) printJson(result);
    else process.stdout.write(describeResult(result) + '\n');
  } finally {
    client.destroy();
    await rm(buildRoot, { recursive: true, force: true });
  }
}
