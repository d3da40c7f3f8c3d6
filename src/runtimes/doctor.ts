/**
 * The data behind `nimbus doctor`: for each runtime, where it stands in Lambda's deprecation
 * schedule and what would run it on this machine (or what to install). Rendering is the CLI's.
 *
 * Doctor does not download anything unless asked: a Node.js major that is not installed yet
 * is reported as "will be provisioned on first use".
 */
import { PlatformError } from '../errors/platform-errors.ts';
import { runtimePhase, type RuntimeCatalog, type RuntimePhase } from './catalog.ts';
import type { ResolvedInterpreter, RuntimeFamily } from './types.ts';

/** What doctor needs from a resolver; LocalLauncherResolver provides both methods. */
export interface DoctorResolver {
  resolve(runtimeId: string): Promise<ResolvedInterpreter>;
  /** True when `resolve` would first download an interpreter (a Node.js major). */
  needsProvisioning?(runtimeId: string): Promise<boolean>;
}

/**
 * - ready: an interpreter is there (see versionMismatch);
 * - will-provision: a Node.js major to be installed from the npm registry on first use;
 * - no-interpreter: an OS-only runtime, which runs the function's own bootstrap;
 * - unavailable: cannot run on this machine; `note` says why and what to install.
 */
export type DoctorStatus = 'ready' | 'will-provision' | 'no-interpreter' | 'unavailable';

export interface DoctorEntry {
  runtimeId: string;
  displayName: string;
  family: RuntimeFamily;
  phase: RuntimePhase;
  /** True in every phase after Lambda's deprecation date. */
  deprecated: boolean;
  deprecationDate?: string;
  blockCreateDate?: string;
  blockUpdateDate?: string;
  successor?: string;
  status: DoctorStatus;
  interpreterPath?: string;
  interpreterVersion?: string;
  source?: ResolvedInterpreter['source'];
  versionMismatch: boolean;
  /** The install hint, the provisioning notice or the version-mismatch warning. */
  note?: string;
}

export interface DoctorOptions {
  /** Install missing Node.js majors now instead of reporting them (default false). */
  provision?: boolean;
  /** Also list runtimes whose updates Lambda already blocks (default false). */
  includeBlocked?: boolean;
}

export async function doctorReport(
  resolver: DoctorResolver,
  catalog: RuntimeCatalog,
  now: Date,
  options: DoctorOptions = {},
): Promise<DoctorEntry[]> {
  const entries: DoctorEntry[] = [];
  for (const info of catalog.listRuntimes()) {
    const phase = runtimePhase(info, now);
    if (phase === 'update-blocked' && !options.includeBlocked) continue;
    const entry: DoctorEntry = {
      runtimeId: info.id,
      displayName: info.displayName,
      family: info.family,
      phase,
      deprecated: phase !== 'supported',
      deprecationDate: info.deprecationDate,
      blockCreateDate: info.blockCreateDate,
      blockUpdateDate: info.blockUpdateDate,
      successor: info.successor,
      status: 'ready',
      versionMismatch: false,
    };
    // One runtime at a time: resolutions share cached probes, and provisioning is sequential.
    entries.push(await inspect(resolver, entry, options.provision === true));
  }
  return entries;
}

async function inspect(resolver: DoctorResolver, entry: DoctorEntry, provision: boolean): Promise<DoctorEntry> {
  const id = entry.runtimeId;
  try {
    if (!provision && (await resolver.needsProvisioning?.(id))) {
      return { ...entry, status: 'will-provision', note: `Node.js will be provisioned on first use (installed from the npm registry).` };
    }
    const resolved = await resolver.resolve(id);
    if (resolved.source === 'none') {
      return { ...entry, status: 'no-interpreter', source: 'none', note: "Runs the function's own bootstrap executable." };
    }
    const ready: DoctorEntry = {
      ...entry,
      status: 'ready',
      interpreterPath: resolved.interpreterPath,
      interpreterVersion: resolved.interpreterVersion,
      source: resolved.source,
      versionMismatch: resolved.versionMismatch,
    };
    if (resolved.versionMismatch) {
      ready.note =
        `${id} will run on ${resolved.interpreterVersion} (${resolved.interpreterPath}), not the version Lambda runs: ` +
        `behaviour may differ. Point ${id} at a matching interpreter in the Nimbus config file to avoid this.`;
    }
    return ready;
  } catch (err) {
    if (!(err instanceof PlatformError)) throw err;
    return { ...entry, status: 'unavailable', note: err.message };
  }
}
