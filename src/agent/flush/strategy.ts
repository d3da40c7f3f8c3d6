/**
 * `DD_SERVERLESS_FLUSH_STRATEGY` / `NIMBUS_FLUSH_STRATEGY`: when the agent sends what it has
 * buffered. The accepted forms are Datadog's (datadog-agent-config's flush_strategy
 * deserializer): `end`, `end,N`, `periodically,N`, `continuously,N`, N in milliseconds.
 * Datadog silently falls back to the adaptive default on anything else; we fall back too,
 * but say so, because a typo here quietly changes how much latency every invocation pays.
 */

export type FlushStrategy =
  /** Adaptive: end-of-invocation flushes for a new function, periodic or continuous once busy (flush-control.ts). */
  | { kind: 'default' }
  /** A blocking flush after every invocation. */
  | { kind: 'end' }
  /** `end,N`: a blocking flush after an invocation when N ms have passed since the last flush. */
  | { kind: 'end-periodically'; intervalMs: number }
  /** `periodically,N`: a blocking flush at the start of an invocation when N ms have passed. */
  | { kind: 'periodically'; intervalMs: number }
  /** `continuously,N`: a background flush at the start of an invocation when N ms have passed. */
  | { kind: 'continuously'; intervalMs: number };

export interface ParsedFlushStrategy {
  strategy: FlushStrategy;
  /** Set when `raw` was given but not understood; the strategy is then the default. */
  warning?: string;
}

const ACCEPTED_FORMS = '`end`, `end,N`, `periodically,N` or `continuously,N` (N: milliseconds, a positive integer)';

const KIND_BY_WORD: Record<string, 'end-periodically' | 'periodically' | 'continuously'> = {
  end: 'end-periodically',
  periodically: 'periodically',
  continuously: 'continuously',
};

export function parseFlushStrategy(raw: string | undefined): ParsedFlushStrategy {
  if (raw === undefined || raw.trim() === '') return { strategy: { kind: 'default' } };
  const parts = raw.split(',').map((part) => part.trim());
  const word = parts[0].toLowerCase();

  if (parts.length === 1 && word === 'end') return { strategy: { kind: 'end' } };
  const kind = Object.hasOwn(KIND_BY_WORD, word) ? KIND_BY_WORD[word] : undefined;
  if (kind !== undefined && parts.length === 2) {
    const intervalMs = parseInterval(parts[1]);
    if (intervalMs !== undefined) return { strategy: { kind, intervalMs } };
  }
  return {
    strategy: { kind: 'default' },
    warning: `flush strategy ${JSON.stringify(raw)} is not one of ${ACCEPTED_FORMS}; using the adaptive default`,
  };
}

/** A positive whole number of milliseconds, written in plain digits (no `1e3`, no `0x10`, no `10.5`). */
function parseInterval(text: string): number | undefined {
  if (!/^\d{1,15}$/.test(text)) return undefined;
  const n = Number(text);
  return n > 0 ? n : undefined;
}

/** The strategy written back in its environment-variable form, for log lines. */
export function formatFlushStrategy(strategy: FlushStrategy): string {
  switch (strategy.kind) {
    case 'default':
      return 'default';
    case 'end':
      return 'end';
    case 'end-periodically':
      return `end,${strategy.intervalMs}`;
    case 'periodically':
    case 'continuously':
      return `${strategy.kind},${strategy.intervalMs}`;
  }
}
