/**
 * WAF events as Nimbus security signals: one per triggered rule, with the rule, its category
 * (the rule's `tags.type`), the parameter that matched (`address.key.path`) and its value.
 * Matched values are attacker input, but they can also be a user's password or token that
 * happened to contain something suspicious: values under a secret-looking key, and values
 * that look like credentials themselves, are replaced before they leave the agent.
 */
import type { SecuritySignal } from '../model.ts';
import type { WafEvent, WafMatchParameter } from './waf-engine.ts';

export const redacted = '<redacted>';

/** A key path element that names a secret: `password`, `api_key`, `Authorization`, `sessionid`, ... */
const secretKey =
  /pass(?:wd|word|phrase)?|pwd|secret|token|bearer|authori[sz]ation|jwt|credential|signature|(?:api|access|private|client)[-_]?key|sess(?:ion)?[-_]?id|^sid$|^x-api-key$/i;

/** A value that is a credential whatever its key is called. */
const secretValue = new RegExp(
  [
    String.raw`\bbearer\s+[\w.~+/=-]{8,}`,
    String.raw`\b(?:basic|digest)\s+[A-Za-z0-9+/=]{8,}`,
    String.raw`(?:pass(?:wd|word)?|pwd|secret|token|api[-_]?key)\s*[:=]\s*\S+`,
    String.raw`\beyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*`, // JWT
    String.raw`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`, // AWS access key id
    String.raw`-----BEGIN [A-Z ]*PRIVATE KEY-----`,
    String.raw`\bgh[pousr]_[A-Za-z0-9]{36}\b`, // GitHub token
    String.raw`\bxox[abprs]-[A-Za-z0-9-]{10,}`, // Slack token
  ].join('|'),
  'i',
);

/** Longest matched value kept in a signal. */
const maxValueChars = 1024;

function shouldRedact(parameter: WafMatchParameter): boolean {
  if (parameter.key_path?.some((k) => typeof k === 'string' && secretKey.test(k))) return true;
  return typeof parameter.value === 'string' && secretValue.test(parameter.value);
}

/**
 * Redacts matched values and highlights in place, so that the events can go both into signals
 * and into the span's `_dd.appsec.json`. The events are fresh from one WAF run.
 */
export function redactWafEvents(events: WafEvent[]): WafEvent[] {
  for (const event of events) {
    for (const match of event.rule_matches ?? []) {
      for (const parameter of match.parameters ?? []) {
        if (!shouldRedact(parameter)) continue;
        parameter.value = redacted;
        if (parameter.highlight) parameter.highlight = parameter.highlight.map(() => redacted);
      }
    }
  }
  return events;
}

/** `server.request.query.q`, `server.request.headers.no_cookies.user-agent`. */
export function parameterName(parameter: WafMatchParameter): string {
  const path = parameter.key_path;
  return path && path.length > 0 ? `${parameter.address}.${path.join('.')}` : parameter.address;
}

/** An attack attempt, as opposed to the ruleset's business-logic and API-security rules. */
export function isAttackAttempt(event: WafEvent): boolean {
  return event.rule?.tags?.category === 'attack_attempt';
}

/** What a signal says about the request, beside the rule. */
export interface SignalRequest {
  timestamp: number;
  requestId: string;
  trigger: string;
  clientIp?: string;
  userAgent?: string;
  route?: string;
  method?: string;
}

function withRequest(request: SignalRequest, signal: Omit<SecuritySignal, keyof SignalRequest>): SecuritySignal {
  const out: SecuritySignal = { timestamp: request.timestamp, requestId: request.requestId, trigger: request.trigger, ...signal };
  if (request.clientIp !== undefined) out.clientIp = request.clientIp;
  if (request.userAgent !== undefined) out.userAgent = request.userAgent;
  if (request.route !== undefined) out.route = request.route;
  if (request.method !== undefined) out.method = request.method;
  return out;
}

/** One signal per event (already redacted), naming its first matched parameter. */
export function signalsOf(events: readonly WafEvent[], request: SignalRequest, blocked: boolean): SecuritySignal[] {
  const out: SecuritySignal[] = [];
  for (const event of events) {
    const parameter = event.rule_matches?.[0]?.parameters?.[0];
    const value = typeof parameter?.value === 'string' ? parameter.value : '';
    out.push(
      withRequest(request, {
        ruleId: String(event.rule?.id ?? 'unknown'),
        ruleName: String(event.rule?.name ?? ''),
        category: String(event.rule?.tags?.type ?? 'unknown'),
        parameter: parameter ? parameterName(parameter) : '',
        value: value.length > maxValueChars ? value.slice(0, maxValueChars) : value,
        blocked,
      }),
    );
  }
  return out;
}

/**
 * A request refused by a deny list. The rule ids and categories follow the recommended
 * ruleset's own IP and user blocking rules (`blk-001-001` block_ip, `blk-001-002` block_user).
 */
export function denyListSignal(kind: 'ip' | 'user', value: string, request: SignalRequest): SecuritySignal {
  return withRequest(request, {
    ruleId: kind === 'ip' ? 'nimbus-deny-ip' : 'nimbus-deny-user',
    ruleName: kind === 'ip' ? 'Denied IP address' : 'Denied user',
    category: kind === 'ip' ? 'block_ip' : 'block_user',
    parameter: kind === 'ip' ? 'http.client_ip' : 'usr.id',
    value,
    blocked: true,
  });
}
