// The firing of periodic schedules, set-based: lease the due schedules (one
// statement for all of them), then advance those fired (one more). A lease is
// one replica's right to decide a schedule's due ticks: others skip it until
// it is released or lapses (a replica that died holding it), and the advance
// is fenced by it and by the tick it started from, so a firing that lost its
// lease changes nothing.
import { JobState } from '../../common/gen/grid/v1/job.js';
import { ACTIVE_DB_STATES, stateToDb } from '../../common/job-state.js';
import type { Sql } from '../db/connect.js';
import type { CronRow } from './cron-schedules.js';

// Queued or on a node: what migration 23's jobs_cron_active holds.
const NOT_ENDED = [stateToDb(JobState.JOB_STATE_QUEUED), ...ACTIVE_DB_STATES];

/** Leases up to `limit` due, unpaused schedules for `leaseMs`, oldest due first; with the database's now. */
export async function leaseDueCrons(sql: Sql, replica: string, leaseMs: number, limit: number): Promise<{ rows: CronRow[]; now: Date }> {
  const rows = await sql<(CronRow & { now: Date })[]>`
    UPDATE cron_schedules c SET lease_by = ${replica}, lease_until = now() + ${leaseMs} * interval '1 millisecond'
    FROM (SELECT name FROM cron_schedules
          WHERE NOT paused AND next_fire_at <= now() AND (lease_until IS NULL OR lease_until < now())
          ORDER BY next_fire_at LIMIT ${limit} FOR UPDATE SKIP LOCKED) due
    WHERE c.name = due.name
    RETURNING c.name, c.schedule, c.overlap, c.paused, c.spec, c.submitter, c.next_fire_at, c.last_fired_at, c.last_job_id, c.created_at, now() AS now`;
  return { rows, now: rows[0]?.now ?? new Date() };
}

export interface CronAdvance {
  name: string;
  /** The next_fire_at the lease was taken at. */
  from: Date;
  /** The first tick after this firing. */
  next: Date | undefined;
  /** The last tick fired (or skipped). */
  firedAt: Date;
  /** The job of the last tick that got one; undefined: keep the one before. */
  jobId: string | undefined;
}

/** Moves fired schedules on and releases their leases; returns the names it moved. */
export async function advanceCrons(sql: Sql, replica: string, advances: CronAdvance[]): Promise<string[]> {
  if (advances.length === 0) return [];
  const col = <T>(f: (a: CronAdvance) => T) => advances.map(f);
  const rows = await sql<{ name: string }[]>`
    UPDATE cron_schedules c SET next_fire_at = a.next, last_fired_at = a.fired_at, last_job_id = coalesce(a.job_id, c.last_job_id),
      lease_by = NULL, lease_until = NULL
    FROM unnest(${col((a) => a.name)}::text[], ${col((a) => a.from.toISOString())}::timestamptz[], ${col((a) => a.next?.toISOString() ?? null)}::timestamptz[],
                ${col((a) => a.firedAt.toISOString())}::timestamptz[], ${col((a) => a.jobId ?? null)}::uuid[]) AS a(name, from_at, next, fired_at, job_id)
    WHERE c.name = a.name AND c.lease_by = ${replica} AND c.next_fire_at = a.from_at
    RETURNING c.name`;
  return rows.map((r) => r.name);
}

/**
 * Gives up leases without moving the schedules on (their firing failed): no
 * replica leases them again for `coolOffMs`, so that a failing one (the queue
 * full, a spec that throws) is retried at that pace, not in a loop.
 */
export async function releaseCrons(sql: Sql, replica: string, names: string[], coolOffMs: number): Promise<void> {
  if (names.length === 0) return;
  await sql`UPDATE cron_schedules SET lease_by = NULL, lease_until = now() + ${coolOffMs} * interval '1 millisecond'
            WHERE name = ANY(${names}::text[]) AND lease_by = ${replica}`;
}

/**
 * In how long (by the database's clock) an unpaused schedule can next be
 * leased: when it is due, or when its lease (another replica's, or a cool-off)
 * ends if that is later. Undefined if there is none.
 */
export async function nextCronDueInMs(sql: Sql): Promise<number | undefined> {
  const [row] = await sql<{ in_ms: number | null }[]>`
    SELECT (extract(epoch FROM min(greatest(next_fire_at, lease_until)) - now()) * 1000)::float8 AS in_ms FROM cron_schedules WHERE NOT paused`;
  return row?.in_ms ?? undefined;
}

/** The jobs of these schedules that are queued or on a node: what an overlap policy looks at. */
export async function activeCronJobs(sql: Sql, names: string[]): Promise<{ id: string; cron_name: string; stop_grace_ms: number }[]> {
  if (names.length === 0) return [];
  return sql<{ id: string; cron_name: string; stop_grace_ms: number }[]>`
    SELECT id, cron_name, stop_grace_ms FROM jobs WHERE cron_name = ANY(${names}::text[]) AND state = ANY(${NOT_ENDED}::text[])`;
}
