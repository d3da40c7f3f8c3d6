/**
 * The one wiring point: builds Nimbus's subsystems from a ResolvedConfig, with the
 * embedded defaults behind each seam (SQLite store, file artifact store, local
 * invoker), and owns the daemon's lifecycle and its shutdown order:
 * stop accepting -> drain and stop environments -> flush logs -> close the store.
 */
import path from 'node:path';
import { mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ResolvedConfig } from './config/resolved-config.ts';
import type { Logger } from './logging/logger.ts';
import { StateMachine } from './lifecycle/state-machine.ts';
import { SqliteStore } from './store/sqlite-store.ts';
import { FileArtifactStore } from './artifacts/file-artifact-store.ts';
import { LocalLauncherResolver } from './runtimes/launcher-resolver.ts';
import { createSandbox, type SandboxSupervisor } from './environments/sandbox.ts';
import { Invoker } from './invoker/invoker.ts';
import { InvocationService } from './invoker/invocation-service.ts';
import { FunctionService } from './functions/function-service.ts';
import { LayerService } from './layers/layer-service.ts';
import { publishBuiltinLayers } from './layers/builtin-layers.ts';
import type { LayerVersionRecord } from './layers/types.ts';
import { FileOptMerger } from './layers/merged-opt.ts';
import { BatchingLogSink } from './logs/batching-log-sink.ts';
import { ApiServer } from './api/http.ts';
import { functionRoutes } from './api/routes/functions.ts';
import { versionRoutes } from './api/routes/versions.ts';
import { tagRoutes } from './api/routes/tags.ts';
import { concurrencyRoutes } from './api/routes/concurrency.ts';
import { ReservedConcurrency } from './functions/concurrency.ts';
import { ProvisionedConcurrency } from './invoker/provisioned-concurrency.ts';
import { provisionedConcurrencyRoutes } from './api/routes/provisioned-concurrency.ts';
import { AsyncDispatcher } from './invoker/async/async-dispatcher.ts';
import { EventInvokeConfigs } from './invoker/async/event-invoke-configs.ts';
import { BuiltinQueues } from './invoker/async/builtin-queues.ts';
import { eventInvokeConfigRoutes } from './api/routes/event-invoke-configs.ts';
import { queueRoutes } from './api/routes/queues.ts';
import { invokeRoutes } from './api/routes/invoke.ts';
import { invokeStreamRoutes } from './api/routes/invoke-stream.ts';
import { accountRoutes } from './api/routes/account.ts';
import { nimbusRoutes } from './api/routes/nimbus.ts';
import { telemetryRoutes } from './api/routes/telemetry.ts';
import { securityRoutes } from './api/routes/security.ts';
import { DenyListService } from './appsec/deny-list-service.ts';
import { SqliteTelemetryStore } from './store/sqlite-telemetry-store.ts';
import { TelemetryService } from './telemetry/telemetry-service.ts';
import { layerRoutes } from './api/routes/layers.ts';
import { functionUrlRoutes } from './api/routes/function-urls.ts';
import { createFrontDoors } from './triggers/wiring.ts';

export type ServerState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

const clientsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'runtimes', 'clients');

export interface NimbusServerOptions {
  /** Builds the invoker (`nimbus dev` runs functions from their source folders through its own). */
  createInvoker?: (options: ConstructorParameters<typeof Invoker>[0]) => Invoker;
}

export class NimbusServer {
  readonly config: ResolvedConfig;
  readonly sandbox: SandboxSupervisor;
  readonly #logger: Logger;
  readonly #machine: StateMachine<ServerState>;
  readonly #store: SqliteStore;
  readonly #logSink: BatchingLogSink;
  readonly #invoker: Invoker;
  readonly #api: ApiServer;
  readonly #workRoot: string;
  readonly #reserved: ReservedConcurrency;
  readonly #async: AsyncDispatcher;
  readonly #provisioned: ProvisionedConcurrency;
  readonly #telemetry: TelemetryService;
  #url = '';
  readonly #layers: LayerService;
  /** The built-in `nimbus-agent` layer, published in the background at start. */
  #agentLayer: Promise<LayerVersionRecord | undefined> = Promise.resolve(undefined);
  #agentLayerArn: string | undefined;

