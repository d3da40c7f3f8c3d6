/**
 * Threat detection in the agent's Runtime API proxy. Each event from an HTTP front door is
 * evaluated by the WAF as a request, the handler's result as its response, in one WAF context
 * whose time budget the two share; what matched becomes security signals, span tags on the
 * invocation's `aws.lambda` span and metrics.
 *
 * Monitor mode (the default) never holds an event: the WAF runs on the next turn of the event
 * loop (setImmediate), after the proxy has passed the event on, so the handler starts as soon
 * as without detection. Block mode evaluates before the event is passed on and, for a blocking
 * match, a denied IP or a denied user, answers in the handler's place (the handler never runs).
 *
 * Which matches block: the WAF's own `block_request` / `redirect_request` actions always do.
 * Datadog's recommended ruleset, though, marks almost no rule blocking (it is meant for
 * monitoring first), so when the rules file defines no `actions` of its own, Nimbus's block
 * mode blocks on EVERY attack-attempt match. A rules file with explicit `actions` gets exactly
 * what its rules ask for.
 */
import type { MetricPoint, ProxyInterceptor, InterceptVerdict, InvocationEventInfo, RootSpanTagger, SecuritySignal, TelemetrySink } from '../model.ts';
import type { WafContext, WafEngine, WafEvent, WafRunResult } from './waf-engine.ts';
import { httpRequestOf, type HttpRequestInfo } from './http-request.ts';
import { httpResponseAddressesOf } from './http-response.ts';
import { blockingResponse, type BlockingAction } from './blocking-response.ts';
import { denyListSignal, isAttackAttempt, redactWafEvents, signalsOf, type SignalRequest } from './signals.ts';
import type { DenyList } from './deny-list-client.ts';

/** The engine as the interceptor uses it (an interface, so tests can count calls). */
export type AppsecEngine = Pick<WafEngine, 'available' | 'wafVersion' | 'ruleset' | 'createContext'>;

export interface AppsecInterceptorOptions {
  engine: AppsecEngine;
  sink: TelemetrySink;
  tagger: RootSpanTagger;
  mode: 'monitor' | 'block';
  /** The budget of one invocation, request and response together (DD_APPSEC_WAF_TIMEOUT). */
  wafTimeoutMicros: number;
  /** The authorizer claim naming the user (NIMBUS_APPSEC_USER_CLAIM). */
  userClaim: string;
  denyList: DenyList;
  /** Told about failures that were contained (a WAF error, a malformed result). */
  onError?: (err: Error) => void;
  /**
   * Invocations evaluated and waiting for their response. Each holds a libddwaf context;
   * past the bound the oldest is reported as it is and closed (an invocation whose response
   * the proxy never saw must not hold one forever). Datadog's extension keeps 5.
   */
  maxOpenRequests?: number;
  /** Bodies larger than this are given to the WAF unparsed. */
  maxParsedBodyBytes?: number;
  now?: () => number;
}

/** One invocation between its event and its response. */
interface Pending {
  requestId: string;
  /** Monitor mode: the event, parsed only when the deferred evaluation runs. */
  raw: Buffer | undefined;
  info: HttpRequestInfo | undefined;
  context: WafContext | undefined;
  requestEvaluated: boolean;
  immediate: NodeJS.Immediate | undefined;
  events: WafEvent[];
  denied: SecuritySignal[];
  wafMicros: number;
  wafExternalMicros: number;
  wafRuns: number;
  timeouts: number;
  keep: boolean;
  blocked: boolean;
  /** Reported and closed: later hooks for it do nothing. */
  finished: boolean;
  timestamp: number;
}

function firstNonSpace(buf: Buffer): number {
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return c;
  }
  return -1;
}

