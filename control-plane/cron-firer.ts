// The one owner of periodic schedules' firing, on every replica: it leases the
// due schedules (sql/fire-crons.ts), decides each one's due ticks
// (cron-schedule.ts), submits their jobs through the job transitions' owner,
// cancels an earlier tick's job under CANCEL_PREVIOUS, and moves the schedules
// on. Exactly one job per tick however many replicas fire: a lease lets one
// replica decide a schedule at a time, and a tick's request id makes a second
// firing of it (after a replica died between submit and advance) the same job.
// It wakes when the next schedule is due, by the database's clock, and at
// least every second, for schedules other replicas store.
import { v7 as uuidv7 } from 'uuid';
import { JobSpec, JobState } from '../common/gen/grid/v1/job.js';
import { ACTIVE_DB_STATES, stateToDb } from '../common/job-state.js';
import type { Logger } from '../common/logger.js';
import { dueTicks, overlapDecision, tickRequestId } from './cron-schedule.js';
import type { Sql } from './db/connect.js';
import type { JobTransitions, NewJob } from './job-transitions.js';
import type { RuntimeTable } from './runtime-presets.js';
import { validateSubmission, type SpecPolicy } from './spec-validation.js';
import type { CronRow } from './sql/cron-schedules.js';
import { advanceCrons, leaseDueCrons, nextCronDueInMs, releaseCrons, type CronAdvance } from './sql/fire-crons.js';

const QUEUED = stateToDb(JobState.JOB_STATE_QUEUED);
const LEASE_MS = 10_000;
const BATCH = 100;
const MAX_SLEEP_MS = 1000;
const RETRY_AFTER_ERROR_MS = 1000;

export interface CronFirer {
  stop(): Promise<void>;
}

export function startCronFirer(deps: {
  sql: Sql;
  transitions: JobTransitions;
  policy: SpecPolicy;
  runtimes: RuntimeTable;
  maxQueued: number;
  replicaId: string;
  log: Logger;
}): CronFirer {
  const { sql, log } = deps;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  /** One firing of every due schedule this replica could lease; in how long to look again. */
  async function pass(): Promise<number> {
    const { rows, now } = await leaseDueCrons(sql, deps.replicaId, LEASE_MS, BATCH);
    if (rows.length > 0) await fire(rows, now);
    const next = await nextCronDueInMs(sql);
    // A few ms late rather than early: a timer may fire before its time, and the schedule would not be due yet.
    return next === undefined ? MAX_SLEEP_MS : Math.min(Math.max(next + 5, 5), MAX_SLEEP_MS);
  }

  async function fire(rows: CronRow[], now: Date): Promise<void> {
    const previous = await activePrevious(rows);
    const jobs: NewJob[] = [];
    const plans = rows.map((row) => {
      const ticks = dueTicks(row.schedule, row.next_fire_at!, now);
      if (ticks.missed > 0) log.warn({ cron: row.name, missed: ticks.missed }, 'periodic job: ticks missed while no control plane could fire them; not fired late');
      const prior = row.last_job_id ? previous.get(row.last_job_id) : undefined;
      const decision = overlapDecision(row.overlap, ticks.due, prior !== undefined);
      const made = decision.submit.flatMap((tick) => {
        const job = jobFor(row, tick);
        return job ? [job] : [];
      });
      jobs.push(...made);
      if (decision.submit.length === 0 && ticks.due.length > 0) log.info({ cron: row.name, job_id: row.last_job_id }, 'periodic job: tick skipped, its last job still runs');
      return { row, ticks, made, cancel: decision.cancelPrevious ? prior : undefined };
    });
    const outcomes = await deps.transitions.submitMany(jobs, deps.maxQueued);
    const idOf = new Map<NewJob, string | undefined>(
      jobs.map((job, i) => {
        const o = outcomes[i]!;
        return [job, o.kind === 'created' || o.kind === 'existing' ? o.job.id : undefined];
      }),
    );
    const advances: CronAdvance[] = [];
    const retry: string[] = [];
    for (const plan of plans) {
      // A tick whose job could not be stored (the queue full, the database away): the next pass fires it again.
      if (plan.made.some((job) => idOf.get(job) === undefined)) {
        retry.push(plan.row.name);
        continue;
      }
      const lastJob = plan.made.at(-1);
      advances.push({
        name: plan.row.name,
        from: plan.row.next_fire_at!,
        next: plan.ticks.next,
        firedAt: plan.ticks.due.at(-1) ?? plan.row.next_fire_at!,
        jobId: lastJob ? idOf.get(lastJob) : undefined,
      });
      for (const job of plan.made) log.info({ cron: plan.row.name, job_id: idOf.get(job), tick: job.cron!.tick.toISOString() }, 'periodic job submitted');
    }
    // The earlier ticks' jobs, by their own stop grace.
    for (const plan of plans) {
      if (plan.cancel && !retry.includes(plan.row.name)) await deps.transitions.cancel([plan.cancel.id], plan.cancel.stopGraceMs);
    }
    await advanceCrons(sql, deps.replicaId, advances);
    await releaseCrons(sql, deps.replicaId, retry);
  }

  /** The schedules' last jobs that are still queued or running. */
  async function activePrevious(rows: CronRow[]): Promise<Map<string, { id: string; stopGraceMs: number }>> {
    const ids = rows.flatMap((r) => (r.last_job_id ? [r.last_job_id] : []));
    if (ids.length === 0) return new Map();
    const active = await sql<{ id: string; stop_grace_ms: number }[]>`
      SELECT id, stop_grace_ms FROM jobs WHERE id = ANY(${ids}::uuid[]) AND state = ANY(${[QUEUED, ...ACTIVE_DB_STATES]}::text[])`;
    return new Map(active.map((r) => [r.id, { id: r.id, stopGraceMs: r.stop_grace_ms }]));
  }

  /** A tick's job, validated again under today's policy; undefined (said why) if it no longer passes. */
  function jobFor(row: CronRow, tick: Date): NewJob | undefined {
    try {
      const { spec, task } = validateSubmission(JobSpec.decode(row.spec), deps.policy, deps.runtimes);
      return { id: uuidv7(), spec, task, requestId: tickRequestId(row.name, row.created_at, tick), submitter: row.submitter, cron: { name: row.name, tick } };
    } catch (err) {
      log.warn({ cron: row.name, err: (err as Error).message }, 'periodic job: its spec no longer passes this server\'s checks; tick not fired');
      return undefined;
    }
  }

  function schedule(ms: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      running = pass().then(schedule, (err) => {
        log.warn({ err }, 'periodic jobs: firing failed; retrying');
        schedule(RETRY_AFTER_ERROR_MS);
      });
    }, ms);
    timer.unref();
  }
  schedule(0);

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running?.catch(() => {});
    },
  };
}
