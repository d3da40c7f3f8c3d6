/**
 * The runtime catalog (Lambda's runtime identifiers and deprecation phases) and the
 * launchers that turn a runtime id into a process to start inside an environment.
 */

export type RuntimeFamily = 'nodejs' | 'python' | 'java' | 'dotnet' | 'ruby' | 'provided';

export interface RuntimeInfo {
  /** Lambda's identifier, e.g. `nodejs22.x`, `python3.13`, `provided.al2023`. */
  id: string;
  family: RuntimeFamily;
  /** Human name from Lambda's table, e.g. `Node.js 22`. */
  displayName: string;
  /** For nodejs: the Node major (22); for python: `3.13`; else undefined. */
  languageVersion?: string;
  /** ISO dates (YYYY-MM-DD) from Lambda's runtime table; absent when not scheduled. */
  deprecationDate?: string;
  blockCreateDate?: string;
  blockUpdateDate?: string;
  /** The runtime Lambda recommends moving to, e.g. `nodejs24.x`. */
  successor?: string;
}

/** What a runtime resolves to on this machine. */
export interface ResolvedInterpreter {
  runtimeId: string;
  /** Absolute path of the interpreter (node, python3), or undefined for `provided*`. */
  interpreterPath?: string;
  /** Version the interpreter reports, e.g. `v22.11.0` or `3.11.2`. */
  interpreterVersion?: string;
  /** True when the interpreter's version differs from the runtime's language version. */
  versionMismatch: boolean;
  /** Where the choice came from. */
  source: 'nimbus-node' | 'provisioned' | 'config' | 'host' | 'none';
}

/** How to start the runtime process of an environment (paths as seen inside it). */
export interface LaunchPlan {
  /** Executable to run. */
  command: string;
  args: string[];
  /** Environment variables the launcher adds (e.g. NODE_PATH, PYTHONPATH). */
  env: Record<string, string>;
  /** Host paths that must be visible read-only inside the sandbox (interpreters, client dirs). */
  readOnlyPaths: string[];
}

/** Where things are as the environment's processes see them. */
export interface LaunchEnvironment {
  /** The code dir: `/var/task` under bubblewrap, the host path otherwise. */
  taskRoot: string;
  /** The layers dir: `/opt` under bubblewrap, a per-environment host path otherwise. */
  optDir: string;
  /** The function's MemorySize, to size the interpreter's heap as Lambda does. */
  memoryMb: number;
}

export interface LauncherResolver {
  /**
   * Resolves the interpreter for a runtime, provisioning it if needed (a Node major
   * installed from the npm registry into the data dir, with progress reported).
   * Throws InvalidParameterValueException naming what to install if it is absent.
   */
  resolve(runtimeId: string): Promise<ResolvedInterpreter>;
  /**
   * The launch plan for a managed runtime (nodejs*, python*): the interpreter and
   * Nimbus's own runtime client. `provided*` runtimes are launched by the environment
   * itself (their `bootstrap`), so this throws for them.
   */
  launchPlan(runtimeId: string, environment: LaunchEnvironment): Promise<LaunchPlan>;
}
