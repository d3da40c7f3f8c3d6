/**
 * SqliteStore: the embedded Store, one SQLite file in the data dir, on Node's built-in
 * node:sqlite (no native build). Schema changes live in migrations.ts.
 *
 * node:sqlite is synchronous; the async methods only satisfy the Store seam. Statements
 * are prepared once in the constructor and reused: appendLogs (small batches, often) and
 * getFunction (every invoke on a cache miss) are the hot paths.
 */
import { Buffer } from 'node:buffer';
import { defaultBusyTimeoutMs, openDatabase } from './sqlite-open.ts';
import { inTransaction } from './sqlite-transaction.ts';
import type { DatabaseSync, SQLOutputValue, StatementSync } from 'node:sqlite';
import {
  InvalidParameterValueException,
  PreconditionFailedException,
  ResourceConflictException,
  ResourceNotFoundException,
} from '../errors/index.ts';
import type { FunctionRecord } from '../functions/index.ts';
import type { AsyncEventRecord, ListPage, LogQuery, LogRecord, ResourceRecord, Store, StoredLogRecord } from './types.ts';

export interface SqliteStoreOptions {
  /** Database file, or `:memory:` (tests). Missing parent directories are created. */
  filePath: string;
  /** Newest log records kept per function (default 10,000). */
  logRetentionPerFunction?: number;
  /** How long a write waits for another connection's lock (default 5,000 ms). */
  busyTimeoutMs?: number;
}

/** The connection settings in effect, for diagnostics and tests. */
export interface SqlitePragmas {
  journalMode: string;
  /** 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA. */
  synchronous: number;
  foreignKeys: boolean;
  busyTimeoutMs: number;
}

const DEFAULT_LOG_RETENTION = 10_000;
const DEFAULT_LOG_LIMIT = 1_000;

const SQL = {
  begin: 'BEGIN IMMEDIATE',
  commit: 'COMMIT',
  rollback: 'ROLLBACK',
  insertFunction:
    'INSERT INTO functions (name, record, revision_id, code_size, created_at) VALUES (?, ?, ?, ?, ?) ' +
    'ON CONFLICT (name) DO NOTHING',
  selectFunction: 'SELECT record FROM functions WHERE name = ?',
  selectRevision: 'SELECT revision_id FROM functions WHERE name = ?',
  updateFunction: 'UPDATE functions SET record = ?, revision_id = ?, code_size = ? WHERE name = ?',
  deleteFunction: 'DELETE FROM functions WHERE name = ?',
  deleteFunctionLogs: 'DELETE FROM logs WHERE function_name = ?',
  deleteLogCount: 'DELETE FROM log_counts WHERE function_name = ?',
  // '' sorts before every name, so it doubles as "no marker".
  listFunctions: 'SELECT record FROM functions WHERE name > ? ORDER BY name LIMIT ?',
  usage: 'SELECT count(*) AS function_count, coalesce(sum(code_size), 0) AS code_size FROM functions',
  insertLog:
    'INSERT INTO logs (function_name, log_stream, ts, request_id, message) VALUES (?, ?, ?, ?, ?)',
  addLogCount:
    'INSERT INTO log_counts (function_name, record_count) VALUES (?, ?) ' +
    'ON CONFLICT (function_name) DO UPDATE SET record_count = record_count + excluded.record_count ' +
    'RETURNING record_count',
  trimOldestLogs:
    'DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE function_name = ? ORDER BY seq LIMIT ?)',
  setLogCount: 'UPDATE log_counts SET record_count = ? WHERE function_name = ?',
  // Newest first so LIMIT keeps the newest; queryLogs reverses to ascending.
  queryLogs:
    'SELECT seq, function_name, log_stream, ts, request_id, message FROM logs ' +
    'WHERE function_name = ? AND seq > ? AND ts >= ? ORDER BY seq DESC LIMIT ?',
  putResource: 'INSERT INTO resources (kind, key, record) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET record = excluded.record',
  insertResource: 'INSERT INTO resources (kind, key, record) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO NOTHING',
  getResource: 'SELECT record FROM resources WHERE kind = ? AND key = ?',
  // Keys from `after` (exclusive) that start with the prefix: substr compare keeps it exact.
  listResources: 'SELECT key, record FROM resources WHERE kind = ? AND key > ? AND substr(key, 1, ?) = ? ORDER BY key LIMIT ?',
  deleteResource: 'DELETE FROM resources WHERE kind = ? AND key = ?',
  deleteResources: 'DELETE FROM resources WHERE kind = ? AND substr(key, 1, ?) = ?',
  enqueueAsync:
    'INSERT INTO async_events (id, function_name, qualifier, payload, enqueued_at, next_attempt_at, attempts, throttles, state) ' +
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued') ON CONFLICT (id) DO NOTHING",
  claimDueAsync:
    "UPDATE async_events SET state = 'in-flight' WHERE id IN (SELECT id FROM async_events WHERE state = 'queued' AND next_attempt_at <= ? " +
    'ORDER BY next_attempt_at LIMIT ?) RETURNING id, function_name, qualifier, payload, enqueued_at, next_attempt_at, attempts, throttles',
  rescheduleAsync: "UPDATE async_events SET state = 'queued', next_attempt_at = ?, attempts = ?, throttles = ? WHERE id = ?",
  completeAsync: 'DELETE FROM async_events WHERE id = ?',
  recoverAsync: "UPDATE async_events SET state = 'queued' WHERE state = 'in-flight'",
  nextDueAsync: "SELECT min(next_attempt_at) AS due FROM async_events WHERE state = 'queued'",
  asyncDepth: 'SELECT count(*) AS depth FROM async_events',
} as const;

