// Grid's control plane as a separate process at its defaults, for the
// throughput benchmark. test/helpers/grid.ts's startControlPlane passes test
// settings (a runtimes file, a default image) and keeps the whole log in
// memory; a benchmark of the defaults must pass nothing but where to listen and
// which database to use, and its log (info level, as by default) goes straight
// to a file so that 20,000 jobs' worth of lines cost this process nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, servingAddress } from '../test/helpers/grid.js';

export interface BenchControlPlane {
  address: string;
  pid: number;
  logFile: string;
  /** The last lines of its log, for a failure message. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

/**
 * The control-plane program: this checkout's build, or another build named by
 * GRID_BENCH_CONTROL_PLANE (its dist/control-plane/main.js), to measure an
 * older or newer core with the same benchmark.
 */
export function controlPlaneProgram(): string {
  return process.env.GRID_BENCH_CONTROL_PLANE || BIN.controlPlane;
}

const running = new Set<ChildProcess>();
// However this process ends, its control planes end too (the test helpers,
// imported above, turn SIGINT/SIGTERM into an exit, which runs this).
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface ControlPlaneLaunch {
  /** host:port to listen on (default 127.0.0.1:0, any free port); a restart passes the old address. */
  listen?: string;
  /** Flags a scenario sets on purpose (e.g. --heartbeat-interval); nothing else is passed. */
  args?: string[];
}

export async function startControlPlaneAtDefaults(databaseUrl: string, launch: ControlPlaneLaunch = {}): Promise<BenchControlPlane> {
  const logFile = join(mkdtempSync(join(tmpdir(), 'grid-bench-')), 'control-plane.log');
  const fd = openSync(logFile, 'w');
  // Any GRID_* setting of the caller's environment would change a default.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GRID_')));
  const child = spawn(process.execPath, [controlPlaneProgram(), '--listen', launch.listen ?? '127.0.0.1:0', ...(launch.args ?? [])], {
    // Plaintext on loopback: an environment variable, which older builds ignore.
    env: { ...env, GRID_DATABASE_URL: databaseUrl, GRID_PLAINTEXT: '1' },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));
  const logTail = (lines = 20) => readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const address = servingAddress(readFileSync(logFile, 'utf8'));
    if (address) return { address, pid: child.pid!, logFile, logTail, stop };
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`control plane did not start (${logFile}):\n${logTail()}`);
    }
    await sleep(25);
  }
}
