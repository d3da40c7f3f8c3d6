/**
 * Decides which interpreter runs each runtime on this machine, and how to start Nimbus's
 * runtime client with it (the launch plan).
 *
 * Rules, in order: an interpreter set for the runtime in the Nimbus config file wins;
 * nodejs<N>.x runs on the Node.js Nimbus itself runs on when N is its major, else on Node.js N
 * provisioned from the npm registry; python<X.Y> runs on `python<X.Y>` from PATH, else
 * `python3` (flagged when its version differs); provided* needs no interpreter. Java, .NET and
 * Ruby are refused: Nimbus has no runtime client for them yet.
 *
 * Probing an interpreter's version spawns a process, so every answer is cached.
 */
import { execFile } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { basename, delimiter, dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { promisify } from 'node:util';
import { InvalidParameterValueException, PlatformError } from '../errors/platform-errors.ts';
import { lookupRuntime } from './catalog.ts';
import { isExecutable, NodeProvisioner, nodeVersion } from './node-provisioner.ts';
import type { LaunchEnvironment, LaunchPlan, LauncherResolver, ResolvedInterpreter, RuntimeInfo } from './types.ts';

const execFileAsync = promisify(execFile);

export interface LocalLauncherResolverOptions {
  /** Where provisioned Node.js majors live (`<runtimesDir>/node-<major>/`). */
  runtimesDir: string;
  /** Runtime id -> interpreter path, from the user's config file. */
  interpreterOverrides: Record<string, string>;
  /** The Node.js Nimbus runs on (process.execPath). */
  nimbusNodePath: string;
  /** Absolute path of src/runtimes/clients. */
  clientsDir: string;
  /** Progress of slow work (a Node.js download), one line at a time. */
  onProgress?: (line: string) => void;
  /** Environment whose PATH is searched and which npm runs with; default process.env. */
  env?: Record<string, string | undefined>;
}

/** What the resolver keeps per runtime: the public answer plus what launch plans need. */
interface Resolution {
  interpreter: ResolvedInterpreter;
  /** Install roots of the interpreter, to be visible read-only inside the sandbox. */
  installRoots: string[];
}

interface PythonProbe {
  executable: string;
  version: string;
  prefix: string;
  basePrefix: string;
}

const PYTHON_PROBE =
  'import json, platform, sys; print(json.dumps({"executable": sys.executable, ' +
  '"version": platform.python_version(), "prefix": sys.prefix, "basePrefix": sys.base_prefix}))';

const NOT_SUPPORTED: Record<string, { language: string; command: string; aptPackage: (v: string) => string }> = {
  java: { language: 'Java', command: 'java', aptPackage: (v) => `openjdk-${v}-jre-headless` },
  dotnet: { language: '.NET', command: 'dotnet', aptPackage: (v) => `dotnet-runtime-${v}.0` },
  ruby: { language: 'Ruby', command: 'ruby', aptPackage: () => 'ruby' },
};

export class LocalLauncherResolver implements LauncherResolver {
  readonly #options: LocalLauncherResolverOptions;
  readonly #env: Record<string, string | undefined>;
  readonly #provisioner: NodeProvisioner;
  readonly #resolutions = new Map<string, Promise<Resolution>>();
  readonly #probes = new Map<string, Promise<unknown>>();

  constructor(options: LocalLauncherResolverOptions) {
    this.#options = options;
    this.#env = options.env ?? process.env;
    this.#provisioner = new NodeProvisioner({ runtimesDir: options.runtimesDir, env: this.#env });
  }

  async resolve(runtimeId: string): Promise<ResolvedInterpreter> {
    return { ...(await this.#resolution(runtimeId)).interpreter };
  }

  /** True when resolving this runtime would download a Node.js major first. */
  async needsProvisioning(runtimeId: string): Promise<boolean> {
    const info = lookupRuntime(runtimeId);
    if (!info || info.family !== 'nodejs' || this.#override(runtimeId) !== undefined) return false;
    const major = nodeMajor(info);
    if (major === majorOf(await this.#nimbusNodeVersion())) return false;
    return !(await this.#provisioner.isInstalled(major));
  }

  async launchPlan(runtimeId: string, environment: LaunchEnvironment): Promise<LaunchPlan> {
    const { interpreter, installRoots } = await this.#resolution(runtimeId);
    const info = knownRuntime(runtimeId);
    const { taskRoot, optDir } = environment;
    const clientsDir = this.#options.clientsDir;
    if (info.family === 'nodejs') {
      const runtimeDir = join(clientsDir, 'node');
      return {
        command: mustHave(interpreter),
        args: [...lambdaNodeFlags(environment.memoryMb), join(runtimeDir, 'index.mjs')],
        // Lambda's /var/runtime/bootstrap order, with the layers dir for /opt and Nimbus's
        // client dir for /var/runtime. Like Lambda, the caller keeps a NODE_PATH the user set.
        env: {
          NODE_PATH: [
            join(optDir, 'nodejs', `node${nodeMajor(info)}`, 'node_modules'),
            join(optDir, 'nodejs', 'node_modules'),
            join(runtimeDir, 'node_modules'),
            runtimeDir,
            taskRoot,
          ].join(':'),
        },
        readOnlyPaths: unique([...installRoots, runtimeDir]),
      };
    }
    if (info.family === 'python') {
      const runtimeDir = join(clientsDir, 'python');
      return {
        command: mustHave(interpreter),
        args: [join(runtimeDir, 'bootstrap.py')],
        env: {
          // Lambda's sys.path order for layers; the client puts the task root first itself.
          PYTHONPATH: [join(optDir, 'python', 'lib', `python${info.languageVersion}`, 'site-packages'), join(optDir, 'python')].join(':'),
          // Lambda's Python client writes logs unbuffered; so must ours, or output lags invokes.
          PYTHONUNBUFFERED: '1',
        },
        readOnlyPaths: unique([...installRoots, runtimeDir]),
      };
    }
    throw new InvalidParameterValueException(
      `Runtime ${runtimeId} has no launch plan: OS-only runtimes start the function's own bootstrap executable.`,
    );
  }

  #resolution(runtimeId: string): Promise<Resolution> {
    let pending = this.#resolutions.get(runtimeId);
    if (!pending) {
      pending = this.#resolveUncached(runtimeId);
      this.#resolutions.set(runtimeId, pending);
      // A failure is not cached: the user may install the interpreter and try again.
      pending.catch(() => this.#resolutions.delete(runtimeId));
    }
    return pending;
  }

  async #resolveUncached(runtimeId: string): Promise<Resolution> {
    const info = knownRuntime(runtimeId);
    if (info.family === 'nodejs') return this.#resolveNode(info);
    if (info.family === 'python') return this.#resolvePython(info);
    if (info.family === 'provided') {
      if (info.id === 'go1.x') {
        throw new InvalidParameterValueException(
          'Runtime go1.x is not supported by Nimbus: build the function for provided.al2023 with a bootstrap executable, as Lambda recommends.',
        );
      }
      return { interpreter: { runtimeId, versionMismatch: false, source: 'none' }, installRoots: [] };
    }
    return this.#refuseUnsupported(info);
  }

  async #resolveNode(info: RuntimeInfo): Promise<Resolution> {
    const major = nodeMajor(info);
    const override = this.#override(info.id);
    let path: string;
    let source: ResolvedInterpreter['source'];
    let installRoots: string[];
    if (override !== undefined) {
      path = await this.#overridePath(info.id, override);
      source = 'config';
      installRoots = [installRoot(await realpath(path))];
    } else if (major === majorOf(await this.#nimbusNodeVersion())) {
      path = this.#options.nimbusNodePath;
      source = 'nimbus-node';
      installRoots = [installRoot(await realpath(path))];
    } else {
      const provisioned = await this.#provisioner.provision(major, this.#options.onProgress);
      path = provisioned.binaryPath;
      source = 'provisioned';
      installRoots = [provisioned.installDir];
    }
    const version = source === 'nimbus-node' ? await this.#nimbusNodeVersion() : await this.#probeNode(path);
    const interpreter: ResolvedInterpreter = {
      runtimeId: info.id,
      interpreterPath: path,
      interpreterVersion: version,
      versionMismatch: majorOf(version) !== major,
      source,
    };
    return { interpreter, installRoots };
  }

  async #resolvePython(info: RuntimeInfo): Promise<Resolution> {
    const runtimeId = info.id;
    const wanted = info.languageVersion ?? '';
    const override = this.#override(runtimeId);
    let candidate: string | undefined;
    let probe: PythonProbe | undefined;
    if (override !== undefined) {
      candidate = await this.#overridePath(runtimeId, override);
      probe = await this.#probePython(candidate);
    } else {
      // An exact `python3.12` first; version managers (pyenv) may leave shims on PATH for
      // versions that are not active, so a candidate that fails to run is skipped.
      for (const command of [`python${wanted}`, 'python3']) {
        candidate = await this.#findOnPath(command);
        probe = candidate === undefined ? undefined : await this.#probePython(candidate).catch(() => undefined);
        if (probe) break;
      }
    }
    if (candidate === undefined || probe === undefined) {
      throw new InvalidParameterValueException(
        `Runtime ${runtimeId} needs a Python ${wanted} interpreter, which is not installed on this machine: ` +
          'install it (e.g. apt-get install python3) or point the runtime at an interpreter in the Nimbus config file.',
      );
    }
    const interpreter: ResolvedInterpreter = {
      runtimeId,
      // sys.executable is the real interpreter behind shims (pyenv) and symlinks.
      interpreterPath: isAbsolute(probe.executable) ? probe.executable : candidate,
      interpreterVersion: probe.version,
      versionMismatch: probe.version.split('.').slice(0, 2).join('.') !== wanted,
      source: override !== undefined ? 'config' : 'host',
    };
    const roots = [probe.prefix, probe.basePrefix];
    const executableDir = dirname(await realpath(interpreter.interpreterPath ?? candidate));
    if (!roots.some((root) => isInside(executableDir, root))) roots.push(executableDir);
    return { interpreter, installRoots: unique(roots) };
  }

  async #refuseUnsupported(info: RuntimeInfo): Promise<never> {
    const language = NOT_SUPPORTED[info.family];
    const version = /(\d+(?:\.\d+)?)/.exec(info.id)?.[1] ?? '';
    const override = this.#override(info.id);
    const found = override !== undefined ? await this.#overridePath(info.id, override) : await this.#findOnPath(language.command);
    if (found === undefined) {
      throw new InvalidParameterValueException(
        `Runtime ${info.id} needs a ${language.language} ${version} runtime, which is not installed on this machine: ` +
          `install it (e.g. apt-get install ${language.aptPackage(version)}) or point the runtime at an interpreter in the Nimbus config file. ` +
          `Note that Nimbus has no ${language.language} runtime client yet, so it cannot run ${info.id} functions even then.`,
      );
    }
    throw new InvalidParameterValueException(
      `Runtime ${info.id} is not supported by Nimbus yet: Nimbus has no ${language.language} runtime client, ` +
        `so it cannot run ${info.id} functions even though ${found} is installed.`,
    );
  }

  #override(runtimeId: string): string | undefined {
    const value = this.#options.interpreterOverrides[runtimeId];
    return value === undefined || value === '' ? undefined : value;
  }

  async #overridePath(runtimeId: string, configured: string): Promise<string> {
    const path = configured.includes('/') ? resolvePath(configured) : await this.#findOnPath(configured);
    if (path === undefined || !(await isExecutable(path))) {
      throw new InvalidParameterValueException(
        `The Nimbus config file points runtime ${runtimeId} at ${configured}, which is not an executable file.`,
      );
    }
    return path;
  }

  async #findOnPath(command: string): Promise<string | undefined> {
    for (const dir of (this.#env.PATH ?? '').split(delimiter)) {
      if (dir === '') continue;
      const candidate = resolvePath(dir, command);
      if (await isExecutable(candidate)) return candidate;
    }
    return undefined;
  }

  #nimbusNodeVersion(): Promise<string> {
    const path = this.#options.nimbusNodePath;
    return path === process.execPath ? Promise.resolve(process.version) : this.#probeNode(path);
  }

  #probeNode(path: string): Promise<string> {
    return this.#probeOnce(`node:${path}`, () => nodeVersion(path).catch((err) => {
      throw probeFailed(path, err);
    }));
  }

  #probePython(path: string): Promise<PythonProbe> {
    return this.#probeOnce(`python:${path}`, async () => {
      try {
        // -I: ignore PYTHON* variables and the user's site dir, which must not sway the probe.
        const { stdout } = await execFileAsync(path, ['-I', '-c', PYTHON_PROBE], { env: this.#env, timeout: 30_000 });
        return JSON.parse(stdout) as PythonProbe;
      } catch (err) {
        throw probeFailed(path, err);
      }
    });
  }

  #probeOnce<T>(key: string, probe: () => Promise<T>): Promise<T> {
    let pending = this.#probes.get(key) as Promise<T> | undefined;
    if (!pending) {
      pending = probe();
      this.#probes.set(key, pending);
      pending.catch(() => this.#probes.delete(key));
    }
    return pending;
  }
}

