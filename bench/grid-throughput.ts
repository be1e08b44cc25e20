// One Grid throughput run (issue 11): N trivial jobs submitted by concurrent
// callers to a control plane at its defaults, run by SIMULATED agents.
// jobs/s = jobs / (first submit → last jobFinished acknowledged), as the
// simulated agents see it (an ack is sent only after the commit).
import { ClientError, Status } from 'nice-grpc';
import { setTimeout as sleep } from 'node:timers/promises';
import { repairsInLog, type Repairs } from './control-plane-log.js';
import { checkGridRun, requireCorrect, type RunCheck } from './grid-run-check.js';
import { cpuSpent, readCpu } from './process-cpu.js';
import type { ReportMode } from './simulated-agent.js';
import { startSimulatedGrid, TRIVIAL_JOB, type SimulatedGrid } from './simulated-grid.js';
import { summarize, type Summary } from './stats.js';

export type SubmitWay = 'SubmitJob' | 'SubmitJobs';

export interface GridThroughputOptions {
  agents: number;
  jobs: number;
  /** Concurrent callers (each waits for its answer before the next call). */
  callers: number;
  submit: SubmitWay;
  /** Jobs per SubmitJobs call. */
  batchSize: number;
  reports?: ReportMode;
  /** A run with no job finished for this long has stalled. */
  stallMs?: number;
}

export interface ThroughputRun {
  jobsPerSecond: number;
  seconds: number;
  /** Postgres CPU (all server processes) per job, ms. */
  postgresCpuMsPerJob: number;
  controlPlaneCpuMsPerJob: number;
  /** This process: callers and simulated agents. */
  benchCpuMsPerJob: number;
  /** Submit (the call's start) → Assignment of every job, under this load (queueing included). */
  submitToAssignment: Summary;
  /**
   * Stored → assigned of every job (Postgres clock): the time in the queue,
   * which backpressure bounds. A SubmitJobs job also waits, before it is
   * stored, behind the other jobs its callers asked for at once.
   */
  storedToAssigned: Summary;
  check: RunCheck;
  /** What reconciliation repaired during the run (from the control plane's log). */
  repairs: Repairs;
}

export async function gridThroughputRun(options: GridThroughputOptions): Promise<ThroughputRun> {
  const grid = await startSimulatedGrid({ agents: options.agents, reports: options.reports });
  const stopWaiting = new AbortController();
  try {
    const before = readCpu(grid.cp.pid);
    const t0 = performance.now();
    const submittedAt = new Map<string, number>();
    const submitting = options.submit === 'SubmitJob' ? submitOneByOne(grid, options, submittedAt) : submitInBatches(grid, options, submittedAt);
    // Fails fast if submitting fails; otherwise waits for every job to finish.
    await Promise.all([submitting, waitForFinished(grid, options.jobs, options.stallMs ?? 30_000, stopWaiting.signal)]);
    const spent = cpuSpent(before, readCpu(grid.cp.pid));
    const seconds = (grid.fleet.lastFinishedAt - t0) / 1000;
    const check = await checkGridRun(grid.db.sql, grid.fleet, options.jobs);
    requireCorrect(check);
    const delays = [...submittedAt].map(([id, at]) => grid.fleet.assignedAt.get(id)! - at);
    const queued = await grid.db.sql<{ ms: number }[]>`
      SELECT extract(epoch FROM a.assigned_at - j.submitted_at)::float8 * 1000 AS ms
      FROM job_attempts a JOIN jobs j ON j.id = a.job_id`;
    return {
      jobsPerSecond: options.jobs / seconds,
      seconds,
      postgresCpuMsPerJob: spent.postgresMs / options.jobs,
      controlPlaneCpuMsPerJob: spent.controlPlaneMs / options.jobs,
      benchCpuMsPerJob: spent.benchMs / options.jobs,
      submitToAssignment: summarize(delays),
      storedToAssigned: summarize(queued.map((r) => r.ms)),
      check,
      repairs: repairsInLog(grid.cp.logFile),
    };
  } catch (err) {
    process.stderr.write(`bench: Grid run failed; control-plane log: ${grid.cp.logFile}\n`);
    throw err;
  } finally {
    stopWaiting.abort();
    await grid.stop();
  }
}

async function submitOneByOne(grid: SimulatedGrid, o: GridThroughputOptions, submittedAt: Map<string, number>): Promise<void> {
  let next = 0;
  const caller = async () => {
    while (next < o.jobs) {
      next++;
      const at = performance.now();
      const { job } = await grid.api.jobs.submitJob({ spec: TRIVIAL_JOB, requestId: '' });
      submittedAt.set(job!.id, at);
    }
  };
  await Promise.all(Array.from({ length: o.callers }, caller));
}

async function submitInBatches(grid: SimulatedGrid, o: GridThroughputOptions, submittedAt: Map<string, number>): Promise<void> {
  let next = 0;
  const caller = async () => {
    while (next < o.jobs) {
      const size = Math.min(o.batchSize, o.jobs - next);
      next += size;
      const at = performance.now();
      const requests = Array.from({ length: size }, () => ({ spec: TRIVIAL_JOB, requestId: '' }));
      const { results } = await grid.api.jobs.submitJobs({ requests }).catch((err) => {
        if (err instanceof ClientError && err.code === Status.UNIMPLEMENTED) throw new Error('SubmitJobs unimplemented');
        throw err;
      });
      for (const result of results) {
        if (result.outcome?.$case !== 'job') throw new Error(`SubmitJobs refused a job: ${result.outcome?.value.message ?? 'no outcome'}`);
        submittedAt.set(result.outcome.value.id, at);
      }
      if (results.length !== size) throw new Error(`SubmitJobs answered ${results.length} results for ${size} requests`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.callers, Math.ceil(o.jobs / o.batchSize)) }, caller));
}

/** Resolves once `jobs` finishes are acked (or on abort); throws if none comes for `stallMs`. */
export async function waitForFinished(grid: SimulatedGrid, jobs: number, stallMs: number, signal?: AbortSignal): Promise<void> {
  let seen = grid.fleet.finished;
  let progressAt = performance.now();
  while (grid.fleet.finished < jobs && !signal?.aborted) {
    await sleep(10);
    if (grid.fleet.finished !== seen) {
      seen = grid.fleet.finished;
      progressAt = performance.now();
    } else if (performance.now() - progressAt > stallMs) {
      const why = grid.fleet.anomalies.length > 0 ? `; simulated agents saw: ${grid.fleet.anomalies.slice(0, 3).join('; ')}` : '';
      throw new Error(`stalled: ${seen} of ${jobs} jobs finished, none in the last ${stallMs / 1000} s${why}`);
    }
  }
}
