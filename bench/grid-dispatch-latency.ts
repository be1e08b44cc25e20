// Grid's dispatch latency with SIMULATED agents: submit → Assignment received
// by the agent, one sample at a time (same process, same clock), idle or over a
// background load submitted by other callers at a fixed rate. The control plane
// alone, with no container start in the way (bench/dispatch-latency.ts measures
// the real agent).
import { setTimeout as sleep } from 'node:timers/promises';
import { clients, type Clients } from '../test/helpers/grid.js';
import { checkGridRun, requireCorrect, type RunCheck } from './grid-run-check.js';
import { waitForFinished } from './grid-throughput.js';
import type { TestDatabase } from '../test/helpers/postgres.js';
import { startSimulatedGrid, TRIVIAL_JOB } from './simulated-grid.js';

export interface DispatchLatencyOptions {
  agents: number;
  samples: number;
  /** 0 for idle. */
  backgroundJobsPerSecond: number;
}

export interface DispatchLatencyRun {
  latencies: number[];
  /**
   * Idle runs only: what one hop costs on this machine after the same idle gap
   * as a sample's (IDLE_GAP_MS), measured from this process in the same run —
   * a no-op gRPC round trip to the control plane (ListRuntimes) and a SELECT 1
   * round trip to PostgreSQL. A submit → Assignment crosses a gRPC call, a
   * commit and a stream message, each woken from idle like these.
   */
  floor?: { grpcNoop: number[]; postgresSelect: number[] };
  /** The background rate achieved while sampling (it may fall short of the one asked for). */
  backgroundJobsPerSecond: number;
  check: RunCheck;
}

const WARM_UP_MS = 1000;
// About the gap before each idle sample: waitForFinished polls every 10 ms.
const IDLE_GAP_MS = 10;
const BACKGROUND_MAX_IN_FLIGHT = 64;

export async function gridDispatchLatency(o: DispatchLatencyOptions): Promise<DispatchLatencyRun> {
  const grid = await startSimulatedGrid({ agents: o.agents });
  const backgroundApi = clients(grid.cp.address);
  try {
    const background = o.backgroundJobsPerSecond > 0 ? startBackground(backgroundApi, o.backgroundJobsPerSecond) : undefined;
    if (background) await sleep(WARM_UP_MS);
    const latencies: number[] = [];
    for (let i = 0; i < o.samples; i++) {
      const at = performance.now();
      const { job } = await grid.api.jobs.submitJob({ spec: TRIVIAL_JOB, requestId: '' });
      latencies.push((await grid.fleet.whenAssigned(job!.id)) - at);
      // Idle means idle: the next sample waits until this job has finished.
      if (!background) await waitForFinished(grid, i + 1, 10_000);
      background?.throwIfFailed();
    }
    const load = background?.stop();
    const total = o.samples + (load?.sent ?? 0);
    await waitForFinished(grid, total, 30_000);
    const check = await checkGridRun(grid.db.sql, grid.fleet, total);
    requireCorrect(check);
    const floor = background ? undefined : await idleFloor(grid.api, grid.db.sql, o.samples);
    return { latencies, floor, backgroundJobsPerSecond: load ? load.sent / load.seconds : 0, check };
  } catch (err) {
    process.stderr.write(`bench: dispatch latency run failed; control-plane log: ${grid.cp.logFile}\n`);
    throw err;
  } finally {
    backgroundApi.close();
    await grid.stop();
  }
}

/** Round trips that do nothing, each after IDLE_GAP_MS of idleness: the machine's share of an idle sample. */
async function idleFloor(api: Clients, sql: TestDatabase['sql'], samples: number): Promise<NonNullable<DispatchLatencyRun['floor']>> {
  const grpcNoop: number[] = [];
  const postgresSelect: number[] = [];
  for (let i = 0; i < samples; i++) {
    await sleep(IDLE_GAP_MS);
    let at = performance.now();
    await api.jobs.listRuntimes({});
    grpcNoop.push(performance.now() - at);
    await sleep(IDLE_GAP_MS);
    at = performance.now();
    await sql`SELECT 1`;
    postgresSelect.push(performance.now() - at);
  }
  return { grpcNoop, postgresSelect };
}

interface Background {
  throwIfFailed(): void;
  /** Stops submitting; what was sent, over how long (sent ones still run). */
  stop(): { sent: number; seconds: number };
}

/** Submits at `rate` jobs/s, open loop (ticks every 2 ms), at most 64 calls in flight. */
function startBackground(api: Clients, rate: number): Background {
  const t0 = performance.now();
  let sent = 0;
  let inFlight = 0;
  let failure: Error | undefined;
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    while (sent < due && inFlight < BACKGROUND_MAX_IN_FLIGHT) {
      sent++;
      inFlight++;
      api.jobs.submitJob({ spec: TRIVIAL_JOB, requestId: '' }).then(
        () => inFlight--,
        (err: Error) => {
          inFlight--;
          failure ??= err;
        },
      );
    }
  }, 2);
  return {
    throwIfFailed() {
      if (failure) throw new Error(`background submit failed: ${failure.message}`);
    },
    stop() {
      clearInterval(timer);
      this.throwIfFailed();
      return { sent, seconds: (performance.now() - t0) / 1000 };
    },
  };
}
