// Applies pending migrations. Safe with several control planes starting at once:
// each migration runs in a transaction holding a cluster-wide advisory lock.
import type { Logger } from 'pino';
import type { Sql } from './connect.js';
import { MIGRATIONS } from './migrations.js';

const MIGRATION_LOCK = 0x67726964; // "grid"

export async function migrate(sql: Sql, log?: Logger): Promise<number[]> {
  const applied: number[] = [];
  for (const migration of MIGRATIONS) {
    await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
      const done = await tx`SELECT 1 FROM schema_migrations WHERE version = ${migration.version}`;
      if (done.length > 0) return;
      await tx.unsafe(migration.sql);
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${migration.version}, ${migration.name})`;
      applied.push(migration.version);
      log?.info({ version: migration.version, name: migration.name }, 'applied migration');
    });
  }
  return applied;
}
