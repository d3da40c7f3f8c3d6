/**
 * `nimbus deploy <dir>`: zips a folder and creates the function, or updates it if it exists.
 * `nimbus deploy --template template.yaml`: deploys an AWS SAM template (deploy-template.ts).
 */
import type { Command } from 'commander';
import path from 'node:path';
import { lambdaClient, printJson, withClientOptions, type ClientOptions, collect } from '../client.ts';
import { zipFolder } from '../../artifacts/zip-folder.ts';
import { deployTemplate } from './deploy-template.ts';

interface DeployOptions extends ClientOptions {
  name?: string;
  runtime?: string;
  handler?: string;
  role: string;
  template?: string;
  stackName?: string;
  parameterOverrides: string[];
  memory?: string;
  timeout?: string;
  env: string[];
}

function parseEnv(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`--env takes KEY=VALUE, got ${pair}`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

export function registerDeploy(program: Command): void {
  withClientOptions(
    program
      .command('deploy [dir]')
      .description('Zip a folder and create or update a function from it, or deploy an AWS SAM template (--template).')
      .option('--name <function>', 'function name (required with <dir>)')
      .option('--runtime <id>', 'runtime, e.g. nodejs24.x, python3.12, provided.al2023 (required with <dir>)')
      .option('--handler <handler>', 'handler, e.g. index.handler (required with <dir>)')
      .option('--template <file>', 'an AWS SAM template (or the folder holding template.yaml) to deploy instead of <dir>')
      .option('--stack-name <name>', 'with --template: stack name for default function names (default: the template folder name)')
      .option('--parameter-overrides <Name=Value>', 'with --template: template parameter values (repeatable)', collect, [])
      .option('--role <arn>', 'execution role ARN', 'arn:aws:iam::000000000000:role/nimbus')
      .option('--memory <mb>', 'MemorySize in MB')
      .option('--timeout <s>', 'Timeout in seconds')
      .option('--env <KEY=VALUE>', 'environment variable (repeatable)', collect, []),
  ).action(async (dir: string | undefined, options: DeployOptions) => {
    if (options.template !== undefined) {
      if (dir !== undefined) throw new Error('give either <dir> or --template, not both');
      await deployTemplate({ ...options, template: options.template });
      return;
    }
    if (dir === undefined) throw new Error('missing <dir> (or --template <file>)');
    for (const flag of ['name', 'runtime', 'handler'] as const) if (options[flag] === undefined) throw new Error(`required option '--${flag}' not specified`);
    const zip = await zipFolder(path.resolve(dir));
    const { client, sdk } = await lambdaClient(options);
    const configuration = {
      FunctionName: options.name,
      Runtime: options.runtime as never,
      Handler: options.handler,
      Role: options.role,
      ...(options.memory ? { MemorySize: Number(options.memory) } : {}),
      ...(options.timeout ? { Timeout: Number(options.timeout) } : {}),
      ...(options.env.length > 0 ? { Environment: { Variables: parseEnv(options.env) } } : {}),
    };
    let exists = true;
    try {
      await client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: options.name }));
    } catch (err) {
      if ((err as Error).name !== 'ResourceNotFoundException') throw err;
      exists = false;
    }
    const result = exists
      ? (await client.send(new sdk.UpdateFunctionCodeCommand({ FunctionName: options.name, ZipFile: zip })),
        await client.send(new sdk.UpdateFunctionConfigurationCommand(configuration)))
      : await client.send(new sdk.CreateFunctionCommand({ ...configuration, Code: { ZipFile: zip } }));
    const { $metadata: _ignored, ...config } = result;
    if (options.json) printJson(config);
    else process.stdout.write(`${exists ? 'Updated' : 'Created'} ${config.FunctionArn} (${config.Runtime}, ${config.CodeSize} bytes, CodeSha256 ${config.CodeSha256})\n`);
  });
}
