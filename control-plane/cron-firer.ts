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
import { JobSpec } from '../common/gen/grid/v1/job.js';
import type { Logger } from '../common/logger.js';
import { dueTicks, overlapDecision, tickRequestId } from './cron-schedule.js';
import type { Sql } from './db/connect.js';
import type { JobTransitions, NewJob } from './job-transitions.js';
import type { RuntimeTable } from './runtime-presets.js';
import { validateSubmission, type SpecPolicy } from './spec-validation.js';
import type { CronRow } from './sql/cron-schedules.js';
import { activeCronJobs, advanceCrons, leaseDueCrons, nextCronDueInMs, releaseCrons, type CronAdvance } from './sql/fire-crons.js';

// Longer than a submit can be held under backlog (job-transitions' hold, 10 s), so that a
// firing in progress rarely loses its lease; a dead replica's ticks wait this long.
const LEASE_MS = 30_000;
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
    try {
      if (rows.length > 0) await fire(rows, now);
    } catch (err) {
      // Not left leased for LEASE_MS: another pass (here or on another replica) tries again soon.
      await releaseCrons(sql, deps.replicaId, rows.map((r) => r.name), RETRY_AFTER_ERROR_MS).catch(() => {});
      throw err;
    }
    const next = await nextCronDueInMs(sql);
    // A few ms late rather than early: a timer may fire before its time, and the schedule would not be due yet.
    return next === undefined ? MAX_SLEEP_MS : Math.min(Math.max(next + 5, 5), MAX_SLEEP_MS);
  }

  async function fire(rows: CronRow[], now: Date): Promise<void> {
    const active = await activeByCron(rows.map((r) => r.name));
    const jobs: NewJob[] = [];
    const failed: string[] = [];
    const plans = rows.flatMap((row) => {
      // One schedule that cannot be read (a pattern a newer croner refuses) must not hold back the rest.
      try {
        const ticks = dueTicks(row.schedule, row.next_fire_at!, now);
        if (ticks.missed > 0) log.warn({ cron: row.name, missed: ticks.missed }, 'periodic job: ticks missed while no control plane could fire them; not fired late');
        const running = active.get(row.name) ?? [];
        const decision = overlapDecision(row.overlap, ticks.due, running.length > 0);
        const made = decision.submit.flatMap((tick) => {
          const job = jobFor(row, tick);
          return job ? [job] : [];
        });
        jobs.push(...made);
        if (decision.submit.length === 0 && ticks.due.length > 0) log.info({ cron: row.name, job_id: running[0]?.id }, 'periodic job: tick skipped, its last job still runs');
        return [{ row, ticks, made, cancel: decision.cancelPrevious ? running : [] }];
      } catch (err) {
        log.warn({ cron: row.name, err }, 'periodic job: cannot fire it; trying again later');
        failed.push(row.name);
        return [];
      }
    });
    const outcomes = await deps.transitions.submitMany(jobs, deps.maxQueued);
    const idOf = new Map<NewJob, string | undefined>(
      jobs.map((job, i) => {
        const o = outcomes[i]!;
        return [job, o.kind === 'created' || o.kind === 'existing' ? o.job.id : undefined];
      }),
    );
    const advances: CronAdvance[] = [];
    for (const plan of plans) {
      // A tick whose job could not be stored (the queue full, the database away): a later pass fires it again.
      if (plan.made.some((job) => idOf.get(job) === undefined)) {
        failed.push(plan.row.name);
        continue;
      }
      // The jobs of earlier ticks still running, each by its own stop grace: before the
      // advance, so that a replica dying in between leaves the cancel to the next firing.
      try {
        for (const job of plan.cancel) await deps.transitions.cancel([job.id], job.stop_grace_ms);
      } catch (err) {
        log.warn({ cron: plan.row.name, err }, 'periodic job: cannot cancel the earlier tick\'s job; trying again later');
        failed.push(plan.row.name);
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
    await advanceCrons(sql, deps.replicaId, advances);
    await releaseCrons(sql, deps.replicaId, failed, RETRY_AFTER_ERROR_MS);
  }

  /** Each schedule's jobs still queued or on a node. */
  async function activeByCron(names: string[]): Promise<Map<string, { id: string; stop_grace_ms: number }[]>> {
    const byName = new Map<string, { id: string; stop_grace_ms: number }[]>();
    for (const job of await activeCronJobs(sql, names)) {
      byName.set(job.cron_name, [...(byName.get(job.cron_name) ?? []), job]);
    }
    return byName;
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