/** A deny-list refusal as a WAF-style trigger, so `_dd.appsec.json` lists it beside WAF matches. */
function denyTrigger(signal: SecuritySignal): WafEvent {
  return {
    rule: { id: signal.ruleId, name: signal.ruleName, tags: { type: signal.category, category: 'security_response' } },
    rule_matches: [{ operator: signal.category === 'block_ip' ? 'ip_match' : 'exact_match', parameters: [{ address: signal.parameter, key_path: [], value: signal.value }] }],
  };
}

export class AppsecInterceptor implements ProxyInterceptor {
  readonly #engine: AppsecEngine;
  readonly #sink: TelemetrySink;
  readonly #tagger: RootSpanTagger;
  readonly #block: boolean;
  readonly #budgetMicros: number;
  readonly #userClaim: string;
  readonly #denyList: DenyList;
  readonly #onError: (err: Error) => void;
  readonly #maxOpen: number;
  readonly #maxParsedBodyBytes: number | undefined;
  readonly #now: () => number;
  readonly #open = new Map<string, Pending>();

  constructor(options: AppsecInterceptorOptions) {
    this.#engine = options.engine;
    this.#sink = options.sink;
    this.#tagger = options.tagger;
    this.#block = options.mode === 'block';
    this.#budgetMicros = options.wafTimeoutMicros;
    this.#userClaim = options.userClaim;
    this.#denyList = options.denyList;
    this.#onError = options.onError ?? (() => {});
    this.#maxOpen = Math.max(1, options.maxOpenRequests ?? 16);
    this.#maxParsedBodyBytes = options.maxParsedBodyBytes;
    this.#now = options.now ?? Date.now;
  }

  /** Invocations waiting for their response (each may hold a WAF context). */
  get openRequests(): number {
    return this.#open.size;
  }

