/**
 * The Init phase of one environment, as Lambda documents it (§2.4): every executable in
 * /opt/extensions starts at once and must register (extension init); then the runtime
 * starts and initialises the function, while internal extensions may register (runtime
 * init); the runtime's first `/next` closes registration; Init ends when every registered
 * extension has called `next` too. Limited to `initTimeoutMs` (Lambda's 10 s). At the end
 * come the EXTENSION lines and platform.initRuntimeDone, platform.extension and
 * platform.initReport, and Telemetry API subscriptions close.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RuntimeErrorType } from '../errors/runtime-error-types.ts';
import type { LauncherResolver } from '../runtimes/types.ts';
import type { ExtensionRegistry } from './extension-registry.ts';
import { buildLambdaEnvironment, extensionEnvironment } from './lambda-env-vars.ts';
import { agentDefaults, agentExtensionName } from './agent-defaults.ts';
import { maxExtensions } from './lifecycle.ts';
import type { LogCollector } from './log-collector.ts';
import * as lines from './platform-log-lines.ts';
import { InitFailure, listExtensions, runtimeLaunch, type ProcessGroup } from './processes.ts';
import type { HostDirs, SandboxSupervisor } from './sandbox.ts';
import * as events from './telemetry-events.ts';
import type { TelemetryHub } from './telemetry-hub.ts';
import type { EnvironmentSpec } from './types.ts';

export type InitOutcome =
  | { ok: true; initDurationMs: number }
  | { ok: false; initDurationMs: number; errorType: string; errorMessage: string; payload: Buffer; status: 'error' | 'timeout' };

export type InitPhase = 'extensions' | 'runtime' | 'extensions-ready' | 'over';

export interface InitContext {
  spec: EnvironmentSpec;
  sandbox: SandboxSupervisor;
  launcher: LauncherResolver;
  logs: LogCollector;
  hub: TelemetryHub;
  registry: ExtensionRegistry;
  facts: events.TelemetryFacts;
  processes: ProcessGroup;
  /** The environment's private dir (its /tmp, an empty /opt, its hosts file). */
  root: string;
  logStream: string;
  initTimeoutMs: number;
  /** The environment's own loopback address (sandbox-addresses.ts). */
  sandboxAddress: string;
  /** The server's telemetry intake, for the Nimbus agent (agent-defaults.ts). */
  telemetryEndpoint?: string;
  /** Starts the environment's API server; returns AWS_LAMBDA_RUNTIME_API. */
  listen(): Promise<string>;
  onComplete(initDurationMs: number): void;
  onFailure(): void;
}

const failureBody = (errorType: string, errorMessage: string): Buffer => Buffer.from(JSON.stringify({ errorType, errorMessage }));

export class InitSequence {
  readonly outcome: Promise<InitOutcome>;
  readonly dirs: HostDirs;
  readonly #c: InitContext;
  readonly #startedAt = performance.now();
  readonly #timer: NodeJS.Timeout;
  #resolve!: (outcome: InitOutcome) => void;
  #phase: InitPhase = 'extensions';
  #runtimeStart: (() => void) | undefined;

