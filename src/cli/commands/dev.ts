/**
 * `nimbus dev [dir] [--template template.yaml]`: a Nimbus server for one AWS SAM project.
 * Deploys the template (functions, function URLs, API routes), then serves each function
 * straight from its source folder (TypeScript built with esbuild as `sam build` would),
 * and on a file change the next invoke runs the new code: no zip, no restart. Function
 * logs are printed here. Data lives in a throw-away folder unless --data-dir is given.
 */
import type { Command } from 'commander';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../../config/resolved-config.ts';
import { createLogger } from '../../logging/logger.ts';
import { NimbusServer } from '../../server.ts';
import { DevCodeRegistry, DevFunction, DevInvoker } from '../../sam/dev-code.ts';
import { SourceWatcher } from '../../sam/dev-watch.ts';
import { deployPlan, describeResult } from '../../sam/deployer.ts';
import { lambdaClient, collect } from '../client.ts';
import { planFor } from './deploy-template.ts';

interface DevOptions {
  template?: string;
  host: string;
  port: string;
  dataDir?: string;
  region?: string;
  accountId?: string;
  config?: string;
  stackName?: string;
  parameterOverrides: string[];
  role: string;
}

export function registerDev(program: Command): void {
  program
    .command('dev [dir]')
    .description('Serve an AWS SAM project from its source folders, reloading on every change.')
    .option('--template <file>', 'the SAM template (default: template.yaml in [dir] or the current folder)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '3000')
    .option('--data-dir <dir>', 'where Nimbus keeps its data (default: a throw-away folder)')
    .option('--region <region>', 'region in ARNs')
    .option('--account-id <id>', 'account id in ARNs')
    .option('--config <file>', 'config file')
    .option('--stack-name <name>', 'stack name for default function names (default: the template folder name)')
    .option('--parameter-overrides <Name=Value>', 'template parameter values (repeatable)', collect, [])
    .option('--role <arn>', 'execution role ARN of the functions', 'arn:aws:iam::000000000000:role/nimbus')
    .action(async (dir: string | undefined, options: DevOptions) => {
      const ownDataDir = options.dataDir === undefined ? await mkdtemp(path.join(os.tmpdir(), 'nimbus-dev-')) : undefined;
      const config = resolveConfig({ ...options, dataDir: options.dataDir ?? ownDataDir }, process.env);
      const out = (line: string) => process.stdout.write(line + '\n');
      const logger = createLogger({ level: config.logLevel, format: 'text', write: (line) => process.stderr.write(line) });
      const { plan } = await planFor({ ...options, template: options.template ?? dir ?? '.' }, config);

      const registry = new DevCodeRegistry();
      let invoker: DevInvoker | undefined;
      const onReload = (functionName: string, state: Awaited<ReturnType<DevFunction['current']>>) => {
        if (state.kind === 'ready') out(`[nimbus dev] ${functionName}: reloaded (generation ${state.generation})`);
        else out(`[nimbus dev] ${functionName}: build failed; invokes answer Runtime.UserCodeSyntaxError until it builds:\n${state.message}`);
        void invoker?.retireFunction(functionName);
      };
      for (const fn of plan.functions) registry.add(new DevFunction(fn, path.join(config.dataDir, 'dev-builds'), onReload));
      for (const fn of registry.all()) {
        const state = await fn.current();
        if (state.kind === 'build-failed') out(`[nimbus dev] ${fn.plan.functionName}: build failed:\n${state.message}`);
      }

      const server = new NimbusServer(config, logger, (line) => process.stderr.write(line + '\n'), {
        createInvoker: (o) => (invoker = new DevInvoker(o, registry)),
      });
      const url = await server.start();
      out(`Nimbus listening on ${url} (region ${config.region}, account ${config.accountId}, sandbox ${server.sandbox.kind})`);
      const { client } = await lambdaClient({ endpoint: url });
      try {
        const result = await deployPlan(plan, { endpoint: url, client, role: options.role, buildRoot: path.join(config.dataDir, 'deploy-builds') });
        out(describeResult(result));
      } finally {
        client.destroy();
      }
      const watcher = new SourceWatcher(registry.all(), (err) => logger.warn('watching sources failed', { error: err.message }));
      out(`[nimbus dev] watching ${new Set(registry.all().map((f) => f.plan.codeDir)).size} source folder(s); Ctrl-C to stop`);

      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        logger.info('shutting down', { signal });
        watcher.close();
        server
          .stop()
          .then(() => (ownDataDir ? rm(ownDataDir, { recursive: true, force: true }) : undefined))
          .then(
            () => {
              out('Nimbus stopped');
              process.exit(0);
            },
            (err: unknown) => {
              logger.error('shutdown failed', { error: (err as Error).stack });
              process.exit(1);
            },
          );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
}