  onInvocationEvent(event: InvocationEventInfo): InterceptVerdict {
    try {
      const pending: Pending = {
        requestId: event.requestId,
        raw: event.event,
        info: undefined,
        context: undefined,
        requestEvaluated: false,
        immediate: undefined,
        events: [],
        denied: [],
        wafMicros: 0,
        wafExternalMicros: 0,
        wafRuns: 0,
        timeouts: 0,
        keep: false,
        blocked: false,
        finished: false,
        timestamp: this.#now(),
      };
      if (!this.#block) {
        this.#track(pending);
        pending.immediate = setImmediate(() => this.#evaluateRequestSafely(pending));
        return undefined;
      }
      const action = this.#evaluateRequest(pending);
      if (!pending.info) return undefined;
      if (action === undefined) {
        this.#track(pending);
        return undefined;
      }
      pending.blocked = true;
      // A report that fails must not undo the block.
      this.#finishSafely(pending);
      return { respond: blockingResponse(pending.info, action) };
    } catch (err) {
      // A bug here must cost detection of one request, never the invocation.
      this.#onError(err as Error);
      return undefined;
    }
  }

  onInvocationResponse(requestId: string, body: Buffer | undefined): void {
    const pending = this.#open.get(requestId);
    if (!pending) return;
    // Monitor mode keeps the response path as free as the event path.
    if (this.#block) this.#completeWithResponse(pending, body);
    else setImmediate(() => this.#completeWithResponse(pending, body));
  }

  #completeWithResponse(pending: Pending, body: Buffer | undefined): void {
    if (pending.finished) return;
    try {
      this.#evaluateRequest(pending);
      const info = pending.info;
      if (info && pending.context) {
        const addresses = httpResponseAddressesOf(body, info.trigger);
        if (addresses) this.#run(pending, addresses);
      }
    } catch (err) {
      this.#onError(err as Error);
    }
    this.#finishSafely(pending);
  }

  /** The error itself says nothing the WAF rates; the request is reported as it was evaluated. */
  onInvocationError(requestId: string, _body?: Buffer, _errorType?: string): void {
    const pending = this.#open.get(requestId);
    if (!pending || pending.finished) return;
    try {
      // An attack that crashed the handler is still an attack: evaluate a deferred request.
      this.#evaluateRequest(pending);
    } catch (err) {
      this.#onError(err as Error);
    }
    this.#finishSafely(pending);
  }

  /** Reports and closes every open invocation (agent shutdown). */
  close(): void {
    for (const pending of [...this.#open.values()]) this.#finishSafely(pending);
  }

  #track(pending: Pending): void {
    // A request id seen twice (a retried delivery) replaces the first, which is reported as it is.
    const previous = this.#open.get(pending.requestId);
    if (previous) this.#finishSafely(previous);
    this.#open.set(pending.requestId, pending);
    while (this.#open.size > this.#maxOpen) {
      const oldest = this.#open.values().next().value!;
      this.#finishSafely(oldest);
    }
  }

  #evaluateRequestSafely(pending: Pending): void {
    try {
      this.#evaluateRequest(pending);
      // Not an HTTP event: nothing to wait for.
      if (!pending.info) this.#untrack(pending);
    } catch (err) {
      this.#onError(err as Error);
    }
  }

  /** Maps the event, checks the deny lists and runs the request addresses; the blocking action, if any. */
  #evaluateRequest(pending: Pending): BlockingAction | undefined {
    if (pending.requestEvaluated || pending.finished) return undefined;
    pending.requestEvaluated = true;
    if (pending.immediate) clearImmediate(pending.immediate);
    pending.immediate = undefined;
    const raw = pending.raw;
    pending.raw = undefined;
    // Only an object can be an HTTP event: skip parsing strings, arrays and numbers.
    if (!raw || firstNonSpace(raw) !== 0x7b) return undefined;
    let event: unknown;
    try {
      event = JSON.parse(raw.toString('utf8'));
    } catch {
      return undefined;
    }
    const info = httpRequestOf(event, { userClaim: this.#userClaim, maxParsedBodyBytes: this.#maxParsedBodyBytes });
    if (!info) return undefined;
    pending.info = info;

    const request = this.#signalRequest(pending);
    const deniedIp = [info.clientIp, info.peerIp].find((ip) => ip !== undefined && this.#denyList.isIpDenied(ip));
    if (deniedIp !== undefined) pending.denied.push({ ...denyListSignal('ip', deniedIp, request), blocked: this.#block });
    if (info.userId !== undefined && this.#denyList.isUserDenied(info.userId)) {
      pending.denied.push({ ...denyListSignal('user', info.userId, request), blocked: this.#block });
    }
    // A denied client is refused without spending the WAF's time on it.
    if (this.#block && pending.denied.length > 0) return {};

    pending.context = this.#engine.createContext();
    if (!pending.context) return undefined;
    const result = this.#run(pending, info.addresses);
    return this.#block && result ? this.#blockingAction(result) : undefined;
  }

  /** One WAF run within what is left of the budget. */
  #run(pending: Pending, addresses: Record<string, unknown>): WafRunResult | undefined {
    const context = pending.context;
    if (!context) return undefined;
    const left = this.#budgetMicros - pending.wafMicros;
    if (left <= 0) {
      pending.timeouts++;
      return undefined;
    }
    const result = context.run(addresses, left);
    pending.wafRuns++;
    pending.wafMicros += result.durationMicros;
    pending.wafExternalMicros += result.externalDurationMicros;
    if (result.timeout) pending.timeouts++;
    if (result.keep) pending.keep = true;
    for (const e of result.events) pending.events.push(e);
    return result;
  }

  #blockingAction(result: WafRunResult): BlockingAction | undefined {
    const actions = result.actions;
    const explicit = actions.redirect_request ?? actions.block_request;
    if (explicit) return explicit as BlockingAction;
    if (this.#engine.ruleset?.explicitActions) return undefined;
    return result.events.some(isAttackAttempt) ? {} : undefined;
  }

  #signalRequest(pending: Pending): SignalRequest {
    const info = pending.info!;
    return {
      timestamp: pending.timestamp,
      requestId: pending.requestId,
      trigger: info.trigger,
      clientIp: info.clientIp,
      userAgent: info.userAgent,
      route: info.route,
      method: info.method,
    };
  }

  #untrack(pending: Pending): void {
    if (this.#open.get(pending.requestId) === pending) this.#open.delete(pending.requestId);
    if (pending.immediate) clearImmediate(pending.immediate);
    pending.immediate = undefined;
    pending.context?.dispose();
    pending.context = undefined;
  }

  #finishSafely(pending: Pending): void {
    try {
      this.#finish(pending);
    } catch (err) {
      pending.finished = true;
      this.#untrack(pending);
      this.#onError(err as Error);
    }
  }

  /** Closes the context and reports: signals, metrics, span tags. */
  #finish(pending: Pending): void {
    if (pending.finished) return;
    pending.finished = true;
    this.#untrack(pending);
    const info = pending.info;
    if (!info) return;
    const events = redactWafEvents(pending.events);
    const signals = [...pending.denied, ...signalsOf(events, this.#signalRequest(pending), pending.blocked)];
    for (const signal of signals) this.#sink.addSecurity(signal);
    this.#reportMetrics(info, signals, pending.timeouts);
    this.#tagSpan(pending, info, events);
  }

  #reportMetrics(info: HttpRequestInfo, signals: SecuritySignal[], timeouts: number): void {
    const timestamp = this.#now();
    const count = (name: string, value: number, tags: string[]): MetricPoint => ({ name, type: 'count', value, tags: tags.sort(), timestamp });
    this.#sink.addMetric(count('nimbus.appsec.requests', 1, [`trigger:${info.trigger}`]));
    const attacks = new Map<string, number>();
    for (const s of signals) {
      const key = `${s.category}\u0000${s.blocked}`;
      attacks.set(key, (attacks.get(key) ?? 0) + 1);
    }
    for (const [key, n] of attacks) {
      const [category, blocked] = key.split('\u0000');
      this.#sink.addMetric(count('nimbus.appsec.attacks', n, [`category:${category}`, `blocked:${blocked}`, `trigger:${info.trigger}`]));
    }
    if (timeouts > 0) this.#sink.addMetric(count('nimbus.appsec.waf.timeouts', timeouts, [`trigger:${info.trigger}`]));
  }

  #tagSpan(pending: Pending, info: HttpRequestInfo, events: WafEvent[]): void {
    const meta: Record<string, string> = {};
    const metrics: Record<string, number> = {};
    if (this.#engine.available || pending.wafRuns > 0) {
      metrics['_dd.appsec.enabled'] = 1;
      if (this.#engine.wafVersion) meta['_dd.appsec.waf.version'] = this.#engine.wafVersion;
      const rulesVersion = this.#engine.ruleset?.version;
      if (rulesVersion) meta['_dd.appsec.event_rules.version'] = rulesVersion;
      metrics['_dd.appsec.waf.duration'] = Math.round(pending.wafMicros * 1000) / 1000;
      metrics['_dd.appsec.waf.duration_ext'] = Math.round(pending.wafExternalMicros * 1000) / 1000;
      metrics['_dd.appsec.waf.timeouts'] = pending.timeouts;
    }
    const triggers = [...pending.denied.map(denyTrigger), ...events];
    if (triggers.length > 0) {
      meta['appsec.event'] = 'true';
      meta['_dd.appsec.json'] = JSON.stringify({ triggers });
      meta['_dd.origin'] = 'appsec';
      if (info.route !== undefined) meta['http.route'] = info.route;
      if (info.clientIp !== undefined) meta['network.client.ip'] = info.clientIp;
      if (pending.blocked) meta['appsec.blocked'] = 'true';
    }
    // Datadog keeps every trace with a security event (USER_KEEP), and the ones the WAF asks for.
    if (triggers.length > 0 || pending.keep) metrics['_sampling_priority_v1'] = 2;
    if (Object.keys(meta).length === 0 && Object.keys(metrics).length === 0) return;
    this.#tagger.tagRootSpan(pending.requestId, meta, metrics);
  }
}
