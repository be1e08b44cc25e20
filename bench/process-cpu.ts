// CPU time of processes on this host, read from /proc, so a benchmark can say
// what a job costs the database and the control plane, not only how fast it went.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime of the process itself, ms. */
  ownMs: number;
  /** cutime + cstime: children it has waited for, ms. */
  reapedChildrenMs: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited meanwhile
  }
  // comm is in parentheses and may itself hold spaces or parentheses: split after the last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 of proc(5) (state); utime is field 14, so fields[11].
  const ticks = (i: number) => Number(fields[i]);
  const ms = (t: number) => (t * 1000) / CLOCK_TICKS_PER_SECOND;
  return { pid, comm, ppid: ticks(1), ownMs: ms(ticks(11) + ticks(12)), reapedChildrenMs: ms(ticks(13) + ticks(14)) };
}

/** utime + stime of one process, in ms; 0 once it has exited. */
export function processCpuMs(pid: number): number {
  return readStat(pid)?.ownMs ?? 0;
}

/**
 * CPU of every PostgreSQL server process on this host, in ms: each live
 * process's own time, plus what each postmaster's exited children used (its
 * cutime/cstime), so backends of connections that closed during a run still
 * count. This includes the background processes (WAL writer, checkpointer,
 * autovacuum) and every database's sessions, not only the benchmark's: the
 * difference over a run is what the run cost Postgres as a whole.
 */
export function postgresCpuMs(): number {
  const stats = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readStat(Number(name)))
    .filter((s): s is ProcStat => s !== undefined && s.comm === 'postgres');
  if (stats.length === 0) throw new Error('no postgres server process found in /proc (is PostgreSQL running on this host?)');
  const pids = new Set(stats.map((s) => s.pid));
  let total = 0;
  for (const s of stats) {
    total += s.ownMs;
    // A postmaster is a postgres process whose parent is not one; it reaps the backends.
    if (!pids.has(s.ppid)) total += s.reapedChildrenMs;
  }
  return total;
}

/** This process's own CPU (user + system), in ms. */
export function benchProcessCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export interface CpuReading {
  postgresMs: number;
  controlPlaneMs: number;
  benchMs: number;
}

/** CPU of Postgres, of one control-plane process (if any) and of this benchmark process. */
export function readCpu(controlPlanePid?: number): CpuReading {
  return {
    postgresMs: postgresCpuMs(),
    controlPlaneMs: controlPlanePid === undefined ? 0 : processCpuMs(controlPlanePid),
    benchMs: benchProcessCpuMs(),
  };
}

export function cpuSpent(before: CpuReading, after: CpuReading): CpuReading {
  return {
    postgresMs: after.postgresMs - before.postgresMs,
    controlPlaneMs: after.controlPlaneMs - before.controlPlaneMs,
    benchMs: after.benchMs - before.benchMs,
  };
}
