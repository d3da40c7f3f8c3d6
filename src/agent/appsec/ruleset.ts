/**
 * Which WAF rules the agent loads: the file named by `DD_APPSEC_RULES` / `NIMBUS_APPSEC_RULES`,
 * else `recommended.json` shipped next to the agent bundle, else the recommended ruleset of
 * the installed dd-trace (Datadog's open ruleset, the one its Node.js tracer embeds). A rules
 * file that cannot be read or is not a ruleset is a RulesetError with the path and the reason.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export class RulesetError extends Error {
  override readonly name = 'RulesetError';
  readonly path: string | undefined;
  constructor(message: string, filePath: string | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.path = filePath;
  }
}

/** A parsed rules file: what libddwaf takes, and where it came from. */
export interface Ruleset {
  path: string;
  rules: Record<string, unknown>;
  /** `metadata.rules_version`, when the file says. */
  version: string | undefined;
  /**
   * The file defines its own `actions`: then only the WAF's actions block. Otherwise (the
   * recommended ruleset defines none and marks almost no rule blocking) Nimbus's block mode
   * blocks on every attack attempt.
   */
  explicitActions: boolean;
  /** Rule conditions that cookies were added to (see inspectCookiesLikeQuery). */
  cookieInputsAdded: number;
}

export const recommendedFileName = 'recommended.json';
const ddTraceRecommended = 'dd-trace/packages/dd-trace/src/appsec/recommended.json';

export interface RulesetLocation {
  /** The configured rules file (config.appsecRules). */
  configured?: string;
  /** Where the agent bundle lives; defaults to this module's folder (the bundle at run time). */
  bundleDir?: string;
}

/** The rules file to load, by the order above; a RulesetError when there is none. */
export function resolveRulesetPath(location: RulesetLocation = {}): string {
  if (location.configured) return path.resolve(location.configured);
  const bundleDir = location.bundleDir ?? path.dirname(fileURLToPath(import.meta.url));
  const beside = path.join(bundleDir, recommendedFileName);
  // Once at start, not per invocation: a sync check is fine here.
  if (existsSync(beside)) return beside;
  // The layer bundle is split: this module runs from chunks/, the ruleset sits beside agent.mjs.
  const above = path.join(bundleDir, '..', recommendedFileName);
  if (existsSync(above)) return above;
  try {
    return createRequire(import.meta.url).resolve(ddTraceRecommended);
  } catch (err) {
    throw new RulesetError(
      `no WAF rules found: set DD_APPSEC_RULES, or ship ${recommendedFileName} beside the agent (${beside}), or install dd-trace`,
      undefined,
      { cause: err },
    );
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks the shape libddwaf needs before handing it over, for a message better than "Invalid rules". */
export function parseRuleset(text: string, filePath: string): Ruleset {
  let rules: unknown;
  try {
    rules = JSON.parse(text);
  } catch (err) {
    throw new RulesetError(`WAF rules file ${filePath} is not valid JSON: ${(err as Error).message}`, filePath, { cause: err });
  }
  if (!isObject(rules)) throw new RulesetError(`WAF rules file ${filePath} must hold a JSON object`, filePath);
  const lists = ['rules', 'custom_rules', 'exclusions', 'rules_data', 'processors', 'scanners', 'actions', 'rules_override'] as const;
  for (const key of lists) {
    if (rules[key] !== undefined && !Array.isArray(rules[key])) throw new RulesetError(`WAF rules file ${filePath}: "${key}" must be an array`, filePath);
  }
  const ruleCount = ((rules.rules as unknown[] | undefined)?.length ?? 0) + ((rules.custom_rules as unknown[] | undefined)?.length ?? 0);
  if (ruleCount === 0) throw new RulesetError(`WAF rules file ${filePath} has no "rules"`, filePath);
  const metadata = rules.metadata;
  const version = isObject(metadata) && typeof metadata.rules_version === 'string' ? metadata.rules_version : undefined;
  const explicitActions = Array.isArray(rules.actions) && rules.actions.length > 0;
  return { path: filePath, rules, version, explicitActions, cookieInputsAdded: 0 };
}

/** The categories whose rules also look at cookies in Nimbus. */
const cookieCategories = new Set(['sql_injection', 'xss', 'lfi', 'ssrf', 'command_injection']);

/**
 * Makes the injection rules (SQL, XSS, LFI, SSRF, command) look at cookies wherever they look
 * at the whole query string, as the OWASP Core Rule Set they come from does (REQUEST_COOKIES).
 * Datadog's recommended ruleset dropped cookies from them, so with it as shipped an injection
 * in a cookie goes unseen; Nimbus checks cookies like any other client-controlled parameter.
 * Rule ids and names stay as they are. Returns how many conditions were extended.
 */
export function inspectCookiesLikeQuery(rules: Record<string, unknown>): number {
  let added = 0;
  for (const list of [rules.rules, rules.custom_rules]) {
    if (!Array.isArray(list)) continue;
    for (const rule of list as Array<{ tags?: { type?: unknown }; conditions?: unknown }>) {
      if (!cookieCategories.has(String(rule?.tags?.type)) || !Array.isArray(rule.conditions)) continue;
      for (const condition of rule.conditions as Array<{ parameters?: { inputs?: unknown } }>) {
        const inputs = condition?.parameters?.inputs;
        if (!Array.isArray(inputs)) continue;
        const addresses = inputs as Array<{ address?: unknown; key_path?: unknown }>;
        const wholeQuery = addresses.some((i) => i?.address === 'server.request.query' && i.key_path === undefined);
        if (!wholeQuery || addresses.some((i) => i?.address === 'server.request.cookies')) continue;
        addresses.push({ address: 'server.request.cookies' });
        added++;
      }
    }
  }
  return added;
}

export interface ReadRulesetOptions {
  /** Apply inspectCookiesLikeQuery (true). */
  inspectCookies?: boolean;
}

export async function readRuleset(filePath: string, options: ReadRulesetOptions = {}): Promise<Ruleset> {
  let text: string;
  try {
    text = await readFile(filePath, 'utf8');
  } catch (err) {
    throw new RulesetError(`cannot read WAF rules file ${filePath}: ${(err as Error).message}`, filePath, { cause: err });
  }
  const ruleset = parseRuleset(text, filePath);
  if (options.inspectCookies !== false) ruleset.cookieInputsAdded = inspectCookiesLikeQuery(ruleset.rules);
  return ruleset;
}