  constructor(context: InitContext) {
    this.#c = context;
    const { spec, root } = context;
    this.dirs = { codeDir: spec.codeDir, optDir: spec.layersDir ?? path.join(root, 'opt'), tmpDir: path.join(root, 'tmp') };
    this.outcome = new Promise<InitOutcome>((resolve) => (this.#resolve = resolve));
    this.#timer = setTimeout(() => this.#timedOut(), context.initTimeoutMs);
    context.hub.platform('platform.initStart', events.initStart(context.facts));
    this.#start().catch((err: Error & { errorType?: string }) => this.fail('error', err.errorType ?? RuntimeErrorType.Unknown, err.message));
  }

  get phase(): InitPhase {
    return this.#phase;
  }

  get pending(): boolean {
    return this.#phase !== 'over';
  }

  async #start(): Promise<void> {
    const { spec, sandbox, launcher, root, logStream } = this.#c;
    const dirs = this.dirs;
    await Promise.all([spec.layersDir ? undefined : mkdir(dirs.optDir, { recursive: true }), mkdir(dirs.tmpDir, { recursive: true })]);
    if (sandbox.kind === 'bubblewrap') dirs.hostsFile = await writeHosts(root, this.#c.sandboxAddress);
    if (!this.pending) return;
    const runtimeApi = await this.#c.listen();
    const seen = sandbox.paths(dirs);
    const launch = await runtimeLaunch(spec, launcher, seen, dirs);
    const files = await listExtensions(dirs.optDir);
    if (files.length > maxExtensions) {
      throw new InitFailure('Extension.LaunchError', `Extension limit (${maxExtensions}) reached: ${seen.optDir}/extensions holds ${files.length} files`);
    }
    const refused = files.find((f) => !f.executable);
    if (refused) throw new InitFailure('Extension.LaunchError', `fork/exec ${seen.optDir}/extensions/${refused.name}: permission denied`);
    if (!this.pending) return; // stopped meanwhile
    const base = { dirs, readOnlyPaths: launch.readOnlyPaths };
    const platform = {
      sandboxAddress: this.#c.sandboxAddress,
      defaults: files.some((f) => f.name === agentExtensionName) ? agentDefaults(this.#c.sandboxAddress, this.#c.telemetryEndpoint) : {},
    };
    const extensionEnv = extensionEnvironment(buildLambdaEnvironment(spec, seen, runtimeApi, logStream, {}, platform, launch.interpreterDir));
    for (const file of files) {
      const extension = this.#c.registry.addExternal(file.name);
      const command = path.join(seen.optDir, 'extensions', file.name);
      this.#c.processes.startExtension(extension, { ...base, command, args: [], env: extensionEnv });
    }
    const runtimeEnv = buildLambdaEnvironment(spec, seen, runtimeApi, logStream, launch.env, platform, launch.interpreterDir);
    this.#runtimeStart = () => this.#c.processes.startRuntime({ ...base, command: launch.command, args: launch.args, env: runtimeEnv });
    this.advance();
  }

  /** Moves on: all external extensions registered -> the runtime starts; all ready -> done. */
  advance(): void {
    if (this.#phase === 'extensions' && this.#runtimeStart && this.#c.registry.allExternalRegistered()) {
      this.#phase = 'runtime';
      this.#runtimeStart();
    }
    if (this.#phase === 'extensions-ready' && this.#c.registry.allReady()) this.#complete();
  }

  /** The runtime's first `/next`: the function is initialised, registration closes. */
  runtimeInitialized(): void {
    this.#c.registry.closeRegistration();
    this.#phase = 'extensions-ready';
    this.advance();
  }

  #complete(): void {
    const durationMs = this.#end();
    const { hub, facts } = this.#c;
    hub.platform('platform.initRuntimeDone', events.initRuntimeDone(facts, 'success'));
    this.#reportExtensions();
    hub.platform('platform.initReport', events.initReport(facts, 'success', durationMs));
    hub.closeSubscriptions();
    this.#c.onComplete(durationMs);
    this.#resolve({ ok: true, initDurationMs: durationMs });
  }

  /** Init fails: INIT_REPORT with the status, the telemetry, and the environment stops. */
  fail(status: 'error' | 'timeout', errorType: string, errorMessage: string, payload = failureBody(errorType, errorMessage)): void {
    if (!this.pending) return;
    const initDurationMs = this.#end();
    const { hub, facts, logs } = this.#c;
    logs.platform(lines.initReportLine(initDurationMs, 'init', status, errorType));
    hub.platform('platform.initRuntimeDone', events.initRuntimeDone(facts, status, errorType));
    this.#reportExtensions();
    hub.platform('platform.initReport', events.initReport(facts, status, initDurationMs, errorType));
    this.#c.onFailure();
    this.#resolve({ ok: false, initDurationMs, status, errorType, errorMessage, payload });
  }

  #end(): number {
    this.#phase = 'over';
    clearTimeout(this.#timer);
    return performance.now() - this.#startedAt;
  }

  #timedOut(): void {
    this.fail('timeout', RuntimeErrorType.SandboxTimeout, `Init timed out after ${(this.#c.initTimeoutMs / 1000).toFixed(2)} seconds`);
  }

  /** EXTENSION lines and platform.extension events, as Lambda writes them at the end of Init. */
  #reportExtensions(): void {
    for (const ext of this.#c.registry.registered()) {
      const evs = [...ext.events];
      this.#c.logs.platform(lines.extensionLine(ext.name, ext.stateName, evs, ext.errorType));
      this.#c.hub.platform('platform.extension', events.extension(ext.name, ext.stateName, evs, ext.errorType));
    }
  }
}

/** The environment's /etc/hosts: the host's, with the sandbox's own names on loopback. */
async function writeHosts(root: string, sandboxAddress: string): Promise<string> {
  const file = path.join(root, 'hosts');
  const host = await readFile('/etc/hosts', 'utf8').catch(() => '127.0.0.1\tlocalhost\n');
  await mkdir(root, { recursive: true });
  await writeFile(file, `${host.endsWith('\n') ? host : host + '\n'}${sandboxAddress}\tsandbox.localdomain sandbox\n`);
  return file;
}
