/** `nimbus doctor`: which sandbox and which interpreter each runtime will use here. */
import type { Command } from 'commander';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../../config/resolved-config.ts';
import { createSandbox } from '../../environments/sandbox.ts';
import { LocalLauncherResolver } from '../../runtimes/launcher-resolver.ts';
import { doctorReport } from '../../runtimes/doctor.ts';
import { runtimeCatalog } from '../../runtimes/catalog.ts';
import { printJson } from '../client.ts';

const clientsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'runtimes', 'clients');

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('Check this machine: sandbox, and the interpreter each runtime will use.')
    .option('--data-dir <dir>', 'data dir (for the config file and provisioned runtimes)', './.nimbus')
    .option('--config <file>', 'config file')
    .option('--provision', 'provision missing Node.js majors now')
    .option('--json', 'print machine-readable JSON')
    .action(async (options: { dataDir: string; config?: string; provision?: boolean; json?: boolean }) => {
      const config = resolveConfig({ dataDir: options.dataDir, config: options.config }, process.env);
      const sandbox = createSandbox(config.sandbox);
      const resolver = new LocalLauncherResolver({
        runtimesDir: config.runtimesDir,
        interpreterOverrides: { ...config.interpreterOverrides },
        nimbusNodePath: process.execPath,
        clientsDir,
        onProgress: (line) => process.stderr.write(line + '\n'),
      });
      const entries = await doctorReport(resolver, runtimeCatalog, config.clock.now(), { provision: options.provision });
      const sandboxNote =
        sandbox.kind === 'bubblewrap'
          ? 'bubblewrap: code read-only at /var/task, layers at /opt, private /tmp, data dir hidden'
          : 'process: a plain process group with a private temp dir (install bubblewrap for isolation)';
      if (options.json) {
        printJson({ sandbox: sandbox.kind, node: process.version, runtimes: entries });
        return;
      }
      process.stdout.write(`Sandbox: ${sandboxNote}\nNimbus runs on Node.js ${process.version}\n\n`);
      const rows = entries.map((e) => [
        e.runtimeId,
        e.phase + (e.deprecated && e.successor ? ` (use ${e.successor})` : ''),
        e.status,
        e.interpreterPath ? `${e.interpreterPath}${e.interpreterVersion ? ` (${e.interpreterVersion})` : ''}` : '-',
        e.note ?? '',
      ]);
      const header = ['RUNTIME', 'PHASE', 'STATUS', 'INTERPRETER', 'NOTE'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      for (const row of [header, ...rows]) {
        process.stdout.write(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ') + '\n');
      }
    });
}
