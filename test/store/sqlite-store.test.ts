/**
 * SqliteStore: the shared Store contract (in memory and on disk), plus what only SQLite
 * has: migrations, pragmas, persistence across reopen and across a killed process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { applyMigrations, type Migration, MigrationError, migrations, SqliteStore } from '../../src/store/index.ts';
import { makeFunctionRecord, makeLogRecord, runStoreContract } from '../contracts/store.contract.ts';

const storeModulePath = fileURLToPath(new URL('../../src/store/sqlite-store.ts', import.meta.url));

let tempDir: string;
let fileCounter = 0;
const nextDbPath = (): string => join(tempDir, `store-${++fileCounter}.db`);

before(() => {
  tempDir = mkdtempSync(join(tmpdir(), 'nimbus-store-'));
});
after(() => {
  rmSync(tempDir, { recursive: true, force: true });
});

runStoreContract('SqliteStore :memory:', async (options) =>
  SqliteStore.open({ filePath: ':memory:', ...options }),
);
runStoreContract('SqliteStore file', async (options) => SqliteStore.open({ filePath: nextDbPath(), ...options }));

describe('SqliteStore', () => {
  it('sets WAL, synchronous=NORMAL, foreign keys and a busy timeout', async () => {
    const store = SqliteStore.open({ filePath: nextDbPath(), busyTimeoutMs: 1234 });
    try {
      assert.deepEqual(store.pragmas(), { journalMode: 'wal', synchronous: 1, foreignKeys: true, busyTimeoutMs: 1234 });
    } finally {
      await store.close();
    }
  });

  it('creates missing parent directories', async () => {
    const filePath = join(tempDir, 'nested', 'deeper', 'nimbus.db');
    const store = SqliteStore.open({ filePath });
    await store.close();
    assert.ok(existsSync(filePath));
  });

  it('rejects an invalid retention setting', () => {
    for (const logRetentionPerFunction of [0, -1, 1.5]) {
      assert.throws(() => SqliteStore.open({ filePath: ':memory:', logRetentionPerFunction }), RangeError);
    }
  });

  it('keeps 10,000 log records per function by default', async () => {
    const store = SqliteStore.open({ filePath: ':memory:' });
    try {
      const records = Array.from({ length: 10_050 }, (_, i) => makeLogRecord({ message: `line ${i}` }));
      await store.appendLogs(records.slice(0, 10_000));
      await store.appendLogs(records.slice(10_000));
      const kept = await store.queryLogs({ functionName: 'my-function', limit: 20_000 });
      assert.equal(kept.length, 10_000);
      assert.equal(kept[0].message, 'line 50');
    } finally {
      await store.close();
    }
  });

  it('persists functions and logs across close and reopen; seq keeps increasing', async () => {
    const filePath = nextDbPath();
    const record = makeFunctionRecord();
    const first = SqliteStore.open({ filePath });
    await first.createFunction(record);
    await first.appendLogs([makeLogRecord({ message: 'before', requestId: 'r1' })]);
    await first.close();

    const second = SqliteStore.open({ filePath });
    try {
      assert.deepStrictEqual(await second.getFunction(record.functionName), record);
      await second.appendLogs([makeLogRecord({ message: 'after' })]);
      const logs = await second.queryLogs({ functionName: record.functionName });
      assert.deepEqual(logs.map((r) => r.message), ['before', 'after']);
      assert.ok(logs[1].seq > logs[0].seq);
      assert.equal(logs[0].requestId, 'r1');
    } finally {
      await second.close();
    }
  });

  it('sees writes made through another connection to the same file', async () => {
    const filePath = nextDbPath();
    const writer = SqliteStore.open({ filePath });
    const reader = SqliteStore.open({ filePath });
    try {
      await writer.createFunction(makeFunctionRecord());
      assert.equal((await reader.getFunction('my-function'))?.functionName, 'my-function');
      await assert.rejects(reader.createFunction(makeFunctionRecord()), { name: 'ResourceConflictException' });
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it('keeps a committed function when the process is killed with SIGKILL', async () => {
    const filePath = nextDbPath();
    const record = makeFunctionRecord({ functionName: 'survivor' });
    // The child commits, reports, then idles until killed: no close(), no checkpoint.
    const script = `
      const { SqliteStore } = await import(${JSON.stringify(storeModulePath)});
      const store = SqliteStore.open({ filePath: ${JSON.stringify(filePath)} });
      await store.createFunction(${JSON.stringify(record)});
      await store.appendLogs([{ functionName: 'survivor', logStream: 's', timestampMs: 1, message: 'last words' }]);
      process.stdout.write('ready\\n');
      setInterval(() => {}, 60_000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = once(child, 'exit');
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child not ready: ${stderr}`)), 20_000);
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          if (chunk.includes('ready')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`child exited early (${code}): ${stderr}`));
        });
      });
    } finally {
      child.kill('SIGKILL');
    }
    const [, signal] = await exited;
    assert.equal(signal, 'SIGKILL');
    // The commit lives only in the WAL, which a clean close would have checkpointed away.
    assert.ok(statSync(`${filePath}-wal`).size > 0);

    const reopened = SqliteStore.open({ filePath });
    try {
      assert.deepStrictEqual(await reopened.getFunction('survivor'), record);
      const logs = await reopened.queryLogs({ functionName: 'survivor' });
      assert.deepEqual(logs.map((r) => r.message), ['last words']);
    } finally {
      await reopened.close();
    }
  });
});

describe('migrations', () => {
  const extra: Migration = {
    version: migrations.length + 1,
    name: 'test-extra-table',
    up: 'CREATE TABLE extra (id INTEGER PRIMARY KEY) STRICT; INSERT INTO extra (id) VALUES (7);',
  };
  const recorded = (db: DatabaseSync): unknown[] =>
    db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all().map((row) => ({ ...row }));

  it('records every migration on a fresh database', async () => {
    const store = SqliteStore.open({ filePath: ':memory:' });
    assert.equal(store.schemaVersion(), migrations.length);
    await store.close();
    const db = new DatabaseSync(':memory:');
    applyMigrations(db);
    assert.deepEqual(recorded(db), migrations.map(({ version, name }) => ({ version, name })));
    db.close();
  });

  it('applies only new migrations on reopen', () => {
    const db = new DatabaseSync(':memory:');
    assert.equal(applyMigrations(db), migrations.length);
    assert.equal(applyMigrations(db), migrations.length);
    assert.equal(applyMigrations(db, [...migrations, extra]), extra.version);
    // Running it again would fail on CREATE TABLE extra if it were re-applied.
    assert.equal(applyMigrations(db, [...migrations, extra]), extra.version);
    assert.deepEqual({ ...db.prepare('SELECT count(*) AS n FROM extra').get() }, { n: 1 });
    assert.equal(recorded(db).length, extra.version);
    db.close();
  });

  it('rolls back a failing migration and leaves the version unchanged', () => {
    const db = new DatabaseSync(':memory:');
    applyMigrations(db);
    const broken: Migration = {
      version: migrations.length + 1,
      name: 'broken',
      up: 'CREATE TABLE half_done (id INTEGER); THIS IS NOT SQL;',
    };
    assert.throws(() => applyMigrations(db, [...migrations, broken]), {
      name: 'MigrationError',
      message: new RegExp(`^Migration ${broken.version} \\(broken\\) failed: `),
    });
    assert.equal(db.isTransaction, false);
    assert.equal(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half_done'").get(), undefined);
    assert.equal(applyMigrations(db), migrations.length);
    db.close();
  });

  it('refuses a database written by a newer schema', async () => {
    const filePath = nextDbPath();
    const db = new DatabaseSync(filePath);
    applyMigrations(db, [...migrations, extra]);
    db.close();
    assert.throws(() => SqliteStore.open({ filePath }), (err: unknown) => {
      assert.ok(err instanceof MigrationError);
      assert.equal(
        err.message,
        `Database schema version ${extra.version} is newer than this Nimbus knows (${migrations.length}); ` +
          'upgrade Nimbus or restore a backup made by this version',
      );
      return true;
    });
  });

  it('rejects a malformed migration list', () => {
    const db = new DatabaseSync(':memory:');
    assert.throws(() => applyMigrations(db, [{ ...extra, version: 2 }]), /malformed/);
    db.close();
  });
});
