export type * from './types.ts';
export { SqliteStore } from './sqlite-store.ts';
export type { SqlitePragmas, SqliteStoreOptions } from './sqlite-store.ts';
export { applyMigrations, migrations, MigrationError } from './migrations.ts';
export type { Migration } from './migrations.ts';
