/**
 * Turns Telemetry API records into log records: Lambda's own START/END/REPORT lines from the
 * platform records, and function/extension lines with their request id, level and (for JSON
 * logs) parsed attributes. Processing rules drop or mask lines before they are kept, and
 * out-of-memory messages are reported, since an OOM-killed runtime sends no error of its own.
 */
import type { LogRecord, LogSource, TelemetryEvent, TelemetrySink } from '../model.ts';
import { applyMasks, applyProcessingRules } from './processing-rules.ts';
import type { ProcessingRule } from './processing-rules.ts';

export interface LogProcessorOptions {
  sink: TelemetrySink;
  rules: ProcessingRule[];
  /** Called once per invocation whose function printed an out-of-memory message. */
  onOutOfMemory?(requestId: string | undefined): void;
  now?: () => number;
}

type Json = Record<string, unknown>;

/** What each runtime prints when it runs out of memory (the Datadog extension watches the same). */
const OUT_OF_MEMORY =
  /JavaScript heap out of memory|MemoryError|fatal error: runtime: out of memory|java\.lang\.OutOfMemoryError|Runtime exited with error: signal: killed|NoMemoryError|OutOfMemoryException/;
/** Node.js runtime text format: `<ISO time>\t<request id>\t<LEVEL>\t<message>`. */
const NODE_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\t([^\t\s]+)\t([A-Z]+)\t([^]*)$/;
/** Python runtime text format: `[LEVEL]\t<time>\t<request id>\t<message>`. */
const PYTHON_LINE = /^\[([A-Z]+)\]\t\S+\t([^\t\s]+)\t([^]*)$/;
const JSON_LEVEL_KEYS = ['level', 'levelname', 'severity'];
const JSON_REQUEST_ID_KEYS = ['requestId', 'request_id', 'AWSrequestId', 'aws_request_id'];
/** pino and bunyan write numeric levels. */
const NUMERIC_LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
/** Nothing to report when no OOM has been seen yet: a sentinel unlike any request id (undefined included). */
const NO_OOM_YET = Symbol('none');

export class LogProcessor {
  readonly #sink: TelemetrySink;
  readonly #rules: ProcessingRule[];
  readonly #hasMasks: boolean;
  readonly #onOutOfMemory: ((requestId: string | undefined) => void) | undefined;
  readonly #now: () => number;
  /**
   * The invocation lines are attributed to: set at platform.start and kept until the next one,
   * because the Telemetry API may deliver a function's last lines after its runtimeDone.
   */
  #requestId: string | undefined;
  #lastOutOfMemory: string | undefined | typeof NO_OOM_YET = NO_OOM_YET;

  constructor(options: LogProcessorOptions) {
    this.#sink = options.sink;
    this.#rules = options.rules;
    this.#hasMasks = options.rules.some((rule) => rule.type === 'mask_sequences');
    this.#onOutOfMemory = options.onOutOfMemory;
    this.#now = options.now ?? Date.now;
  }

  /** The request id function lines are currently attributed to. */
  get currentRequestId(): string | undefined {
    return this.#requestId;
  }

  handle(event: TelemetryEvent): void {
    const timestamp = this.#timestamp(event.time);
    switch (event.type) {
      case 'function':
        return this.#handleLine('function', event.record, timestamp);
      case 'extension':
        return this.#handleLine('extension', event.record, timestamp);
      case 'platform.start':
        return this.#handleStart(asObject(event.record), timestamp);
      case 'platform.runtimeDone':
        return this.#handleRuntimeDone(asObject(event.record), timestamp);
      case 'platform.report':
        return this.#handleReport(asObject(event.record), timestamp);
      case 'platform.logsDropped':
        return this.#handleLogsDropped(asObject(event.record), timestamp);
      default:
      // Other platform records (init, restore, subscription) carry metrics, not log lines.
    }
  }

