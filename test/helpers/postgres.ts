// A fresh database per test file on the real PostgreSQL that scripts/test-env.sh
// started. No fallback and no skip: without Postgres the e2e tests fail.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { connectDatabase, type Sql } from '../../control-plane/db/connect.js';

export const ADMIN_URL = process.env.GRID_TEST_DATABASE_URL ?? 'postgres://grid:grid@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  sql: Sql;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `grid_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } catch (err) {
    throw new Error(
      `cannot create a test database through ${ADMIN_URL}: ${(err as Error).message}. ` +
        'Run `bash scripts/test-env.sh` (npm test does) or set GRID_TEST_DATABASE_URL.',
      { cause: err },
    );
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const sql = connectDatabase(url.toString(), { max: 4 });
  return {
    url: url.toString(),
    sql,
    async drop() {
      await sql.end({ timeout: 1 });
      const a = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await a.end();
    },
  };
}
