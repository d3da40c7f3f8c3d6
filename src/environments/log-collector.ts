/**
 * Turns an environment's stdout and stderr into log lines: splits on newlines, tags
 * each line with the request in flight, keeps the tail of the current invocation
 * (for `LogType: Tail`) and hands every line to the function's log sink.
 */
import type { FunctionLogSink } from './types.ts';

/** Lambda returns the last 4 KB of the log in X-Amz-Log-Result. */
const tailBytes = 4096;
/** A line longer than this is cut (Lambda's CloudWatch events cap at 256 KB). */
const maxLineBytes = 256 * 1024;

const outOfMemoryMarkers = ['JavaScript heap out of memory', 'MemoryError'];

export class LogCollector {
  readonly #sink: FunctionLogSink;
  readonly #functionName: string;
  readonly #logStream: string;
  readonly #partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  #requestId: string | undefined;
  #tail: string[] | undefined;
  #tailSize = 0;
  sawOutOfMemory = false;

  constructor(sink: FunctionLogSink, functionName: string, logStream: string) {
    this.#sink = sink;
    this.#functionName = functionName;
    this.#logStream = logStream;
  }

  beginInvoke(requestId: string, keepTail: boolean): void {
    this.#requestId = requestId;
    this.#tail = keepTail ? [] : undefined;
    this.#tailSize = 0;
  }

  /** Ends attribution to the current request; returns the kept tail, if asked for. */
  endInvoke(): string | undefined {
    this.flush();
    const tail = this.#tail?.join('');
    this.#requestId = undefined;
    this.#tail = undefined;
    if (tail === undefined) return undefined;
    const bytes = Buffer.from(tail, 'utf8');
    return bytes.length <= tailBytes ? tail : bytes.subarray(bytes.length - tailBytes).toString('utf8');
  }

  onOutput(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    const text = this.#partial[stream] + chunk.toString('utf8');
    let start = 0;
    let nl = text.indexOf('\n', start);
    while (nl >= 0) {
      this.#line(text.slice(start, nl));
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    let rest = text.slice(start);
    if (rest.length > maxLineBytes) {
      this.#line(rest);
      rest = '';
    }
    this.#partial[stream] = rest;
  }

  /** A line written by the platform (START, END, REPORT, ...). */
  platform(line: string): void {
    this.#line(line);
  }

  /** Emits any unterminated output as a line. */
  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.#partial[stream]) {
        this.#line(this.#partial[stream]);
        this.#partial[stream] = '';
      }
    }
  }

  #line(message: string): void {
    if (!this.sawOutOfMemory && outOfMemoryMarkers.some((m) => message.includes(m))) this.sawOutOfMemory = true;
    if (this.#tail) {
      this.#tail.push(message + '\n');
      this.#tailSize += message.length + 1;
      // Keep memory bounded: drop old lines once well past the tail size.
      while (this.#tailSize > tailBytes * 4 && this.#tail.length > 1) this.#tailSize -= this.#tail.shift()!.length;
    }
    this.#sink.write({
      functionName: this.#functionName,
      logStream: this.#logStream,
      timestampMs: Date.now(),
      message,
      requestId: this.#requestId,
    });
  }
}
