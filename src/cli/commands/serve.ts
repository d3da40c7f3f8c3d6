/** `nimbus serve`: runs the server until SIGINT/SIGTERM, then shuts down cleanly. */
import type { Command } from 'commander';
import { resolveConfig, type CliServeOptions } from '../../config/resolved-config.ts';
import { createLogger } from '../../logging/logger.ts';
import { NimbusServer } from '../../server.ts';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('Run the Nimbus server (Lambda control API on /2015-03-31/...).')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '9000')
    .option('--data-dir <dir>', 'where functions, code and logs are kept', './.nimbus')
    .option('--region <region>', 'region in ARNs', 'us-east-1')
    .option('--account-id <id>', 'account id in ARNs', '000000000000')
    .option('--config <file>', 'config file (default <data-dir>/nimbus.json)')
    .option('--echo-logs', 'print function log lines on this terminal')
    .action(async (options: CliServeOptions & { echoLogs?: boolean }) => {
      const config = resolveConfig(options, process.env);
      const logger = createLogger({ level: config.logLevel, format: 'text', write: (line) => process.stderr.write(line) });
      const echo = options.echoLogs || config.echoFunctionLogs ? (line: string) => process.stderr.write(line + '\n') : undefined;
      const server = new NimbusServer(config, logger, echo);
      const url = await server.start();
      process.stdout.write(`Nimbus listening on ${url} (region ${config.region}, account ${config.accountId}, data ${config.dataDir}, sandbox ${server.sandbox.kind})\n`);
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        logger.info('shutting down', { signal });
        server.stop().then(
          () => {
            process.stdout.write('Nimbus stopped\n');
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
