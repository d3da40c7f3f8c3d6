/**
 * The Store seam: configuration, metadata and logs. The embedded default is SQLite
 * in the data dir (sqlite-store.ts); a cluster would put PostgreSQL behind the same
 * interface. Nothing outside src/store writes SQL.
 *
 * Methods are async so that a networked backend fits, even though node:sqlite is
 * synchronous. Every write is atomic: a failed call leaves nothing half-written.
 */
import type { FunctionRecord } from '../functions/types.ts';

export interface ListPage<T> {
  items: T[];
  /** Opaque marker for the next page; absent on the last page. */
  nextMarker?: string;
}

export interface LogRecord {
  functionName: string;
  /** `2026/11/23/[$LATEST]0123456789abcdef0123456789abcdef` */
  logStream: string;
  /** Epoch ms when the line was written. */
  timestampMs: number;
  /** One log line, without its trailing newline. */
  message: string;
  /** Request id the line belongs to, when known. */
  requestId?: string;
}

export interface LogQuery {
  functionName: string;
  /** Only records with sequence number greater than this (for --follow). */
  afterSeq?: number;
  /** Only records at or after this epoch ms. */
  sinceMs?: number;
  /** At most this many records, the newest ones (default 1000). */
  limit?: number;
}

export interface StoredLogRecord extends LogRecord {
  /** Monotonic sequence number assigned by the store. */
  seq: number;
}

export interface FunctionStore {
  /** Inserts a new function; throws ResourceConflictException if the name exists. */
  createFunction(record: FunctionRecord): Promise<void>;
  /** The `$LATEST` record of a function, or undefined. */
  getFunction(functionName: string): Promise<FunctionRecord | undefined>;
  /** Functions ordered by name; `marker` is the nextMarker of the previous page. */
  listFunctions(options: { marker?: string; maxItems: number }): Promise<ListPage<FunctionRecord>>;
  /**
   * Replaces a function's record. If `expectedRevisionId` is given and differs from the
   * stored one, throws PreconditionFailedException and changes nothing.
   * Throws ResourceNotFoundException if the function does not exist.
   */
  updateFunction(record: FunctionRecord, expectedRevisionId?: string): Promise<void>;
  /** Deletes a function and its logs; returns false if it did not exist. */
  deleteFunction(functionName: string): Promise<boolean>;
  /** Number of functions and the sum of their code sizes (GetAccountSettings). */
  usage(): Promise<{ functionCount: number; totalCodeSizeBytes: number }>;
}

export interface LogStore {
  /** Appends records in one transaction; keeps at most `retainPerFunction` per function. */
  appendLogs(records: LogRecord[]): Promise<void>;
  /** Records in ascending seq order. */
  queryLogs(query: LogQuery): Promise<StoredLogRecord[]>;
}

/** One stored resource of a kind (a layer version, an alias, a URL config...). */
export interface ResourceRecord<T> {
  key: string;
  record: T;
}

/**
 * A generic keyed store for the domain's smaller resources, so that each subsystem can
 * keep its records without a schema change of its own. Records are JSON. Keys sort as
 * strings: pad numbers (e.g. `my-fn/0000000042`) so they list in numeric order.
 */
export interface ResourceStore {
  /** Stores a record. With `ifAbsent`, changes nothing and returns false if the key exists. */
  putResource(kind: string, key: string, record: unknown, options?: { ifAbsent?: boolean }): Promise<boolean>;
  getResource<T>(kind: string, key: string): Promise<T | undefined>;
  /** Records of a kind whose key starts with `prefix`, in key order; `marker` is a previous nextMarker. */
  listResources<T>(kind: string, options?: { prefix?: string; marker?: string; maxItems?: number }): Promise<ListPage<ResourceRecord<T>>>;
  deleteResource(kind: string, key: string): Promise<boolean>;
  /** Deletes every record of a kind whose key starts with `prefix`; returns how many. */
  deleteResources(kind: string, prefix: string): Promise<number>;
}

/** One asynchronous invocation waiting in the durable queue. */
export interface AsyncEventRecord {
  /** The invocation's request id, kept across retries. */
  id: string;
  functionName: string;
  /** Version or alias as invoked; absent for `$LATEST`. */
  qualifier?: string;
  payload: Buffer;
  enqueuedAtMs: number;
  nextAttemptAtMs: number;
  /** Invocations made so far that ended in a function error. */
  attempts: number;
  /** Times it was throttled (or hit a system error) and put back. */
  throttles: number;
}

/**
 * The async queue seam (ARCHITECTURE.md: durable table in the store; NATS JetStream or a
 * PostgreSQL queue in a cluster). Claiming is exclusive: a claimed event is in flight
 * until it is completed or rescheduled, or until `recover` after a crash.
 */
export interface AsyncQueueStore {
  enqueueAsync(event: AsyncEventRecord): Promise<void>;
  /** Claims up to `limit` events due at `nowMs`, oldest first, marking them in flight. */
  claimDueAsync(nowMs: number, limit: number): Promise<AsyncEventRecord[]>;
  /** Puts a claimed event back in the queue for a later attempt. */
  rescheduleAsync(id: string, nextAttemptAtMs: number, attempts: number, throttles: number): Promise<void>;
  /** Removes a delivered (or given-up) event. */
  completeAsync(id: string): Promise<void>;
  /** Returns in-flight events to the queue (after a crash); returns how many. */
  recoverAsync(): Promise<number>;
  /** When the next queued event is due, or undefined when none is queued. */
  nextDueAsync(): Promise<number | undefined>;
  /** Events queued or in flight. */
  asyncDepth(): Promise<number>;
}

export interface Store extends FunctionStore, LogStore, ResourceStore, AsyncQueueStore {
  /** Current schema version after migrations. */
  schemaVersion(): number;
  close(): Promise<void>;
}
