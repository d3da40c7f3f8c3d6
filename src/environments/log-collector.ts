/**
 * Turns an environment's output into log lines: the runtime's stdout and stderr
 * (function logs) and each external extension's (extension logs, which Lambda writes to
 * the same log stream). Splits on newlines, tags each line with the request in flight,
 * keeps the tail of each invocation (for `LogType: Tail`), hands every line to the
 * function's log sink, and tells the telemetry hub about function and extension lines.
 *
 * With several invocations in flight (managed instances) a line belongs to the one whose
 * request id it mentions, as the runtime clients write it in every application line.
 */
import type { FunctionLogSink } from './types.ts';

/** Lambda returns the last 4 KB of the log in X-Amz-Log-Result. */
const tailBytes = 4096;
/** A line longer than this is cut (Lambda's CloudWatch events cap at 256 KB). */
const maxLineBytes = 256 * 1024;

const outOfMemoryMarkers = ['JavaScript heap out of memory', 'MemoryError'];

export type LineKind = 'function' | 'extension';

interface Tail {
  lines: string[];
  size: number;
}

export class LogCollector {
  readonly #sink: FunctionLogSink;
  readonly #functionName: string;
  readonly #logStream: string;
  readonly #onLine: ((kind: LineKind, message: string, timeMs: number) => void) | undefined;
  readonly #partial = new Map<string, { kind: LineKind; text: string }>();
  /** Invocations in flight, with their tail when one was asked for. */
  readonly #active = new Map<string, Tail | undefined>();
  sawOutOfMemory = false;

  constructor(sink: FunctionLogSink, functionName: string, logStream: string, onLine?: (kind: LineKind, message: string, timeMs: number) => void) {
    this.#sink = sink;
    this.#functionName = functionName;
    this.#logStream = logStream;
    this.#onLine = onLine;
  }

  beginInvoke(requestId: string, keepTail: boolean): void {
    this.#active.set(requestId, keepTail ? { lines: [], size: 0 } : undefined);
  }

  /** Ends attribution to a request; returns its kept tail, if one was asked for. */
  endInvoke(requestId: string): string | undefined {
    if (this.#active.size === 1) this.flush();
    const tail = this.#active.get(requestId);
    this.#active.delete(requestId);
    if (tail === undefined) return undefined;
    const text = tail.lines.join('');
    const bytes = Buffer.from(text, 'utf8');
    return bytes.length <= tailBytes ? text : bytes.subarray(bytes.length - tailBytes).toString('utf8');
  }

  /** Output of one process stream; `key` names the stream (e.g. `runtime:stdout`). */
  onOutput(key: string, kind: LineKind, chunk: Buffer): void {
    const partial = this.#partial.get(key);
    const text = (partial?.text ?? '') + chunk.toString('utf8');
    let start = 0;
    let nl = text.indexOf('\n', start);
    while (nl >= 0) {
      this.#line(kind, text.slice(start, nl));
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    let rest = text.slice(start);
    if (rest.length > maxLineBytes) {
      this.#line(kind, rest);
      rest = '';
    }
    if (rest) this.#partial.set(key, { kind, text: rest });
    else if (partial) this.#partial.delete(key);
  }

  /** A line written by the platform (START, END, REPORT, ...), for one request or the current one. */
  platform(line: string, requestId?: string): void {
    this.#write(line, requestId ?? this.#current(line));
  }

  /** Emits any unterminated output as a line. */
  flush(): void {
    for (const [key, { kind, text }] of this.#partial) {
      this.#partial.delete(key);
      this.#line(kind, text);
    }
  }

  /** The request a line belongs to: the one in flight, or the one it names. */
  #current(message: string): string | undefined {
    if (this.#active.size === 0) return undefined;
    if (this.#active.size === 1) return this.#active.keys().next().value;
    for (const id of this.#active.keys()) if (message.includes(id)) return id;
    return undefined;
  }

  #line(kind: LineKind, message: string): void {
    if (kind === 'function' && !this.sawOutOfMemory && outOfMemoryMarkers.some((m) => message.includes(m))) this.sawOutOfMemory = true;
    const timestampMs = Date.now();
    this.#write(message, this.#current(message), timestampMs);
    this.#onLine?.(kind, message, timestampMs);
  }

  #write(message: string, requestId: string | undefined, timestampMs = Date.now()): void {
    const tail = requestId === undefined ? undefined : this.#active.get(requestId);
    if (tail) {
      tail.lines.push(message + '\n');
      tail.size += message.length + 1;
      // Keep memory bounded: drop old lines once well past the tail size.
      while (tail.size > tailBytes * 4 && tail.lines.length > 1) tail.size -= tail.lines.shift()!.length;
    }
    this.#sink.write({ functionName: this.#functionName, logStream: this.#logStream, timestampMs, message, requestId });
  }
}
