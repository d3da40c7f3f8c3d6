/** The one way the SQLite stores run a write: BEGIN IMMEDIATE … COMMIT, rolled back if it throws. */
import type { DatabaseSync, StatementSync } from 'node:sqlite';

export interface TransactionStatements {
  begin: StatementSync;
  commit: StatementSync;
  rollback: StatementSync;
}

export function inTransaction<T>(db: DatabaseSync, s: TransactionStatements, work: () => T): T {
  s.begin.run();
  try {
    const result = work();
    s.commit.run();
    return result;
  } catch (err) {
    // SQLite rolls back by itself after some errors (e.g. SQLITE_FULL).
    if (db.isTransaction) s.rollback.run();
    throw err;
  }
}
