/**
 * The function domain's operations: create, read, list, update code and configuration,
 * delete, and resolving what an invoke should run. Validates with Lambda's rules, stores
 * through the Store seam, keeps code through the Artifact seam, and keeps a cache of
 * records so the invoke path does not touch the store.
 */
import { randomUUID } from 'node:crypto';
import {
  InvalidParameterValueException,
  ResourceNotFoundException,
  PreconditionFailedException,
  ResourceConflictException,
  validationError,
} from '../errors/platform-errors.ts';
import type { ArtifactStore } from '../artifacts/types.ts';
import type { Store, ListPage } from '../store/types.ts';
import type { LauncherResolver } from '../runtimes/types.ts';
import { assertRuntimeUsable } from '../runtimes/catalog.ts';
import type { Clock } from '../clock/clock.ts';
import type { Logger } from '../logging/logger.ts';
import type { EnvironmentSpec } from '../environments/types.ts';
import type { FunctionRecord } from './types.ts';
import { functionArn, lambdaTimestamp, plainFunctionNamePattern, type FunctionRef } from './arn.ts';
import * as check from './validation.ts';
import { FunctionVersions } from './versions.ts';
import { FunctionAliases } from './aliases.ts';

export interface FunctionServiceOptions {
  store: Store;
  artifacts: ArtifactStore;
  launcher: LauncherResolver;
  clock: Clock;
  logger: Logger;
  region: string;
  accountId: string;
  /** Resolves and merges a function's Layers. */
  layers: LayerResolver;
  /** Called after a function's code or configuration changed or it was deleted. */
  onChanged: (functionName: string) => void;
}

/**
 * The layer seam the function domain needs: validating a function's `Layers` and the
 * merged /opt tree an environment mounts.
 */
export interface LayerResolver {
  /**
   * Checks a `Layers` request value (at most 5 layer version ARNs that exist and suit the
   * runtime and architecture) and returns the ARNs in order; throws AWS-shaped errors.
   */
  validate(value: unknown, runtime: string, architecture: string): Promise<string[]>;
  /** Host path of the layers merged in order (later ones win), or undefined for none. */
  mergedDir(layerVersionArns: string[]): Promise<string | undefined>;
  /** CodeSize (zip bytes) of each layer version, by ARN: the configuration's `Layers[].CodeSize`. */
  codeSizes(layerVersionArns: string[]): Promise<Record<string, number>>;
}

/** The request bodies of CreateFunction, UpdateFunctionCode and UpdateFunctionConfiguration. */
export type WireInput = Record<string, unknown>;

const LATEST = '$LATEST';

export class FunctionService {
  readonly #o: FunctionServiceOptions;
  readonly #cache = new Map<string, FunctionRecord>();
  readonly #codeDirs = new Map<string, string>();
  /** Specs by RevisionId: a record never changes without a new RevisionId. */
  readonly #specs = new Map<string, EnvironmentSpec>();

  readonly versions: FunctionVersions;
  readonly aliases: FunctionAliases;
  readonly #deletedListeners: Array<(functionName: string) => Promise<void>> = [];

  constructor(options: FunctionServiceOptions) {
    this.#o = options;
    this.versions = new FunctionVersions(options.store, options.clock);
    this.aliases = new FunctionAliases(options.store, (fn, v) => this.versionExists(fn, v));
  }

  /** Other subsystems drop what they keep for a function when it is deleted. */
  onDeleted(listener: (functionName: string) => Promise<void>): void {
    this.#deletedListeners.push(listener);
  }

  arn(functionName: string, qualifier?: string): string {
    return functionArn(this.#o.region, this.#o.accountId, functionName, qualifier);
  }

  notFound(functionName: string, qualifier?: string): ResourceNotFoundException {
    return new ResourceNotFoundException(`Function not found: ${this.arn(functionName, qualifier)}`);
  }

  /**
   * The record a reference names: `$LATEST` (no qualifier), a published version, or the
   * version an alias points to (its primary version). ResourceNotFoundException otherwise.
   */
  async get(ref: FunctionRef): Promise<FunctionRecord> {
    const latest = await this.#latest(ref);
    const q = ref.qualifier;
    if (q === undefined || q === LATEST) return latest;
    if (/^[0-9]+$/.test(q)) {
      const version = await this.versions.get(ref.functionName, q);
      if (!version) throw this.notFound(ref.functionName, q);
      return version;
    }
    const alias = await this.aliases.get(ref.functionName, q);
    if (!alias) throw this.notFound(ref.functionName, q);
    return this.#version(ref.functionName, alias.functionVersion, latest);
  }

  /** What an invoke of `ref` runs: through an alias, a version picked by the routing weights. */
  async resolveForInvoke(ref: FunctionRef): Promise<FunctionRecord> {
    const q = ref.qualifier;
    if (q === undefined || q === LATEST || /^[0-9]+$/.test(q)) return this.get(ref);
    const latest = await this.#latest(ref);
    const alias = await this.aliases.get(ref.functionName, q);
    if (!alias) throw this.notFound(ref.functionName, q);
    return this.#version(ref.functionName, FunctionAliases.pickVersion(alias), latest);
  }

  /** Only `$LATEST` can change: versions are immutable. */
  async #unqualified(ref: FunctionRef): Promise<FunctionRecord> {
    if (ref.qualifier !== undefined && ref.qualifier !== LATEST) {
      throw new InvalidParameterValueException(`Only the $LATEST version can be updated; ${this.arn(ref.functionName, ref.qualifier)} is immutable.`);
    }
    return this.#latest(ref);
  }