/**
 * Heap flags as Lambda's Node.js bootstrap (/var/runtime/bootstrap) sets them: a tenth of the
 * function's memory for the young generation (half of it per semi-space), the rest for the
 * old generation, all in MB with shell integer division; plus an 80 KB HTTP header limit,
 * which the same bootstrap passes. That bootstrap also passes --expose-gc, but the flag
 * costs about 14 ms of start-up here (measured: 38 ms to the first /next without it, 52 ms
 * with it), so the runtime client defines `gc` lazily instead, on first use.
 */
export function lambdaNodeFlags(memoryMb: number): string[] {
  const memory = Math.max(1, Math.floor(memoryMb));
  const newSpace = Math.floor(memory / 10);
  const semiSpace = Math.floor(newSpace / 2);
  const oldSpace = memory - newSpace;
  return ['--max-http-header-size', '81920', `--max-semi-space-size=${semiSpace}`, `--max-old-space-size=${oldSpace}`];
}

function knownRuntime(runtimeId: string): RuntimeInfo {
  const info = lookupRuntime(runtimeId);
  if (!info) {
    throw new InvalidParameterValueException(`Unknown runtime '${runtimeId}': run \`nimbus doctor\` to list the runtimes Nimbus knows.`);
  }
  return info;
}

function nodeMajor(info: RuntimeInfo): number {
  return Number.parseInt(info.languageVersion ?? '', 10);
}

/** `v22.11.0` -> 22. */
function majorOf(version: string): number {
  return Number.parseInt(version.replace(/^v/, ''), 10);
}

/** The directory a binary was installed under: the parent of its `bin/`, else its own dir. */
function installRoot(binaryRealPath: string): string {
  const dir = dirname(binaryRealPath);
  return basename(dir) === 'bin' ? dirname(dir) : dir;
}

function isInside(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith('/') ? root : `${root}/`);
}

function unique(paths: string[]): string[] {
  return [...new Set(paths)];
}

function mustHave(interpreter: ResolvedInterpreter): string {
  if (interpreter.interpreterPath === undefined) throw new Error(`no interpreter resolved for ${interpreter.runtimeId}`);
  return interpreter.interpreterPath;
}

function probeFailed(path: string, err: unknown): PlatformError {
  const why = err instanceof Error ? err.message : String(err);
  return new InvalidParameterValueException(`Could not run ${path} to read its version: ${why}`, { cause: err });
}