  constructor(config: ResolvedConfig, logger: Logger, onFunctionLog?: (line: string) => void, options: NimbusServerOptions = {}) {
    this.config = config;
    this.#logger = logger;
    this.#machine = new StateMachine<ServerState>(
      'server',
      'created',
      { created: ['starting'], starting: ['running', 'stopping'], running: ['stopping'], stopping: ['stopped'], stopped: [] },
      (from, to) => logger.debug('server state', { from, to }),
    );
    this.sandbox = createSandbox(config.sandbox);
    this.#store = SqliteStore.open({ filePath: path.join(config.dataDir, 'nimbus.db'), logRetentionPerFunction: config.logRetentionPerFunction });
    this.#telemetry = new TelemetryService({
      store: SqliteTelemetryStore.open({ filePath: path.join(config.dataDir, 'nimbus.db') }),
      logger,
      retentionHours: config.telemetryRetentionHours,
      maxRowsPerTable: config.telemetryMaxRows,
    });
    const artifacts = new FileArtifactStore({ rootDir: path.join(config.dataDir, 'artifacts') });
    const launcher = new LocalLauncherResolver({
      runtimesDir: config.runtimesDir,
      interpreterOverrides: { ...config.interpreterOverrides },
      nimbusNodePath: process.execPath,
      clientsDir,
      onProgress: (line) => logger.info(line),
    });
    this.#logSink = new BatchingLogSink({
      store: this.#store,
      logger,
      echo: onFunctionLog ? (line) => onFunctionLog(`[${line.functionName}] ${line.message}`) : undefined,
    });
    this.#workRoot = path.join(config.dataDir, 'environments');
    this.#reserved = new ReservedConcurrency(this.#store, config.accountConcurrencyLimit);
    this.#invoker = (options.createInvoker ?? ((o) => new Invoker(o)))({
      sandbox: this.sandbox,
      launcher,
      logSink: this.#logSink,
      logger,
      workRoot: this.#workRoot,
      initTimeoutMs: config.initTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      concurrency: this.#reserved,
      scalingPer10Seconds: config.scalingPer10Seconds,
      telemetryEndpoint: () => (this.#url ? `${this.#url}/nimbus/v1/telemetry` : undefined),
    });
    const layers = (this.#layers = new LayerService({
      store: this.#store,
      artifacts,
      merger: new FileOptMerger({ rootDir: path.join(config.dataDir, 'artifacts', 'opt'), logger }),
      clock: config.clock,
      logger,
      region: config.region,
      accountId: config.accountId,
    }));
    const functions = new FunctionService({
      store: this.#store,
      artifacts,
      launcher,
      clock: config.clock,
      logger,
      region: config.region,
      accountId: config.accountId,
      layers,
      onChanged: (name) => void this.#invoker.retireFunction(name),
    });
    functions.onDeleted((name) => this.#reserved.delete(name));
    const invocations = new InvocationService(functions, this.#invoker);
    const frontDoors = createFrontDoors({
      store: this.#store,
      clock: config.clock,
      functions,
      invoker: invocations,
      region: config.region,
      accountId: config.accountId,
      accessKeys: config.accessKeys,
      logger,
      baseUrl: () => this.#url,
    });
    functions.onDeleted((name) => frontDoors.urls.deleteAll(name));
    this.#provisioned = new ProvisionedConcurrency({
      store: this.#store,
      functions,
      invoker: this.#invoker,
      reservedFor: (name) => this.#reserved.reservedFor(name),
      clock: config.clock,
      logger,
    });
    functions.onDeleted((name) => this.#provisioned.deleteAll(name));
    const eventInvokeConfigs = new EventInvokeConfigs(this.#store, config.clock);
    functions.onDeleted((name) => eventInvokeConfigs.deleteAll(name));
    functions.onDeleted((name) => this.#telemetry.deleteFunction(name));
    const queues = new BuiltinQueues(this.#store, config.clock);
    this.#async = new AsyncDispatcher({
      queue: this.#store,
      invocations,
      functions,
      configs: eventInvokeConfigs,
      queues,
      reservedFor: (name) => this.#reserved.reservedFor(name),
      logger,
      retryDelaysMs: config.asyncRetryDelaysMs,
      throttleBaseMs: config.asyncThrottleBaseMs,
      throttleMaxMs: 300_000,
      // Attempts at once: each needs an environment; on a laptop's few cores more of them
      // only add cold starts (measured with bench/async: 8 delivers 0.58x sync, 32 0.33x).
      maxInFlight: 8,
    });
    const common = {
      functions,
      region: config.region,
      accountId: config.accountId,
      baseUrl: () => this.#url,
      reservedFor: (name: string) => this.#reserved.reservedFor(name),
    };
    this.#api = new ApiServer(
      [
        ...functionRoutes(common),
        ...versionRoutes(common),
        ...tagRoutes(common),
        ...invokeRoutes({ ...common, invocations, async: this.#async }),
        ...invokeStreamRoutes({ ...common, invocations }),
        ...eventInvokeConfigRoutes({ ...common, configs: eventInvokeConfigs }),
        ...queueRoutes({ queues, async: this.#async, region: config.region, accountId: config.accountId }),
        ...concurrencyRoutes({ ...common, reserved: this.#reserved }),
        ...provisionedConcurrencyRoutes({ ...common, provisioned: this.#provisioned }),
        ...accountRoutes({ store: this.#store, reserved: this.#reserved }),
        ...layerRoutes({ layers, baseUrl: () => this.#url }),
        ...functionUrlRoutes({ ...common, urls: frontDoors.urls, functionUrl: frontDoors.functionUrl, arn: (n, q) => functions.arn(n, q) }),
        ...frontDoors.routes,
        ...telemetryRoutes({ ...common, telemetry: this.#telemetry }),
        ...securityRoutes({ denyList: new DenyListService(this.#store, config.clock) }),
        ...nimbusRoutes({
          ...common,
          store: this.#store,
          artifacts,
          flushLogs: () => this.#logSink.flush(),
          info: () => ({
            sandbox: this.sandbox.kind,
            region: config.region,
            accountId: config.accountId,
            async: this.#async.stats,
            memory: process.memoryUsage(),
            agentLayerArn: this.#agentLayerArn,
          }),
        }),
      ],
      logger,
      frontDoors.hook,
    );
  }

  get state(): ServerState {
    return this.#machine.state;
  }

  get url(): string {
    return this.#url;
  }

  /** The built-in agent layer's version ARN, once published (undefined if that failed). */
  async agentLayerArn(): Promise<string | undefined> {
    await this.#agentLayer;
    return this.#agentLayerArn;
  }

  async start(): Promise<string> {
    this.#machine.transition('starting');
    // Environments of a previous run that died without cleaning up leave only files.
    await this.#reserved.load();
    await this.#telemetry.start();
    await rm(this.#workRoot, { recursive: true, force: true });
    await mkdir(this.#workRoot, { recursive: true });
    const address = await this.#api.listen(this.config.host, this.config.port);
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.#url = `http://${host}:${address.port}`;
    await this.#provisioned.restore();
    await this.#async.start();
    // Not awaited: the first build bundles the agent (about a second); nothing else waits for it.
    this.#agentLayer = publishBuiltinLayers(this.#layers, this.#logger).then(
      (record) => {
        this.#agentLayerArn = this.#layers.versionArn(record);
        return record;
      },
      (err: Error) => {
        this.#logger.warn('the built-in nimbus-agent layer could not be published', { error: err.message });
        return undefined;
      },
    );
    this.#machine.transition('running');
    return this.#url;
  }

  /** Clean shutdown: no new requests, environments stopped, logs flushed, store closed. */
  async stop(): Promise<void> {
    if (this.#machine.state === 'stopping' || this.#machine.state === 'stopped') return;
    this.#machine.transition('stopping');
    // Async attempts still running stay in flight in the store and are delivered again
    // after the next start, so nothing queued is lost.
    this.#async.close();
    // Environments first, while the API still listens: their extensions get SHUTDOWN and
    // send what they hold (the Nimbus agent, to this server's telemetry intake). The
    // invoker refuses new invocations from here on.
    await this.#invoker.close();
    await this.#api.close();
    await this.#logSink.flush();
    await this.#telemetry.close();
    await this.#agentLayer;
    await this.#store.close();
    this.#machine.transition('stopped');
  }
}
