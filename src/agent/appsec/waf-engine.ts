/**
 * libddwaf, through its Node.js binding `@datadog/native-appsec` (prebuilt binaries inside
 * the npm package), with a ruleset from ruleset.ts. The binding is loaded at run time with
 * `createRequire`, not bundled: the agent bundle ships `node_modules/@datadog/native-appsec`
 * beside it. When it cannot load on a host (no prebuilt binary for the platform, an old
 * Node) or the rules are broken at start, the engine says why and is unavailable: callers
 * pass every request through. Nothing here is allowed to take an invocation down.
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { readRuleset, resolveRulesetPath, RulesetError, type Ruleset, type RulesetLocation } from './ruleset.ts';

/** One parameter of a rule match, as libddwaf reports it. */
export interface WafMatchParameter {
  address: string;
  key_path?: Array<string | number>;
  value?: string;
  highlight?: string[];
}

/** One triggered rule (libddwaf's events schema). */
export interface WafEvent {
  rule: { id: string; name: string; tags: Record<string, string>; on_match?: string[] };
  rule_matches: Array<{ operator: string; operator_value?: string; parameters: WafMatchParameter[] }>;
}

export interface WafRunResult {
  timeout: boolean;
  /** Time spent inside libddwaf. */
  durationMicros: number;
  /** Including the binding's conversion of the input. */
  externalDurationMicros: number;
  events: WafEvent[];
  /** `block_request`, `redirect_request`, ... with their parameters. */
  actions: Record<string, Record<string, unknown>>;
  /** The WAF asks for the trace to be kept. */
  keep: boolean;
}

/** What was loaded, for logs and the `_dd.appsec.event_rules.version` tag. */
export interface RulesetInfo {
  path: string;
  version: string | undefined;
  loaded: number;
  failed: number;
  /** libddwaf's errors and warnings (an unknown operator is a warning): message → rule ids. */
  errors: Record<string, string[]>;
  explicitActions: boolean;
  /** Injection-rule conditions extended to cookies (ruleset.ts inspectCookiesLikeQuery). */
  cookieInputsAdded: number;
}

// The subset of the binding used here (see @datadog/native-appsec/index.d.ts).
interface NativeContext {
  readonly disposed: boolean;
  run(payload: { persistent?: object; ephemeral?: object }, timeoutMicros: number): {
    timeout: boolean;
    duration?: number;
    events?: object[];
    actions?: object;
    keep?: boolean;
  };
  dispose(): void;
}
interface NativeWaf {
  readonly diagnostics: {
    ruleset_version?: string;
    rules?: { loaded?: string[]; failed?: string[]; errors?: Record<string, string[]>; warnings?: Record<string, string[]> } | { error: string };
  };
  createContext(): NativeContext;
  createOrUpdateConfig(config: object, configPath: string): boolean;
  dispose(): void;
}
export interface NativeAppsecBinding {
  DDWAF: { new (rules: object, rulesPath: string): NativeWaf; version(): string };
}

export class WafRunError extends Error {
  override readonly name = 'WafRunError';
}

const bindingName = '@datadog/native-appsec';
/** Every ruleset is loaded under one config path so that a reload replaces it. */
const configPath = 'nimbus/rules';

function loadNativeBinding(): NativeAppsecBinding {
  // A variable, so that esbuild leaves the require to run time instead of bundling a .node file.
  const id = bindingName;
  return createRequire(import.meta.url)(id) as NativeAppsecBinding;
}

/** One request's evaluation: request and response runs share it (and its time budget). */
export class WafContext {
  readonly #native: NativeContext;
  #disposed = false;