  async #latest(ref: FunctionRef): Promise<FunctionRecord> {
    const cached = this.#cache.get(ref.functionName);
    if (cached) return cached;
    const record = await this.#o.store.getFunction(ref.functionName);
    if (!record) throw this.notFound(ref.functionName, ref.qualifier);
    this.#cache.set(ref.functionName, record);
    return record;
  }

  async #version(functionName: string, version: string, latest: FunctionRecord): Promise<FunctionRecord> {
    if (version === LATEST) return latest;
    const record = await this.versions.get(functionName, version);
    if (!record) throw this.notFound(functionName, version);
    return record;
  }

  /** PublishVersion, with Lambda's CodeSha256 and RevisionId preconditions. */
  async publishVersion(ref: FunctionRef, input: WireInput): Promise<FunctionRecord> {
    const latest = await this.#latest(ref);
    if (input.CodeSha256 !== undefined && input.CodeSha256 !== latest.codeSha256) {
      throw new InvalidParameterValueException(
        `CodeSHA256 (${String(input.CodeSha256)}) is different from current CodeSHA256 in $LATEST (${latest.codeSha256}). Please try again.`,
      );
    }
    this.#checkRevision(latest, input.RevisionId);
    const description = input.Description === undefined ? undefined : check.checkDescription(input.Description);
    return this.versions.publish(latest, description);
  }

  /** Whether a version exists (`$LATEST` exists with the function). */
  async versionExists(functionName: string, version: string): Promise<boolean> {
    if (version === LATEST) return (await this.#o.store.getFunction(functionName)) !== undefined || this.#cache.has(functionName);
    return (await this.versions.get(functionName, version)) !== undefined;
  }

  list(marker: string | undefined, maxItems: number): Promise<ListPage<FunctionRecord>> {
    return this.#o.store.listFunctions({ marker, maxItems });
  }

  async create(input: WireInput): Promise<FunctionRecord> {
    const name = input.FunctionName;
    if (typeof name !== 'string' || !plainFunctionNamePattern.test(name)) {
      throw validationError(name, 'functionName', 'Member must satisfy regular expression pattern: [a-zA-Z0-9-_]{1,64}');
    }
    if (input.PackageType !== undefined && input.PackageType !== 'Zip') {
      throw new InvalidParameterValueException('Nimbus runs .zip file archives only: set PackageType to Zip and pass Code.ZipFile.');
    }
    const role = check.checkRole(input.Role);
    if (input.Runtime === undefined) throw new InvalidParameterValueException('Runtime and Handler are mandatory parameters for functions created with deployment packages.');
    const runtime = await this.#checkRuntime(input.Runtime, 'create');
    const handler = check.checkHandler(input.Handler);
    const base = {
      timeoutSeconds: input.Timeout === undefined ? check.limits.timeoutSeconds.default : check.checkInteger(input.Timeout, 'timeout', 1, 900),
      memoryMb: input.MemorySize === undefined ? check.limits.memoryMb.default : check.checkInteger(input.MemorySize, 'memorySize', 128, 10_240),
      description: input.Description === undefined ? '' : check.checkDescription(input.Description),
      environment: check.checkEnvironment(input.Environment),
      architectures: check.checkArchitectures(input.Architectures),
      ephemeralStorageMb: check.checkEphemeralStorage(input.EphemeralStorage),
      loggingConfig: check.checkLoggingConfig(input.LoggingConfig, name),
      tracingMode: check.checkTracingMode(input.TracingConfig),
      tags: check.checkTags(input.Tags),
    };
    const layers = await this.#o.layers.validate(input.Layers ?? [], runtime, base.architectures[0]!);
    const managedInstances = check.checkCapacityProviderConfig(input.CapacityProviderConfig);
    const deadLetterTargetArn = check.checkDeadLetterConfig(input.DeadLetterConfig);
    if (this.#cache.has(name) || (await this.#o.store.getFunction(name))) throw new ResourceConflictException(`Function already exist: ${name}`);
    const artifact = await this.#o.artifacts.putZip(this.#zipFrom(input.Code));
    const now = this.#o.clock.now();
    const record: FunctionRecord = {
      functionName: name,
      version: LATEST,
      runtime,
      handler,
      role,
      ...base,
      codeSha256: artifact.sha256Base64,
      codeSizeBytes: artifact.zipSizeBytes,
      lastModified: lambdaTimestamp(now),
      revisionId: randomUUID(),
      state: 'Active',
      lastUpdateStatus: 'Successful',
      layers,
      layerCodeSizes: await this.#o.layers.codeSizes(layers),
      ...(managedInstances ? { managedInstances } : {}),
      ...(deadLetterTargetArn ? { deadLetterTargetArn } : {}),
      createdAtMs: now.getTime(),
    };
    await this.#o.store.createFunction(record);
    this.#cache.set(name, record);
    if (input.Publish === true) return this.versions.publish(record, undefined);
    return record;
  }

  async updateCode(ref: FunctionRef, input: WireInput): Promise<FunctionRecord> {
    const current = await this.#unqualified(ref);
    await this.#checkRuntime(current.runtime, 'update');
    const zip = this.#zipFrom(input, 'ZipFile');
    this.#checkRevision(current, input.RevisionId);
    const artifact = await this.#o.artifacts.putZip(zip);
    if (input.DryRun === true) return { ...current, codeSha256: artifact.sha256Base64, codeSizeBytes: artifact.zipSizeBytes };
    const saved = await this.#save(current, { codeSha256: artifact.sha256Base64, codeSizeBytes: artifact.zipSizeBytes });
    return input.Publish === true ? this.versions.publish(saved, undefined) : saved;
  }

  async updateConfiguration(ref: FunctionRef, input: WireInput): Promise<FunctionRecord> {
    const current = await this.#unqualified(ref);
    const runtime = await this.#checkRuntime(input.Runtime ?? current.runtime, 'update');
    const changes: Partial<FunctionRecord> = { runtime };
    if (input.Role !== undefined) changes.role = check.checkRole(input.Role);
    if (input.Handler !== undefined) changes.handler = check.checkHandler(input.Handler);
    if (input.Timeout !== undefined) changes.timeoutSeconds = check.checkInteger(input.Timeout, 'timeout', 1, 900);
    if (input.MemorySize !== undefined) changes.memoryMb = check.checkInteger(input.MemorySize, 'memorySize', 128, 10_240);
    if (input.Description !== undefined) changes.description = check.checkDescription(input.Description);
    if (input.Environment !== undefined) changes.environment = check.checkEnvironment(input.Environment);
    if (input.EphemeralStorage !== undefined) changes.ephemeralStorageMb = check.checkEphemeralStorage(input.EphemeralStorage);
    if (input.LoggingConfig !== undefined) changes.loggingConfig = check.checkLoggingConfig(input.LoggingConfig, current.functionName);
    if (input.TracingConfig !== undefined) changes.tracingMode = check.checkTracingMode(input.TracingConfig);
    if (input.DeadLetterConfig !== undefined) changes.deadLetterTargetArn = check.checkDeadLetterConfig(input.DeadLetterConfig);
    if (input.Layers !== undefined) {
      changes.layers = await this.#o.layers.validate(input.Layers, runtime, current.architectures[0]!);
      changes.layerCodeSizes = await this.#o.layers.codeSizes(changes.layers);
    }
    this.#checkRevision(current, input.RevisionId);
    return this.#save(current, changes);
  }

  /** Tags change without a new RevisionId, as on Lambda. */
  async updateTags(functionName: string, change: (tags: Record<string, string>) => Record<string, string>): Promise<Record<string, string>> {
    const current = await this.#latest({ functionName });
    const next: FunctionRecord = { ...current, tags: change({ ...current.tags }) };
    await this.#o.store.updateFunction(next, current.revisionId);
    this.#cache.set(functionName, next);
    return next.tags;
  }

  /** DeleteFunction: the whole function, or one version with `Qualifier`. */
  async delete(ref: FunctionRef): Promise<void> {
    const q = ref.qualifier;
    if (q === LATEST) throw new InvalidParameterValueException('$LATEST version cannot be deleted without deleting the function.');
    if (q !== undefined) {
      if (!/^[0-9]+$/.test(q)) throw new InvalidParameterValueException('Deletion of aliases is not supported by DeleteFunction: use DeleteAlias.');
      await this.#latest(ref);
      if (!(await this.versions.get(ref.functionName, q))) throw this.notFound(ref.functionName, q);
      const aliases = await this.aliases.referencing(ref.functionName, q);
      if (aliases.length > 0) {
        throw new ResourceConflictException(`Unable to delete version because the following aliases reference it: [${aliases.join(', ')}]`);
      }
      await this.versions.delete(ref.functionName, q);
      this.#o.onChanged(ref.functionName);
      return;
    }
    const existed = await this.#o.store.deleteFunction(ref.functionName);
    this.#cache.delete(ref.functionName);
    if (!existed) throw this.notFound(ref.functionName);
    await this.versions.deleteAll(ref.functionName);
    await this.aliases.deleteAll(ref.functionName);
    for (const listener of this.#deletedListeners) await listener(ref.functionName);
    this.#o.onChanged(ref.functionName);
  }

  /** What an invoke of this record runs: the environment spec, with its code extracted. */
  async environmentSpec(record: FunctionRecord): Promise<EnvironmentSpec> {
    const cached = this.#specs.get(record.revisionId);
    if (cached) return cached;
    if (this.#specs.size > 1000) this.#specs.clear();
    const spec = await this.#buildSpec(record);
    this.#specs.set(record.revisionId, spec);
    return spec;
  }

  async #buildSpec(record: FunctionRecord): Promise<EnvironmentSpec> {
    const hex = Buffer.from(record.codeSha256, 'base64').toString('hex');
    let codeDir = this.#codeDirs.get(hex);
    if (!codeDir) {
      codeDir = await this.#o.artifacts.codeDir(hex);
      this.#codeDirs.set(hex, codeDir);
    }
    return {
      functionName: record.functionName,
      version: record.version,
      functionArn: this.arn(record.functionName),
      accountId: this.#o.accountId,
      runtimeId: record.runtime,
      handler: record.handler,
      memoryMb: record.memoryMb,
      timeoutSeconds: record.timeoutSeconds,
      ephemeralStorageMb: record.ephemeralStorageMb,
      variables: record.environment,
      codeDir,
      logFormat: record.loggingConfig.logFormat,
      logGroup: record.loggingConfig.logGroup,
      applicationLogLevel: record.loggingConfig.applicationLogLevel,
      systemLogLevel: record.loggingConfig.systemLogLevel,
      layersDir: await this.#o.layers.mergedDir(record.layers),
      region: this.#o.region,
      architecture: record.architectures[0] ?? 'x86_64',
      initializationType: record.managedInstances ? 'lambda-managed-instances' : 'on-demand',
      maxConcurrency: record.managedInstances?.maxConcurrency ?? 1,
      revisionId: record.revisionId,
    };
  }

  async #checkRuntime(value: unknown, operation: 'create' | 'update'): Promise<string> {
    const runtime = check.checkString(value, 'runtime');
    const info = assertRuntimeUsable(runtime, operation, this.#o.clock.now());
    // Refuses a runtime whose interpreter is absent, saying what to install; provisions Node majors.
    await this.#o.launcher.resolve(info.id);
    return info.id;
  }

  #checkRevision(current: FunctionRecord, revisionId: unknown): void {
    if (revisionId !== undefined && revisionId !== current.revisionId) {
      throw new PreconditionFailedException(
        'The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id',
      );
    }
  }

  #zipFrom(code: unknown, member = 'Code'): Buffer {
    const c = (code ?? {}) as Record<string, unknown>;
    if (c.S3Bucket !== undefined || c.S3Key !== undefined || c.ImageUri !== undefined) {
      throw new InvalidParameterValueException('Nimbus takes code as a .zip file archive in ZipFile; S3 locations and container images are not available locally.');
    }
    const zip = c.ZipFile;
    if (typeof zip !== 'string' || zip.length === 0) {
      throw new InvalidParameterValueException(`${member === 'Code' ? 'Code.ZipFile' : 'ZipFile'} is required: the .zip file archive, base64-encoded.`);
    }
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(zip) || zip.length % 4 === 1) {
      throw new InvalidParameterValueException('Could not unzip uploaded file. Please check your file, then try to upload again.');
    }
    return Buffer.from(zip, 'base64');
  }

  async #save(current: FunctionRecord, changes: Partial<FunctionRecord>): Promise<FunctionRecord> {
    const next: FunctionRecord = {
      ...current,
      ...changes,
      lastModified: lambdaTimestamp(this.#o.clock.now()),
      revisionId: randomUUID(),
      lastUpdateStatus: 'Successful',
    };
    await this.#o.store.updateFunction(next, current.revisionId);
    this.#cache.set(next.functionName, next);
    this.#o.onChanged(next.functionName);
    return next;
  }
}
