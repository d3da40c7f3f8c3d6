/**
 * The execution environment lifecycle as Lambda documents it
 * (shared/reference/lambda-interfaces.md §2.4), written out as transition tables.
 *
 * Environment:
 *
 *   created -> initializing -> ready <-> invoking      (any state -> stopping -> stopped)
 *
 *   `initializing` runs Init: extensions start and register, then the runtime starts,
 *   then the function initialises; Init ends when the runtime and every registered
 *   extension have called `next`. `ready` means no invocation is in flight; `invoking`
 *   means at least one is (one on demand, up to MaxConcurrency on managed instances).
 *
 * Invocation (one per invoke):
 *
 *   queued -> running -> post-runtime -> done          (queued | running -> done on failure)
 *
 *   `queued` waits for a runtime `/next` (managed instances only), `running` is with the
 *   runtime, `post-runtime` has the caller's answer but waits for the runtime's next
 *   `/next` and for every extension registered for INVOKE to call `next` again.
 *
 * Extension (RIE's agent states, with the names its 403 messages use):
 *
 *   started -> registered -> ready <-> running
 *   registered -> init-error | exit-error;  ready | running -> exit-error
 *   running -> exited | shutdown-failed (after SHUTDOWN);  started -> launch-error
 */
import type { TransitionTable } from '../lifecycle/state-machine.ts';

export type EnvironmentState = 'created' | 'initializing' | 'ready' | 'invoking' | 'stopping' | 'stopped';

export const environmentTransitions: TransitionTable<EnvironmentState> = {
  created: ['initializing', 'stopping'],
  initializing: ['ready', 'stopping'],
  ready: ['invoking', 'stopping'],
  invoking: ['ready', 'stopping'],
  stopping: ['stopped'],
  stopped: [],
};

export type InvocationPhase = 'queued' | 'running' | 'post-runtime' | 'done';

export const invocationTransitions: TransitionTable<InvocationPhase> = {
  queued: ['running', 'done'],
  running: ['post-runtime', 'done'],
  'post-runtime': ['done'],
  done: [],
};

export type ExtensionState =
  | 'started'
  | 'registered'
  | 'ready'
  | 'running'
  | 'init-error'
  | 'exit-error'
  | 'exited'
  | 'shutdown-failed'
  | 'launch-error';

export const extensionTransitions: TransitionTable<ExtensionState> = {
  started: ['registered', 'launch-error'],
  registered: ['ready', 'init-error', 'exit-error'],
  ready: ['running', 'exit-error'],
  running: ['ready', 'exit-error', 'exited', 'shutdown-failed'],
  'init-error': [],
  'exit-error': [],
  exited: [],
  'shutdown-failed': [],
  'launch-error': [],
};

/** RIE's names for extension states, as its 403 messages and EXTENSION log lines show them. */
export const extensionStateNames: Readonly<Record<ExtensionState, string>> = {
  started: 'Started',
  registered: 'Registered',
  ready: 'Ready',
  running: 'Running',
  'init-error': 'InitError',
  'exit-error': 'ExitError',
  exited: 'Exited',
  'shutdown-failed': 'ShutdownFailed',
  'launch-error': 'LaunchError',
};

/** Why an environment stops; `shutdown` is the server stopping (extensions see `spindown`). */
export type StopReason = 'spindown' | 'timeout' | 'failure' | 'shutdown';

/** The `shutdownReason` of the SHUTDOWN event: lowercase, as RIE sends it (§2.2). */
export type ShutdownReason = 'spindown' | 'timeout' | 'failure';

export function shutdownReasonFor(reason: StopReason): ShutdownReason {
  return reason === 'shutdown' ? 'spindown' : reason;
}

/**
 * Lambda's Shutdown phase limits (§2.4): nothing to wait for without extensions (the
 * runtime is killed at once), 500 ms with internal extensions only, 2,000 ms with at
 * least one external extension, of which the runtime gets 300 ms (500 ms when internal
 * extensions are there too) after SIGTERM before the extensions get SHUTDOWN.
 */
export interface ShutdownBudget {
  totalMs: number;
  runtimeMs: number;
}

export function shutdownBudget(externalExtensions: number, internalExtensions: number): ShutdownBudget {
  if (externalExtensions > 0) return { totalMs: 2000, runtimeMs: internalExtensions > 0 ? 500 : 300 };
  if (internalExtensions > 0) return { totalMs: 500, runtimeMs: 500 };
  return { totalMs: 0, runtimeMs: 0 };
}

/** Lambda's limit on extensions per function (§2). */
export const maxExtensions = 10;
