/**
 * Versioned schema migrations for SqliteStore.
 *
 * Each migration runs in its own `BEGIN IMMEDIATE` transaction together with the row that
 * records it in `schema_migrations`, so a failed migration leaves the schema at the
 * previous version (SQLite DDL is transactional). Re-opening a database applies only the
 * migrations it has not seen. A database written by newer code (a version we do not know)
 * is refused rather than guessed at.
 *
 * Rules for adding a migration: append it with the next version number; never edit or
 * reorder a released one; `up` must not contain BEGIN/COMMIT or statements that cannot
 * run inside a transaction (VACUUM, PRAGMA journal_mode).
 */
import type { DatabaseSync } from 'node:sqlite';

export interface Migration {
  /** 1, 2, 3, … with no gaps. */
  readonly version: number;
  /** Short kebab-case description, recorded with the version. */
  readonly name: string;
  /** SQL script; may hold several statements. */
  readonly up: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'functions-and-logs',
    // functions.record is the FunctionRecord as JSON (the store's source of truth); the
    // other columns are copies kept for queries (revision check, usage, ordering).
    // log_counts holds each function's row count in `logs`, so retention trimming is
    // O(records trimmed) instead of an OFFSET scan over the retained records.
    // logs has no foreign key to functions on purpose: a sandbox may still flush lines
    // for a function that was just deleted, and that must not fail the whole batch.
    up: `
      CREATE TABLE functions (
        name        TEXT PRIMARY KEY,
        record      TEXT NOT NULL,
        revision_id TEXT NOT NULL,
        code_size   INTEGER NOT NULL,
        created_at  INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE logs (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        function_name TEXT NOT NULL,
        log_stream    TEXT NOT NULL,
        ts            INTEGER NOT NULL,
        request_id    TEXT,
        message       TEXT NOT NULL
      ) STRICT;
      CREATE INDEX logs_function_seq ON logs (function_name, seq);

      CREATE TABLE log_counts (
        function_name TEXT PRIMARY KEY,
        record_count  INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: 'resources',
    // Generic keyed records (JSON) for the domain's smaller resources: versions, aliases,
    // layers, URL configs, concurrency and invoke configs. One table, so subsystems can
    // add kinds without schema changes; (kind, key) orders lists.
    up: `
      CREATE TABLE resources (
        kind   TEXT NOT NULL,
        key    TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (kind, key)
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    name: 'async-events',
    // The durable queue of asynchronous invocations (InvocationType Event). An event is
    // `queued` until a dispatcher claims it (`in-flight`); after a crash, in-flight
    // events go back to queued, so delivery is at least once, as on Lambda.
    up: `
      CREATE TABLE async_events (
        id              TEXT PRIMARY KEY,
        function_name   TEXT NOT NULL,
        qualifier       TEXT,
        payload         BLOB NOT NULL,
        enqueued_at     INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        attempts        INTEGER NOT NULL,
        throttles       INTEGER NOT NULL,
        state           TEXT NOT NULL
      ) STRICT;
      CREATE INDEX async_events_due ON async_events (state, next_attempt_at);
    `,
  },
  {
    version: 4,
    name: 'telemetry',
    // What the Nimbus agent sends (src/telemetry). Queries are per function and time
    // window, hence (function_name, ts) indexes; the plain ts indexes serve the retention
    // purge, which deletes by age across functions. Millisecond timestamps are REAL
    // because agents may send fractions; span times are integer microseconds.
    // sample_sum/sample_count (Σ value×weight, Σ weight) let the Prometheus aggregation be
    // seeded with one GROUP BY instead of parsing every point's samples.
    // The unique span index makes a re-sent batch (an agent retry after a lost reply)
    // store each span once. No foreign keys to functions, for the reason given for logs.
    up: `
      CREATE TABLE telemetry_metrics (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        function_name TEXT NOT NULL,
        name          TEXT NOT NULL,
        type          TEXT NOT NULL,
        tags          TEXT NOT NULL,
        ts            REAL NOT NULL,
        value         REAL NOT NULL,
        samples       TEXT,
        weights       TEXT,
        sample_sum    REAL NOT NULL,
        sample_count  REAL NOT NULL,
        request_id    TEXT,
        version       TEXT NOT NULL
      ) STRICT;
      CREATE INDEX telemetry_metrics_function_ts ON telemetry_metrics (function_name, ts);
      CREATE INDEX telemetry_metrics_ts ON telemetry_metrics (ts);

      CREATE TABLE telemetry_spans (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        function_name TEXT NOT NULL,
        trace_id      TEXT NOT NULL,
        span_id       TEXT NOT NULL,
        parent_id     TEXT,
        name          TEXT NOT NULL,
        service       TEXT NOT NULL,
        resource      TEXT NOT NULL,
        type          TEXT,
        start_us      INTEGER NOT NULL,
        duration_us   INTEGER NOT NULL,
        error         INTEGER NOT NULL,
        meta          TEXT NOT NULL,
        metrics       TEXT NOT NULL,
        request_id    TEXT
      ) STRICT;
      CREATE UNIQUE INDEX telemetry_spans_function_trace ON telemetry_spans (function_name, trace_id, span_id);
      CREATE INDEX telemetry_spans_function_start ON telemetry_spans (function_name, start_us);
      CREATE INDEX telemetry_spans_start ON telemetry_spans (start_us);

      CREATE TABLE telemetry_logs (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        function_name TEXT NOT NULL,
        ts            REAL NOT NULL,
        source        TEXT NOT NULL,
        request_id    TEXT,
        level         TEXT,
        message       TEXT NOT NULL,
        attributes    TEXT
      ) STRICT;
      CREATE INDEX telemetry_logs_function_ts ON telemetry_logs (function_name, ts);
      CREATE INDEX telemetry_logs_function_request ON telemetry_logs (function_name, request_id);
      CREATE INDEX telemetry_logs_ts ON telemetry_logs (ts);

      CREATE TABLE telemetry_security (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        function_name TEXT NOT NULL,
        ts            REAL NOT NULL,
        request_id    TEXT NOT NULL,
        rule_id       TEXT NOT NULL,
        rule_name     TEXT NOT NULL,
        category      TEXT NOT NULL,
        parameter     TEXT NOT NULL,
        value         TEXT NOT NULL,
        client_ip     TEXT,
        user_agent    TEXT,
        route         TEXT,
        method        TEXT,
        trigger_kind  TEXT NOT NULL,
        blocked       INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX telemetry_security_function_ts ON telemetry_security (function_name, ts);
      CREATE INDEX telemetry_security_ts ON telemetry_security (ts);

      CREATE TABLE telemetry_dropped (
        function_name TEXT PRIMARY KEY,
        metrics       INTEGER NOT NULL,
        spans         INTEGER NOT NULL,
        logs          INTEGER NOT NULL,
        security      INTEGER NOT NULL,
        sent_at       REAL NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 5,
    name: 'telemetry-metric-request-ids',
    // The agent merges its per-invocation (enhanced) points into one distribution per
    // flush; the invocation of each sample rides beside its value.
    up: `ALTER TABLE telemetry_metrics ADD COLUMN request_ids TEXT;`,
  },
];

/** The schema cannot be brought to the version this code expects. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/**
 * Brings `db` up to the last migration in `list` and returns the resulting schema version.
 * Safe to call from several processes at once: each step re-reads the version under the
 * write lock before applying.
 */
export function applyMigrations(db: DatabaseSync, list: readonly Migration[] = migrations): number {
  assertWellFormed(list);
  const knownVersion = list.at(-1)?.version ?? 0;

  db.exec(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    ) STRICT
  `);
  const selectVersion = db.prepare('SELECT coalesce(max(version), 0) AS version FROM schema_migrations');
  const insertApplied = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const readVersion = (): number => {
    const version = selectVersion.get()?.version;
    if (typeof version !== 'number') throw new MigrationError('schema_migrations returned no version');
    if (version > knownVersion) {
      throw new MigrationError(
        `Database schema version ${version} is newer than this Nimbus knows (${knownVersion}); ` +
          'upgrade Nimbus or restore a backup made by this version',
      );
    }
    return version;
  };

  let current = readVersion();
  for (const migration of list) {
    if (migration.version <= current) continue;
    db.exec('BEGIN IMMEDIATE');
    try {
      // Another process may have migrated while we waited for the write lock.
      current = readVersion();
      if (migration.version > current) {
        db.exec(migration.up);
        insertApplied.run(migration.version, migration.name, Date.now());
        current = migration.version;
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      if (err instanceof MigrationError) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new MigrationError(`Migration ${migration.version} (${migration.name}) failed: ${reason}`, {
        cause: err,
      });
    }
  }
  return readVersion();
}

function assertWellFormed(list: readonly Migration[]): void {
  list.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new MigrationError(
        `Migration list is malformed: entry ${index} (${migration.name}) has version ` +
          `${migration.version}, expected ${index + 1}`,
      );
    }
  });
}
