/**
 * The extensions of one environment and the Extensions API 2020-01-01 core
 * (shared/reference/lambda-interfaces.md §2): registration with Lambda's rules (external
 * extensions are named after their file in /opt/extensions; any other name registers an
 * internal one), each extension's state machine, its parked `event/next`, and the events
 * delivered to it. Errors are RIE's 403 types and messages. HTTP lives in
 * extensions-api.ts; the lifecycle decisions (what an init error or a crash means) are the
 * environment's, told through `RegistryHooks`.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { StateMachine } from '../lifecycle/state-machine.ts';
import { extensionStateNames, extensionTransitions, maxExtensions, type ExtensionState, type ShutdownReason } from './lifecycle.ts';
import { errorReply, type RuntimeApiReply } from './runtime-api-server.ts';

export type ExtensionEventType = 'INVOKE' | 'SHUTDOWN';

export interface TraceContext {
  type: 'X-Amzn-Trace-Id';
  value: string;
}

export type ExtensionEvent =
  | { eventType: 'INVOKE'; deadlineMs: number; requestId: string; invokedFunctionArn: string; tracing?: TraceContext }
  | { eventType: 'SHUTDOWN'; shutdownReason: ShutdownReason; deadlineMs: number };

export interface FunctionMetadata {
  functionName: string;
  functionVersion: string;
  handler: string;
  accountId: string;
}

export interface RegistryHooks {
  /** An extension registered. */
  onRegistered(extension: Extension): void;
  /** An extension called `event/next`: it is done with its previous event. */
  onReady(extension: Extension): void;
  onInitError(extension: Extension, errorType: string): void;
  onExitError(extension: Extension, errorType: string): void;
}

export class Extension {
  readonly id = randomUUID();
  readonly name: string;
  readonly kind: 'external' | 'internal';
  readonly events = new Set<ExtensionEventType>();
  readonly machine: StateMachine<ExtensionState>;
  /** The extension's `event/next` long-poll, while it waits for an event. */
  parked: ServerResponse | undefined;
  /** An event for the extension's next `event/next` (it was busy when the event came). */
  pending: ExtensionEvent | undefined;
  /** The error type it reported through init/error or exit/error. */
  errorType: string | undefined;

  constructor(name: string, kind: 'external' | 'internal') {
    this.name = name;
    this.kind = kind;
    this.machine = new StateMachine<ExtensionState>(`extension ${name}`, kind === 'external' ? 'started' : 'registered', extensionTransitions);
  }

  get state(): ExtensionState {
    return this.machine.state;
  }

  get stateName(): string {
    return extensionStateNames[this.machine.state];
  }

  /** Registered, and has not reported an error. */
  get active(): boolean {
    const s = this.machine.state;
    return s === 'registered' || s === 'ready' || s === 'running';
  }
}

const notAllowed = 'State transition is not allowed';

function invalidState(from: string, to: string, who: string): RuntimeApiReply {
  return errorReply(403, 'Extension.InvalidExtensionState', `State transition from ${from} to ${to} failed for extension ${who}. Error: ${notAllowed}`);
}

/** Parses a register body: `{"events": [...]}`; an empty body registers for no events. */
function parseRegisterBody(body: Buffer): { events: string[] } | { error: string } {
  if (body.length === 0) return { events: [] };
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return { error: 'the request body must be a JSON object' };
  const { events, configurationKeys } = value as { events?: unknown; configurationKeys?: unknown };
  if (Array.isArray(configurationKeys) && configurationKeys.length > 0) {
    return { error: 'configurationKeys are deprecated; use environment variables instead' };
  }
  if (events === undefined || events === null) return { events: [] };
  if (!Array.isArray(events) || !events.every((e) => typeof e === 'string')) return { error: 'events must be an array of strings' };
  return { events };
}

