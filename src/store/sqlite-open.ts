/**
 * How every SQLite connection of Nimbus opens its database file: the directory made, the
 * pragmas set, the migrations applied, and the connection closed again if any of that fails.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { applyMigrations } from './migrations.ts';

export const defaultBusyTimeoutMs = 5_000;

/** Runs `use` on the opened, migrated database (with the schema version); closes it if `use` throws. */
export function openDatabase<T>(filePath: string, busyTimeoutMs: number, use: (db: DatabaseSync, schemaVersion: number) => T): T {
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new RangeError(`busyTimeoutMs must be a non-negative integer, got ${busyTimeoutMs}`);
  }
  if (filePath !== ':memory:') mkdirSync(dirname(filePath), { recursive: true });
  const db = new DatabaseSync(filePath);
  try {
    // busy_timeout first, so that switching to WAL waits for other connections' locks.
    // WAL + synchronous=NORMAL: a commit survives a crash of this process (the WAL is in
    // the OS page cache); only a power loss can drop the last transactions.
    db.exec(`
      PRAGMA busy_timeout = ${busyTimeoutMs};
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      PRAGMA foreign_keys = ON;
    `);
    return use(db, applyMigrations(db));
  } catch (err) {
    db.close();
    throw err;
  }
}
