/**
 * Log processing rules as Datadog's `DD_LOGS_CONFIG_PROCESSING_RULES` defines them: a JSON
 * array of `{type, name, pattern, replace_placeholder}` applied in order to every log message.
 *
 * A bad rule is skipped with a warning and the others still apply: a typo in one pattern must
 * not turn off the masking of the rest, nor stop the agent.
 */

export type ProcessingRuleType = 'exclude_at_match' | 'include_at_match' | 'mask_sequences';

export interface ProcessingRule {
  type: ProcessingRuleType;
  name: string;
  /** Global for `mask_sequences` (every match is replaced), non-global otherwise (no lastIndex state). */
  pattern: RegExp;
  /** `mask_sequences` only; `$1` refers to a capture group, as in Datadog's `${1}`. */
  replacePlaceholder?: string;
}

export interface ParsedProcessingRules {
  rules: ProcessingRule[];
  warnings: string[];
}

const TYPES = new Set<string>(['exclude_at_match', 'include_at_match', 'mask_sequences']);
/** Datadog's patterns are Go (RE2) regexes, which put flags in a leading `(?i)`; JavaScript takes them as flags. */
const LEADING_FLAGS = /^\(\?([ims]+)\)/;

export function parseProcessingRules(raw: string | undefined): ParsedProcessingRules {
  const result: ParsedProcessingRules = { rules: [], warnings: [] };
  if (raw === undefined || raw.trim() === '') return result;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    result.warnings.push(`DD_LOGS_CONFIG_PROCESSING_RULES is not valid JSON (${(error as Error).message}); no processing rules apply`);
    return result;
  }
  if (!Array.isArray(parsed)) {
    result.warnings.push('DD_LOGS_CONFIG_PROCESSING_RULES must be a JSON array of rules; no processing rules apply');
    return result;
  }
  parsed.forEach((entry: unknown, index) => {
    const rule = readRule(entry, index);
    if (typeof rule === 'string') result.warnings.push(rule);
    else result.rules.push(rule);
  });
  return result;
}

/** The rule, or a warning naming it. */
function readRule(entry: unknown, index: number): ProcessingRule | string {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return `processing rule #${index} is not an object; skipped`;
  const { type, name, pattern, replace_placeholder: placeholder } = entry as Record<string, unknown>;
  const label = typeof name === 'string' && name !== '' ? `processing rule "${name}" (#${index})` : `processing rule #${index}`;
  if (typeof name !== 'string' || name === '') return `${label} has no name; skipped`;
  if (typeof type !== 'string' || !TYPES.has(type)) {
    return `${label} has unknown type ${JSON.stringify(type)} (exclude_at_match, include_at_match or mask_sequences); skipped`;
  }
  if (typeof pattern !== 'string' || pattern === '') return `${label} has no pattern; skipped`;
  if (type === 'mask_sequences' && typeof placeholder !== 'string') return `${label} is mask_sequences without a replace_placeholder; skipped`;

  let source = pattern;
  let flags = type === 'mask_sequences' ? 'g' : '';
  const leading = LEADING_FLAGS.exec(source);
  if (leading) {
    source = source.slice(leading[0].length);
    flags += leading[1];
  }
  let regex: RegExp;
  try {
    regex = new RegExp(source, flags);
  } catch (error) {
    return `${label} has an invalid pattern ${JSON.stringify(pattern)} (${(error as Error).message}); skipped`;
  }
  const rule: ProcessingRule = { type: type as ProcessingRuleType, name, pattern: regex };
  if (type === 'mask_sequences') rule.replacePlaceholder = (placeholder as string).replace(/\$\{(\d+)\}/g, '$$$1');
  return rule;
}

/** The message after the rules, or undefined when a rule drops it. */
export function applyProcessingRules(rules: ProcessingRule[], message: string): string | undefined {
  let result = message;
  for (const rule of rules) {
    switch (rule.type) {
      case 'exclude_at_match':
        if (rule.pattern.test(result)) return undefined;
        break;
      case 'include_at_match':
        if (!rule.pattern.test(result)) return undefined;
        break;
      case 'mask_sequences':
        result = result.replace(rule.pattern, rule.replacePlaceholder!);
        break;
    }
  }
  return result;
}

/** Only the masking rules, for strings that may be rewritten but not dropped (a JSON log's other fields). */
export function applyMasks(rules: ProcessingRule[], value: string): string {
  let result = value;
  for (const rule of rules) if (rule.type === 'mask_sequences') result = result.replace(rule.pattern, rule.replacePlaceholder!);
  return result;
}