  constructor(native: NativeContext) {
    this.#native = native;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Runs the rules over new addresses; a WafRunError when the binding refuses them. */
  run(addresses: Record<string, unknown>, timeoutMicros: number): WafRunResult {
    if (this.#disposed) throw new WafRunError('the WAF context was already disposed');
    const started = performance.now();
    let raw: ReturnType<NativeContext['run']>;
    try {
      // libddwaf takes at least 1 µs; 0 would mean "no limit" to some versions.
      raw = this.#native.run({ persistent: addresses }, Math.max(1, Math.floor(timeoutMicros)));
    } catch (err) {
      throw new WafRunError(`the WAF could not evaluate the request: ${(err as Error).message}`, { cause: err });
    }
    const externalDurationMicros = (performance.now() - started) * 1000;
    return {
      timeout: raw.timeout === true,
      durationMicros: typeof raw.duration === 'number' ? raw.duration / 1000 : externalDurationMicros,
      externalDurationMicros,
      events: (raw.events as WafEvent[] | undefined) ?? [],
      actions: (raw.actions as Record<string, Record<string, unknown>> | undefined) ?? {},
      keep: raw.keep === true,
    };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#native.dispose();
  }
}

export type WafLog = (level: 'info' | 'warn' | 'error', message: string) => void;

export interface WafEngineOptions extends RulesetLocation {
  /** Replaces loading `@datadog/native-appsec` (tests of a host where it cannot load). */
  loadBinding?: () => NativeAppsecBinding;
  log?: WafLog;
  /** Injection rules also inspect cookies (true); see ruleset.ts. */
  inspectCookies?: boolean;
}

function rulesetInfoOf(native: NativeWaf, ruleset: Ruleset): RulesetInfo {
  const diag = native.diagnostics.rules;
  const rules = diag && !('error' in diag) ? diag : undefined;
  return {
    path: ruleset.path,
    version: native.diagnostics.ruleset_version ?? ruleset.version,
    loaded: rules?.loaded?.length ?? 0,
    failed: rules?.failed?.length ?? 0,
    errors: { ...rules?.warnings, ...rules?.errors },
    explicitActions: ruleset.explicitActions,
    cookieInputsAdded: ruleset.cookieInputsAdded,
  };
}

function describeErrors(errors: Record<string, string[]>): string {
  return Object.entries(errors)
    .map(([message, ids]) => `${message} (${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''})`)
    .join('; ');
}

export class WafEngine {
  readonly #binding: NativeAppsecBinding | undefined;
  readonly #log: WafLog;
  readonly #inspectCookies: boolean;
  #native: NativeWaf | undefined;
  #ruleset: RulesetInfo | undefined;
  #unavailableReason: string | undefined;
  /** libddwaf's version, or undefined when the binding did not load. */
  readonly wafVersion: string | undefined;

  private constructor(binding: NativeAppsecBinding | undefined, reason: string | undefined, log: WafLog, inspectCookies: boolean) {
    this.#binding = binding;
    this.#inspectCookies = inspectCookies;
    this.#unavailableReason = reason;
    this.#log = log;
    let version: string | undefined;
    try {
      version = binding?.DDWAF.version();
    } catch {
      version = undefined;
    }
    this.wafVersion = version;
  }

  /**
   * Loads the binding and the rules. Never rejects: a failure leaves the engine unavailable
   * with `unavailableReason` said once in the log.
   */
  static async start(options: WafEngineOptions = {}): Promise<WafEngine> {
    const log = options.log ?? (() => {});
    let binding: NativeAppsecBinding | undefined;
    try {
      binding = (options.loadBinding ?? loadNativeBinding)();
    } catch (err) {
      const reason = `threat detection is off: the WAF (${bindingName}) cannot load on this host (${process.platform}-${process.arch}, Node ${process.versions.node}): ${(err as Error).message}`;
      log('error', reason);
      return new WafEngine(undefined, reason, log, false);
    }
    const engine = new WafEngine(binding, undefined, log, options.inspectCookies !== false);
    try {
      await engine.reload(resolveRulesetPath(options));
    } catch (err) {
      engine.#unavailableReason = `threat detection is off: ${(err as Error).message}`;
      log('error', engine.#unavailableReason);
    }
    return engine;
  }

  get available(): boolean {
    return this.#native !== undefined;
  }

  /** Why the engine is unavailable; undefined when it is available. */
  get unavailableReason(): string | undefined {
    return this.#native ? undefined : (this.#unavailableReason ?? 'threat detection is off');
  }

  get ruleset(): RulesetInfo | undefined {
    return this.#ruleset;
  }

  /**
   * Loads another rules file. On any failure (unreadable, not JSON, no rule libddwaf accepts)
   * it rejects with a RulesetError and the rules in use stay as they were.
   */
  async reload(filePath: string): Promise<RulesetInfo> {
    if (!this.#binding) throw new RulesetError(this.#unavailableReason ?? `${bindingName} is not loaded`, filePath);
    const ruleset = await readRuleset(filePath, { inspectCookies: this.#inspectCookies });
    let native = this.#native;
    if (native) {
      // createOrUpdateConfig keeps the rules in force when the new ones are refused, and
      // contexts already open keep evaluating with the rules they started with.
      let accepted: boolean;
      try {
        accepted = native.createOrUpdateConfig(ruleset.rules, configPath);
      } catch (err) {
        throw new RulesetError(`WAF rules file ${filePath} was refused: ${(err as Error).message}; the previous rules stay in force`, filePath, { cause: err });
      }
      if (!accepted) {
        const diag = native.diagnostics.rules;
        const detail = diag && 'error' in diag ? diag.error : describeErrors({ ...diag?.warnings, ...diag?.errors });
        throw new RulesetError(`WAF rules file ${filePath} was refused${detail ? `: ${detail}` : ''}; the previous rules stay in force`, filePath);
      }
    } else {
      try {
        native = new this.#binding.DDWAF(ruleset.rules, configPath);
      } catch (err) {
        throw new RulesetError(`WAF rules file ${filePath} was refused by libddwaf: ${(err as Error).message}`, filePath, { cause: err });
      }
      this.#native = native;
    }
    const info = rulesetInfoOf(native, ruleset);
    this.#ruleset = info;
    this.#log('info', `threat detection: libddwaf ${this.wafVersion ?? '?'}, rules ${info.version ?? '(no version)'} from ${info.path}: ${info.loaded} loaded, ${info.failed} failed`);
    if (info.failed > 0) this.#log('warn', `threat detection: ${info.failed} WAF rules failed to load: ${describeErrors(info.errors)}`);
    return info;
  }

  /** A context for one request, or undefined when the engine is unavailable. */
  createContext(): WafContext | undefined {
    if (!this.#native) return undefined;
    return new WafContext(this.#native.createContext());
  }

  dispose(): void {
    this.#native?.dispose();
    this.#native = undefined;
    this.#unavailableReason = 'the WAF was disposed';
  }
}
