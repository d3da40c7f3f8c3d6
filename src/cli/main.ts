#!/usr/bin/env node
/**
 * The `nimbus` command. Server: `nimbus serve`. Clients of a running server: `invoke`,
 * `logs`, `metrics`, `traces`, `deploy`, plus `doctor` for this machine. Commander parses the command line.
 */
import { Command } from 'commander';
import { registerServe } from './commands/serve.ts';
import { registerInvoke } from './commands/invoke.ts';
import { registerLogs } from './commands/logs.ts';
import { registerDeploy } from './commands/deploy.ts';
import { registerDoctor } from './commands/doctor.ts';
import { registerQueue } from './commands/queue.ts';
import { registerDev } from './commands/dev.ts';
import { registerMetrics } from './commands/metrics.ts';
import { registerTraces } from './commands/traces.ts';
import { registerSecurity } from './commands/security.ts';

const program = new Command('nimbus')
  .description('A self-hosted serverless platform that speaks AWS Lambda\'s own interfaces.')
  .showHelpAfterError();

registerServe(program);
registerInvoke(program);
registerLogs(program);
registerDeploy(program);
registerDoctor(program);
registerQueue(program);
registerDev(program);
registerMetrics(program);
registerTraces(program);
registerSecurity(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as Error;
  process.stderr.write(`nimbus: ${e.name && e.name !== 'Error' ? e.name + ': ' : ''}${e.message}\n`);
  process.exitCode = 1;
});