type Statements = Record<keyof typeof SQL, StatementSync>;

export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #statements: Statements;
  readonly #logRetentionPerFunction: number;
  readonly #schemaVersion: number;

  /** Opens (creating if needed) and migrates the database. */
  static open(options: SqliteStoreOptions): SqliteStore {
    const retention = options.logRetentionPerFunction ?? DEFAULT_LOG_RETENTION;
    if (!Number.isSafeInteger(retention) || retention < 1) {
      throw new RangeError(`logRetentionPerFunction must be a positive integer, got ${retention}`);
    }
    return openDatabase(options.filePath, options.busyTimeoutMs ?? defaultBusyTimeoutMs, (db, schemaVersion) => new SqliteStore(db, retention, schemaVersion));
  }

  private constructor(db: DatabaseSync, logRetentionPerFunction: number, schemaVersion: number) {
    this.#db = db;
    this.#logRetentionPerFunction = logRetentionPerFunction;
    this.#schemaVersion = schemaVersion;
    const statements: Partial<Statements> = {};
    for (const key of Object.keys(SQL) as (keyof typeof SQL)[]) statements[key] = db.prepare(SQL[key]);
    this.#statements = statements as Statements;
  }

  async createFunction(record: FunctionRecord): Promise<void> {
    const result = this.#live().insertFunction.run(
      record.functionName,
      JSON.stringify(record),
      record.revisionId,
      record.codeSizeBytes,
      record.createdAtMs,
    );
    if (Number(result.changes) === 0) {
      throw new ResourceConflictException(`Function already exist: ${record.functionName}`);
    }
  }

  async getFunction(functionName: string): Promise<FunctionRecord | undefined> {
    const row = this.#live().selectFunction.get(functionName);
    return row === undefined ? undefined : parseRecord(row.record);
  }

  async listFunctions(options: { marker?: string; maxItems: number }): Promise<ListPage<FunctionRecord>> {
    const { marker, maxItems } = options;
    if (!Number.isSafeInteger(maxItems) || maxItems < 1) {
      throw new InvalidParameterValueException(`MaxItems must be a positive integer, got ${maxItems}`);
    }
    const after = marker === undefined ? '' : decodeMarker(marker);
    // One extra row tells whether another page follows.
    const rows = this.#live().listFunctions.all(after, maxItems + 1);
    const items = rows.slice(0, maxItems).map((row) => parseRecord(row.record));
    const last = items.at(-1);
    return rows.length > maxItems && last !== undefined
      ? { items, nextMarker: encodeMarker(last.functionName) }
      : { items };
  }

  async updateFunction(record: FunctionRecord, expectedRevisionId?: string): Promise<void> {
    const s = this.#live();
    this.#transaction(() => {
      const row = s.selectRevision.get(record.functionName);
      if (row === undefined) {
        throw new ResourceNotFoundException(`Function not found: ${record.functionName}`);
      }
      if (expectedRevisionId !== undefined && row.revision_id !== expectedRevisionId) {
        throw new PreconditionFailedException(
          'The Revision Id provided does not match the latest Revision Id. ' +
            'Call the GetFunction/GetAlias API to retrieve the latest Revision Id',
        );
      }
      s.updateFunction.run(JSON.stringify(record), record.revisionId, record.codeSizeBytes, record.functionName);
    });
  }

  async deleteFunction(functionName: string): Promise<boolean> {
    const s = this.#live();
    return this.#transaction(() => {
      s.deleteFunctionLogs.run(functionName);
      s.deleteLogCount.run(functionName);
      return Number(s.deleteFunction.run(functionName).changes) > 0;
    });
  }

  async usage(): Promise<{ functionCount: number; totalCodeSizeBytes: number }> {
    const row = this.#live().usage.get();
    return {
      functionCount: toNumber(row?.function_count, 'function_count'),
      totalCodeSizeBytes: toNumber(row?.code_size, 'code_size'),
    };
  }

  async appendLogs(records: LogRecord[]): Promise<void> {
    if (records.length === 0) return;
    const s = this.#live();
    const retention = this.#logRetentionPerFunction;
    this.#transaction(() => {
      const addedByFunction = new Map<string, number>();
      for (const r of records) {
        s.insertLog.run(r.functionName, r.logStream, r.timestampMs, r.requestId ?? null, r.message);
        addedByFunction.set(r.functionName, (addedByFunction.get(r.functionName) ?? 0) + 1);
      }
      for (const [functionName, added] of addedByFunction) {
        const count = toNumber(s.addLogCount.get(functionName, added)?.record_count, 'record_count');
        if (count > retention) {
          s.trimOldestLogs.run(functionName, count - retention);
          s.setLogCount.run(retention, functionName);
        }
      }
    });
  }

  async queryLogs(query: LogQuery): Promise<StoredLogRecord[]> {
    const afterSeq = query.afterSeq ?? 0;
    const sinceMs = query.sinceMs ?? Number.MIN_SAFE_INTEGER;
    const limit = query.limit ?? DEFAULT_LOG_LIMIT;
    if (!Number.isFinite(afterSeq)) throw new InvalidParameterValueException(`Invalid afterSeq: ${afterSeq}`);
    if (!Number.isFinite(sinceMs)) throw new InvalidParameterValueException(`Invalid sinceMs: ${sinceMs}`);
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new InvalidParameterValueException(`limit must be a positive integer, got ${limit}`);
    }
    const rows = this.#live().queryLogs.all(query.functionName, afterSeq, sinceMs, limit);
    const records: StoredLogRecord[] = [];
    for (let i = rows.length - 1; i >= 0; i--) records.push(toStoredLog(rows[i]));
    return records;
  }

  async putResource(kind: string, key: string, record: unknown, options?: { ifAbsent?: boolean }): Promise<boolean> {
    const s = this.#live();
    const json = JSON.stringify(record);
    if (options?.ifAbsent) return Number(s.insertResource.run(kind, key, json).changes) > 0;
    s.putResource.run(kind, key, json);
    return true;
  }

  async getResource<T>(kind: string, key: string): Promise<T | undefined> {
    const row = this.#live().getResource.get(kind, key);
    return row === undefined ? undefined : (JSON.parse(String(row.record)) as T);
  }

  async listResources<T>(kind: string, options: { prefix?: string; marker?: string; maxItems?: number } = {}): Promise<ListPage<ResourceRecord<T>>> {
    const prefix = options.prefix ?? '';
    const maxItems = options.maxItems ?? 10_000;
    if (!Number.isSafeInteger(maxItems) || maxItems < 1) {
      throw new InvalidParameterValueException(`MaxItems must be a positive integer, got ${maxItems}`);
    }
    const after = options.marker === undefined ? '' : decodeMarker(options.marker);
    const rows = this.#live().listResources.all(kind, after, prefix.length, prefix, maxItems + 1);
    const items = rows.slice(0, maxItems).map((row) => ({ key: String(row.key), record: JSON.parse(String(row.record)) as T }));
    const last = items.at(-1);
    return rows.length > maxItems && last !== undefined ? { items, nextMarker: encodeMarker(last.key) } : { items };
  }

  async deleteResource(kind: string, key: string): Promise<boolean> {
    return Number(this.#live().deleteResource.run(kind, key).changes) > 0;
  }

  async deleteResources(kind: string, prefix: string): Promise<number> {
    return Number(this.#live().deleteResources.run(kind, prefix.length, prefix).changes);
  }

  async enqueueAsync(e: AsyncEventRecord): Promise<void> {
    this.#live().enqueueAsync.run(e.id, e.functionName, e.qualifier ?? null, e.payload, e.enqueuedAtMs, e.nextAttemptAtMs, e.attempts, e.throttles);
  }

  async claimDueAsync(nowMs: number, limit: number): Promise<AsyncEventRecord[]> {
    const rows = this.#live().claimDueAsync.all(nowMs, limit);
    return rows
      .map((row) => {
        const event: AsyncEventRecord = {
          id: String(row.id),
          functionName: String(row.function_name),
          payload: Buffer.from(row.payload as Uint8Array),
          enqueuedAtMs: toNumber(row.enqueued_at, 'enqueued_at'),
          nextAttemptAtMs: toNumber(row.next_attempt_at, 'next_attempt_at'),
          attempts: toNumber(row.attempts, 'attempts'),
          throttles: toNumber(row.throttles, 'throttles'),
        };
        if (typeof row.qualifier === 'string') event.qualifier = row.qualifier;
        return event;
      })
      .sort((a, b) => a.nextAttemptAtMs - b.nextAttemptAtMs);
  }

  async rescheduleAsync(id: string, nextAttemptAtMs: number, attempts: number, throttles: number): Promise<void> {
    this.#live().rescheduleAsync.run(nextAttemptAtMs, attempts, throttles, id);
  }

  async completeAsync(id: string): Promise<void> {
    this.#live().completeAsync.run(id);
  }

  async recoverAsync(): Promise<number> {
    return Number(this.#live().recoverAsync.run().changes);
  }

  async nextDueAsync(): Promise<number | undefined> {
    const due = this.#live().nextDueAsync.get()?.due;
    return typeof due === 'number' ? due : undefined;
  }

  async asyncDepth(): Promise<number> {
    return toNumber(this.#live().asyncDepth.get()?.depth, 'depth');
  }

  schemaVersion(): number {
    return this.#schemaVersion;
  }

  /** Reads the connection's settings back from SQLite. */
  pragmas(): SqlitePragmas {
    this.#live();
    const read = (name: string): SQLOutputValue => {
      const row = this.#db.prepare(`PRAGMA ${name}`).get();
      return row === undefined ? null : Object.values(row)[0];
    };
    return {
      journalMode: String(read('journal_mode')),
      synchronous: toNumber(read('synchronous'), 'synchronous'),
      foreignKeys: read('foreign_keys') === 1,
      busyTimeoutMs: toNumber(read('busy_timeout'), 'busy_timeout'),
    };
  }

  /** Closes the database; later calls are no-ops, other methods then reject. */
  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }

  #live(): Statements {
    if (!this.#db.isOpen) throw new Error('SqliteStore is closed');
    return this.#statements;
  }

  #transaction<T>(work: () => T): T {
    return inTransaction(this.#db, this.#statements, work);
  }
}

// The marker is opaque to callers: base64url of a small JSON object, so that a marker from
// elsewhere (or a hand-edited one) is recognised as invalid instead of silently misread.
function encodeMarker(lastName: string): string {
  return Buffer.from(JSON.stringify({ after: lastName }), 'utf8').toString('base64url');
}

function decodeMarker(marker: string): string {
  const decoded = Buffer.from(marker, 'base64url');
  let parsed: unknown;
  try {
    if (marker === '' || decoded.toString('base64url') !== marker) throw new Error('not base64url');
    parsed = JSON.parse(decoded.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || !('after' in parsed) || typeof parsed.after !== 'string') {
    throw new InvalidParameterValueException(
      'Invalid Marker: pass the NextMarker returned by the previous call of the same List operation',
    );
  }
  return parsed.after;
}

function parseRecord(value: SQLOutputValue): FunctionRecord {
  if (typeof value !== 'string') throw new TypeError('functions.record is not text');
  return JSON.parse(value) as FunctionRecord;
}

function toStoredLog(row: Record<string, SQLOutputValue>): StoredLogRecord {
  const record: StoredLogRecord = {
    seq: toNumber(row.seq, 'seq'),
    functionName: String(row.function_name),
    logStream: String(row.log_stream),
    timestampMs: toNumber(row.ts, 'ts'),
    message: String(row.message),
  };
  // Absent, not undefined, so records round-trip under deepStrictEqual.
  if (typeof row.request_id === 'string') record.requestId = row.request_id;
  return record;
}

function toNumber(value: SQLOutputValue | undefined, column: string): number {
  if (typeof value !== 'number') throw new TypeError(`Expected a number in ${column}, got ${typeof value}`);
  return value;
}
