/**
 * The platform's own log lines, exactly as Lambda writes them in Text format
 * (shared/reference/lambda-interfaces.md §8): START, END, REPORT, INIT_REPORT and the
 * timeout line. Tabs separate REPORT fields; durations have two decimals.
 */

export function startLine(requestId: string, version: string): string {
  return `START RequestId: ${requestId} Version: ${version}`;
}

export function endLine(requestId: string): string {
  return `END RequestId: ${requestId}`;
}

export interface ReportFields {
  requestId: string;
  durationMs: number;
  billedDurationMs: number;
  memorySizeMb: number;
  maxMemoryUsedMb: number;
  initDurationMs?: number;
  /** `timeout` or `error` when the invocation failed at the platform level. */
  status?: 'timeout' | 'error';
  errorType?: string;
}

export function reportLine(f: ReportFields): string {
  let line =
    `REPORT RequestId: ${f.requestId}\tDuration: ${f.durationMs.toFixed(2)} ms\tBilled Duration: ${f.billedDurationMs} ms\t` +
    `Memory Size: ${f.memorySizeMb} MB\tMax Memory Used: ${f.maxMemoryUsedMb} MB\t`;
  if (f.initDurationMs !== undefined) line += `Init Duration: ${f.initDurationMs.toFixed(2)} ms\t`;
  if (f.status) line += `Status: ${f.status}\t`;
  if (f.errorType) line += `Error Type: ${f.errorType}\t`;
  return line;
}

export function initReportLine(initDurationMs: number, phase: 'init' | 'invoke', status: 'success' | 'error' | 'timeout', errorType?: string): string {
  let line = `INIT_REPORT Init Duration: ${initDurationMs.toFixed(2)} ms\tPhase: ${phase}\tStatus: ${status}`;
  if (errorType) line += `\tError Type: ${errorType}`;
  return line;
}

/** Lambda's timeout line: `<ISO time> <request id> Task timed out after 3.00 seconds`. */
export function timeoutLine(requestId: string, timeoutSeconds: number, at: Date): string {
  return `${at.toISOString()} ${requestId} Task timed out after ${timeoutSeconds.toFixed(2)} seconds`;
}

/** Lambda bills in 1 ms increments, rounding up. */
export function billedDurationMs(durationMs: number): number {
  return Math.max(1, Math.ceil(durationMs));
}

/** `2026/11/23/[$LATEST]<32 hex>` as Lambda names log streams. */
export function logStreamName(at: Date, version: string, instanceHex: string): string {
  const y = at.getUTCFullYear();
  const m = String(at.getUTCMonth() + 1).padStart(2, '0');
  const d = String(at.getUTCDate()).padStart(2, '0');
  return `${y}/${m}/${d}/[${version}]${instanceHex}`;
}

/** `EXTENSION\tName: x\tState: Ready\tEvents: [INVOKE,SHUTDOWN]`, written at the end of Init. */
export function extensionLine(name: string, state: string, events: readonly string[], errorType?: string): string {
  let line = `EXTENSION\tName: ${name}\tState: ${state}\tEvents: [${events.join(',')}]`;
  if (errorType) line += `\tError Type: ${errorType}`;
  return line;
}
