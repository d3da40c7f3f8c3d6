/**
 * The agent's own log lines, on stderr, where Lambda collects an extension's output. Few
 * and short: the agent subscribes to its own extension logs, so a line per event would
 * feed itself.
 */
const order = { debug: 0, info: 1, warn: 2, error: 3, off: 4 } as const;

export interface AgentLog {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function createAgentLog(level: keyof typeof order): AgentLog {
  const min = order[level];
  const write = (at: keyof typeof order, message: string): void => {
    if (order[at] >= min) process.stderr.write(`[nimbus-agent] ${at.toUpperCase()} ${message}\n`);
  };
  return {
    debug: (m) => write('debug', m),
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', m),
  };
}
