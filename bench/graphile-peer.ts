// graphile-worker 0.18.0 on the same PostgreSQL, as the peer of issue 11: the
// same trivial jobs (a no-op task), its own fresh database, measured the same
// way as Grid (jobs / (first add → last job completed in the database), and
// Postgres CPU per job from /proc). It runs in this process, with no network
// hop between the queue and the task: that is what Grid is held against.
//
// Concurrency: Grid's scenario has 16 agents × 8 slots = 128 slots, but
// graphile-worker wants a pool of concurrency + 2 connections and this
// PostgreSQL allows 100, and a pool much smaller than the concurrency starves
// it (measured here: slower at 128 than at 16 with the default pool of 10). So
// both modes run 32 jobs at once with a pool of 34, as its documentation advises.
import { Logger, makeWorkerUtils, run, type Runner, type WorkerUtils } from 'graphile-worker';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDatabase, type TestDatabase } from '../test/helpers/postgres.js';
import { cpuSpent, readCpu } from './process-cpu.js';

export type GraphileMode = 'unbatched' | 'batched';

export const GRAPHILE_CONCURRENCY = 32;
const POOL_SIZE = GRAPHILE_CONCURRENCY + 2;

/** Its fastest mode (its documentation's "batching"): a local queue of 500, completions and failures batched. */
const BATCHED = { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 };

const SILENT = new Logger(() => () => {});

export interface GraphileThroughputOptions {
  mode: GraphileMode;
  jobs: number;
  /** Jobs per addJobs call (1,000 in issue 11). */
  addBatch: number;
  /** Concurrent addJobs callers. */
  adders: number;
  stallMs?: number;
}

export interface GraphileRun {
  jobsPerSecond: number;
  seconds: number;
  postgresCpuMsPerJob: number;
  benchCpuMsPerJob: number;
  checked: string[];
}

interface Peer {
  db: TestDatabase;
  runner: Runner;
  utils: WorkerUtils;
  /** Handler calls per job number. */
  handled: Uint32Array;
  /** Jobs whose handler has run at least once. */
  progress: { ran: number };
  /** performance.now() when each job's handler started. */
  startedAt: Float64Array;
  stop(): Promise<void>;
}

async function startPeer(mode: GraphileMode, jobs: number): Promise<Peer> {
  const db = await createTestDatabase();
  const handled = new Uint32Array(jobs);
  const startedAt = new Float64Array(jobs);
  const progress = { ran: 0 };
  let runner: Runner | undefined;
  let utils: WorkerUtils | undefined;
  const stop = async () => {
    await utils?.release();
    await runner?.stop();
    // graphile-worker's pool may still be closing its connections when stop()
    // resolves; dropping the database (WITH FORCE) under them would make the
    // pool emit an error nobody listens to any more, and crash this process.
    await waitForNoOtherSessions(db);
    await db.drop();
  };
  try {
    runner = await run({
      connectionString: db.url,
      concurrency: GRAPHILE_CONCURRENCY,
      maxPoolSize: POOL_SIZE,
      noHandleSignals: true,
      logger: SILENT,
      taskList: {
        noop: async (payload) => {
          const i = (payload as { i: number }).i;
          startedAt[i] = performance.now();
          if (handled[i]!++ === 0) progress.ran++;
        },
      },
      preset: mode === 'batched' ? { worker: BATCHED } : undefined,
    });
    utils = await makeWorkerUtils({ connectionString: db.url, logger: SILENT });
    return { db, runner, utils, handled, progress, startedAt, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitForNoOtherSessions(db: TestDatabase, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const others = async () =>
    (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)[0]!.n;
  while ((await others()) > 0 && performance.now() < deadline) await sleep(20);
}

async function jobsLeft(peer: Peer): Promise<number> {
  const { rows } = await peer.utils.withPgClient((c) => c.query<{ n: number }>('SELECT count(*)::int AS n FROM graphile_worker._private_jobs'));
  return rows[0]!.n;
}

export async function graphileThroughputRun(o: GraphileThroughputOptions): Promise<GraphileRun> {
  const peer = await startPeer(o.mode, o.jobs);
  try {
    const before = readCpu();
    const t0 = performance.now();
    let next = 0;
    const adder = async () => {
      while (next < o.jobs) {
        const from = next;
        next = Math.min(o.jobs, next + o.addBatch);
        await peer.utils.addJobs(Array.from({ length: next - from }, (_, k) => ({ identifier: 'noop', payload: { i: from + k } })));
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.adders, Math.ceil(o.jobs / o.addBatch)) }, adder));
    // Every handler has run; then wait (polling only now) until the database
    // holds no job, i.e. every completion is committed, batched ones included.
    await waitFor(() => peer.progress.ran, o.jobs, o.stallMs ?? 30_000);
    for (let left = await jobsLeft(peer); left > 0; left = await jobsLeft(peer)) await sleep(5);
    const seconds = (performance.now() - t0) / 1000;
    const spent = cpuSpent(before, readCpu());
    const twice = peer.handled.filter((n) => n !== 1).length;
    if (twice > 0) throw new Error(`correctness check failed: ${twice} jobs not run exactly once`);
    return {
      jobsPerSecond: o.jobs / seconds,
      seconds,
      postgresCpuMsPerJob: spent.postgresMs / o.jobs,
      benchCpuMsPerJob: spent.benchMs / o.jobs,
      checked: ['every job ran exactly once', 'no job left in the queue (all completed)'],
    };
  } finally {
    await peer.stop();
  }
}

/**
 * add → handler start, one job at a time on an idle worker (default mode: no
 * local queue, which would only add the wait for its next fetch). Each sample
 * waits for the job to be completed before the next add.
 */
export async function graphileAddToStartLatency(samples: number): Promise<number[]> {
  const peer = await startPeer('unbatched', samples);
  try {
    const latencies: number[] = [];
    for (let i = 0; i < samples; i++) {
      const at = performance.now();
      await peer.utils.addJob('noop', { i });
      await waitFor(() => peer.progress.ran, i + 1, 10_000);
      latencies.push(peer.startedAt[i]! - at);
      while ((await jobsLeft(peer)) > 0) await sleep(1);
    }
    return latencies;
  } finally {
    await peer.stop();
  }
}

/** Polls `count` every millisecond until it reaches `target`; throws if it stops moving for `stallMs`. */
async function waitFor(count: () => number, target: number, stallMs: number): Promise<void> {
  let seen = count();
  let movedAt = performance.now();
  while (seen < target) {
    await sleep(1);
    if (count() !== seen) {
      seen = count();
      movedAt = performance.now();
    } else if (performance.now() - movedAt > stallMs) {
      throw new Error(`stalled: ${seen} of ${target} jobs ran, none in the last ${stallMs / 1000} s`);
    }
  }
}