export class ExtensionRegistry {
  readonly #byId = new Map<string, Extension>();
  /** Registered extensions in registration order (read on every invoke). */
  readonly #registered: Extension[] = [];
  readonly #external = new Map<string, Extension>();
  readonly #internal = new Map<string, Extension>();
  readonly #metadata: FunctionMetadata;
  readonly #managedInstances: boolean;
  readonly #hooks: RegistryHooks;
  #open = true;

  constructor(metadata: FunctionMetadata, managedInstances: boolean, hooks: RegistryHooks) {
    this.#metadata = metadata;
    this.#managedInstances = managedInstances;
    this.#hooks = hooks;
  }

  /** An external extension found in /opt/extensions, started and expected to register. */
  addExternal(name: string): Extension {
    const ext = new Extension(name, 'external');
    this.#external.set(name, ext);
    return ext;
  }

  get(id: string): Extension | undefined {
    return this.#byId.get(id);
  }

  /** Whether the extension of that name is still working on its event (has not called `event/next`). */
  busy(name: string): boolean {
    for (const ext of this.#registered) if (ext.name === name) return ext.state === 'running';
    return false;
  }

  /** Every extension that registered (external and internal), in registration order. */
  registered(): readonly Extension[] {
    return this.#registered;
  }

  get internalCount(): number {
    return this.#internal.size;
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Every external extension has registered (or none was started). */
  allExternalRegistered(): boolean {
    for (const ext of this.#external.values()) if (ext.state === 'started') return false;
    return true;
  }

  /** Every registered extension has called `event/next` and waits for an event. */
  allReady(): boolean {
    for (const ext of this.#byId.values()) if (ext.state !== 'ready') return false;
    return true;
  }

  /** Init is over: no more registrations (RIE's TurnOff after the runtime's first `/next`). */
  closeRegistration(): void {
    this.#open = false;
  }

  // ---- Extensions API core ------------------------------------------------------------

  register(name: string | undefined, body: Buffer, acceptFeature: string | undefined): RuntimeApiReply {
    if (!name) return errorReply(403, 'Extension.InvalidExtensionName', 'Empty extension name');
    const parsed = parseRegisterBody(body);
    if ('error' in parsed) return errorReply(403, 'InvalidRequestFormat', parsed.error);
    const external = this.#external.get(name);
    const eventError = external ? this.#externalEventError(parsed.events) : this.#internalEventError(parsed.events);
    if (eventError) return errorReply(403, 'Extension.InvalidEventType', eventError);
    let ext: Extension;
    if (external) {
      if (!external.machine.can('registered')) return invalidState(external.stateName, 'Registered', name);
      external.machine.transition('registered');
      ext = external;
    } else {
      if (!this.#open) return errorReply(403, 'Extension.RegistrationClosed', 'Extension registration closed already');
      if (this.#byId.size + this.#countUnregisteredExternal() >= maxExtensions) {
        return errorReply(403, 'Extension.TooManyExtensions', `Extension limit (${maxExtensions}) reached`);
      }
      if (this.#internal.has(name)) return errorReply(403, 'Extension.InvalidExtensionState', 'Extension with this name already registered');
      ext = new Extension(name, 'internal');
      this.#internal.set(name, ext);
    }
    for (const e of parsed.events) ext.events.add(e as ExtensionEventType);
    this.#byId.set(ext.id, ext);
    this.#registered.push(ext);
    const features = (acceptFeature ?? '').split(',').map((f) => f.trim());
    const m = this.#metadata;
    const response: Record<string, string> = { functionName: m.functionName, functionVersion: m.functionVersion, handler: m.handler };
    if (features.includes('accountId')) response.accountId = m.accountId;
    this.#hooks.onRegistered(ext);
    return { status: 200, body: response, headers: { 'Lambda-Extension-Identifier': ext.id } };
  }

  #countUnregisteredExternal(): number {
    let n = 0;
    for (const ext of this.#external.values()) if (ext.state === 'started') n++;
    return n;
  }

  #externalEventError(events: string[]): string | undefined {
    for (const e of events) {
      // Managed instances: extensions may subscribe to SHUTDOWN only (§2.4).
      if (e === 'SHUTDOWN' || (e === 'INVOKE' && !this.#managedInstances)) continue;
      return `${e}: ErrorInvalidEventType`;
    }
    return undefined;
  }

  #internalEventError(events: string[]): string | undefined {
    if (this.#managedInstances && events.length > 0) return 'No events allowed for internal extensions';
    for (const e of events) {
      if (e === 'INVOKE') continue;
      return e === 'SHUTDOWN' ? `${e}: ShutdownEventNotSupportedForInternalExtension` : `${e}: ErrorInvalidEventType`;
    }
    return undefined;
  }

  /** `event/next`: parks `res` until an event comes, or answers at once with a pending one. */
  next(id: string, res: ServerResponse): RuntimeApiReply | undefined {
    const ext = this.#byId.get(id);
    if (!ext) return errorReply(403, 'Extension.UnknownExtensionIdentifier', `Unknown extension ${id}`);
    if (ext.state === 'ready') {
      // A second long-poll while the first is still open is refused, as RIE does; one
      // whose connection went away (the client gave up) may be replaced.
      if (ext.parked && !ext.parked.destroyed) return invalidState('Ready', 'Ready', id);
      ext.parked = res;
    } else {
      if (!ext.machine.can('ready')) return invalidState(ext.stateName, 'Ready', id);
      ext.machine.transition('ready');
      ext.parked = res;
      this.#hooks.onReady(ext);
    }
    const pending = ext.pending;
    if (pending && ext.state === 'ready' && ext.parked === res) {
      ext.pending = undefined;
      this.deliver(ext, pending);
    }
    return undefined;
  }

  initError(id: string, errorType: string | undefined): RuntimeApiReply {
    if (!errorType) return errorReply(403, 'Extension.MissingHeader', 'Lambda-Extension-Function-Error-Type not found');
    const ext = this.#byId.get(id);
    if (!ext) return errorReply(403, 'Extension.UnknownExtensionIdentifier', 'Unknown Lambda-Extension-Identifier');
    if (ext.state === 'init-error') return { status: 202, body: { status: 'OK' } };
    if (!ext.machine.can('init-error')) return invalidState(ext.stateName, 'InitError', id);
    ext.machine.transition('init-error');
    ext.errorType = errorType;
    this.#hooks.onInitError(ext, errorType);
    return { status: 202, body: { status: 'OK' } };
  }

  exitError(id: string, errorType: string | undefined): RuntimeApiReply {
    if (!errorType) return errorReply(403, 'Extension.MissingHeader', 'Lambda-Extension-Function-Error-Type not found');
    const ext = this.#byId.get(id);
    if (!ext) return errorReply(403, 'Extension.UnknownExtensionIdentifier', 'Unknown Lambda-Extension-Identifier');
    if (ext.state === 'exit-error') return { status: 202, body: { status: 'OK' } };
    if (!ext.machine.can('exit-error')) return invalidState(ext.stateName, 'Exited', id);
    ext.machine.transition('exit-error');
    ext.errorType = errorType;
    this.#hooks.onExitError(ext, errorType);
    return { status: 202, body: { status: 'OK' } };
  }

  /** Sends an event to an extension now if it waits in `event/next`, else on its next call. */
  deliver(ext: Extension, event: ExtensionEvent): void {
    const res = ext.parked;
    if (ext.state !== 'ready' || !res || res.destroyed) {
      ext.pending = event;
      return;
    }
    ext.parked = undefined;
    ext.machine.transition('running');
    const body = JSON.stringify(event);
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      'Lambda-Extension-Event-Identifier': randomUUID(),
    });
    res.end(body);
  }

  /** Closes every parked long-poll (the environment is going away). */
  destroyParked(): void {
    for (const ext of this.#byId.values()) {
      ext.parked?.destroy();
      ext.parked = undefined;
    }
  }
}