  #handleStart(record: Json | undefined, timestamp: number): void {
    const requestId = stringField(record, 'requestId');
    if (requestId === undefined) return;
    this.#requestId = requestId;
    const version = stringField(record, 'version') ?? '$LATEST';
    this.#emitPlatform(`START RequestId: ${requestId} Version: ${version}`, requestId, timestamp, 'info');
  }

  #handleRuntimeDone(record: Json | undefined, timestamp: number): void {
    const requestId = stringField(record, 'requestId');
    if (requestId === undefined) return;
    this.#emitPlatform(`END RequestId: ${requestId}`, requestId, timestamp, 'info');
  }

  #handleReport(record: Json | undefined, timestamp: number): void {
    const requestId = stringField(record, 'requestId');
    if (requestId === undefined) return;
    const metrics = asObject(record?.metrics);
    let line = `REPORT RequestId: ${requestId}`;
    const duration = numberField(metrics, 'durationMs');
    const billed = numberField(metrics, 'billedDurationMs');
    const memory = numberField(metrics, 'memorySizeMB');
    const maxMemory = numberField(metrics, 'maxMemoryUsedMB');
    const init = numberField(metrics, 'initDurationMs');
    // Same fields, order and precision as the REPORT line Lambda writes to CloudWatch.
    if (duration !== undefined) line += `\tDuration: ${duration.toFixed(2)} ms`;
    if (billed !== undefined) line += `\tBilled Duration: ${Math.round(billed)} ms`;
    if (memory !== undefined) line += `\tMemory Size: ${Math.round(memory)} MB`;
    if (maxMemory !== undefined) line += `\tMax Memory Used: ${Math.round(maxMemory)} MB`;
    if (init !== undefined) line += `\tInit Duration: ${init.toFixed(2)} ms`;
    const status = stringField(record, 'status');
    let level = 'info';
    if (status !== undefined && status !== 'success') {
      level = 'error';
      line += `\tStatus: ${status}`;
      const errorType = stringField(record, 'errorType');
      if (errorType !== undefined) line += `\tError Type: ${errorType}`;
    }
    this.#emitPlatform(line, requestId, timestamp, level);
  }

  #handleLogsDropped(record: Json | undefined, timestamp: number): void {
    const records = numberField(record, 'droppedRecords') ?? 0;
    const bytes = numberField(record, 'droppedBytes') ?? 0;
    const reason = stringField(record, 'reason') ?? 'unknown reason';
    this.#emitPlatform(`Lambda dropped ${records} log records (${bytes} bytes) before the agent received them: ${reason}`, this.#requestId, timestamp, 'warn');
  }

  #emitPlatform(message: string, requestId: string | undefined, timestamp: number, level: string): void {
    const kept = this.#rules.length === 0 ? message : applyProcessingRules(this.#rules, message);
    if (kept === undefined) return;
    const record: LogRecord = { timestamp, source: 'platform', message: kept, level };
    if (requestId !== undefined) record.requestId = requestId;
    this.#sink.addLog(record);
  }

  #handleLine(source: LogSource, raw: unknown, timestamp: number): void {
    // `text` is the line as written; records the platform already parsed (JSON log format) have
    // none, and their message stands in for it (no re-serialising per record).
    let text: string | undefined;
    let object: Json | undefined;
    if (typeof raw === 'string') {
      text = trimLineEnd(raw);
      object = parseJsonObject(text);
    } else if (isObject(raw)) {
      object = raw;
    } else {
      return;
    }

    let requestId: string | undefined;
    let level: string | undefined;
    let message: string;
    if (object) {
      requestId = firstString(object, JSON_REQUEST_ID_KEYS);
      level = normalizeLevel(firstValue(object, JSON_LEVEL_KEYS));
      const body = object.message ?? object.msg;
      if (typeof body === 'string') message = body;
      else if (body !== undefined && body !== null) message = JSON.stringify(body);
      else message = text ?? JSON.stringify(object);
    } else {
      message = text!;
      const node = NODE_LINE.exec(message);
      const python = node ? null : PYTHON_LINE.exec(message);
      let body: string | undefined;
      if (node) {
        requestId = realId(node[1]);
        level = normalizeLevel(node[2]);
        body = node[3];
      } else if (python) {
        requestId = realId(python[2]);
        level = normalizeLevel(python[1]);
        body = python[3];
      }
      // The runtime's prefix carries the time, request id and level, which the record has
      // in fields of its own: the message is what the function wrote.
      if (body !== undefined) message = body;
      // `console.log(JSON.stringify(...))` in the Text format: the prefix, then JSON.
      const inner = body === undefined ? undefined : parseJsonObject(body);
      if (inner) {
        object = inner;
        const innerLevel = normalizeLevel(firstValue(inner, JSON_LEVEL_KEYS));
        if (innerLevel) level = innerLevel;
        const text = inner.message ?? inner.msg;
        if (typeof text === 'string') message = text;
      }
    }
    requestId ??= this.#requestId;

    if (source === 'function' && OUT_OF_MEMORY.test(text ?? message)) this.#reportOutOfMemory(requestId);

    if (this.#rules.length > 0) {
      const kept = applyProcessingRules(this.#rules, message);
      if (kept === undefined) return;
      message = kept;
      // A secret masked in the message must not survive in the parsed object sent beside it.
      if (object && this.#hasMasks) object = maskStrings(this.#rules, object) as Json;
    }

    const record: LogRecord = { timestamp, source, message };
    if (requestId !== undefined) record.requestId = requestId;
    if (level !== undefined) record.level = level;
    if (object) record.attributes = object;
    this.#sink.addLog(record);
  }

  #reportOutOfMemory(requestId: string | undefined): void {
    // A runtime prints several matching lines for one OOM (message, stack, exit); report it once.
    if (this.#lastOutOfMemory === requestId) return;
    this.#lastOutOfMemory = requestId;
    this.#onOutOfMemory?.(requestId);
  }

  #timestamp(time: string): number {
    const parsed = typeof time === 'string' ? Date.parse(time) : NaN;
    return Number.isNaN(parsed) ? this.#now() : parsed;
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asObject(value: unknown): Json | undefined {
  return isObject(value) ? value : undefined;
}

function stringField(record: Json | undefined, key: string): string | undefined {
  const value = record?.[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function numberField(record: Json | undefined, key: string): number | undefined {
  const value = record?.[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function firstValue(object: Json, keys: string[]): unknown {
  for (const key of keys) if (object[key] !== undefined && object[key] !== null) return object[key];
  return undefined;
}

function firstString(object: Json, keys: string[]): string | undefined {
  for (const key of keys) {
    const value = object[key];
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}

function trimLineEnd(line: string): string {
  let end = line.length;
  while (end > 0 && (line.charCodeAt(end - 1) === 10 || line.charCodeAt(end - 1) === 13)) end--;
  return end === line.length ? line : line.slice(0, end);
}

function parseJsonObject(text: string): Json | undefined {
  // Cheap test first: most lines are not JSON, and JSON.parse on them would throw (slow).
  if (text.charCodeAt(0) !== 123 /* { */ || text.charCodeAt(text.length - 1) !== 125 /* } */) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Node prints `undefined` as the request id for lines written outside an invocation (init). */
function realId(id: string): string | undefined {
  return id === 'undefined' || id === 'null' ? undefined : id;
}

function normalizeLevel(value: unknown): string | undefined {
  if (typeof value === 'number') return NUMERIC_LEVELS[value];
  if (typeof value !== 'string' || value === '') return undefined;
  const level = value.toLowerCase();
  return level === 'warning' ? 'warn' : level;
}

function maskStrings(rules: ProcessingRule[], value: unknown): unknown {
  if (typeof value === 'string') return applyMasks(rules, value);
  if (Array.isArray(value)) return value.map((item) => maskStrings(rules, item));
  if (isObject(value)) {
    const masked: Json = {};
    for (const key in value) masked[key] = maskStrings(rules, value[key]);
    return masked;
  }
  return value;
}
