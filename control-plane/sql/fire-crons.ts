// The firing of periodic schedules, set-based: lease the due schedules (one
// statement for all of them), then advance those fired (one more). A lease is
// one replica's right to decide a schedule's due ticks: others skip it until
// it is released or lapses (a replica that died holding it), and the advance
// is fenced by it and by the tick it started from, so a firing that lost its
// lease changes nothing.
import type { Sql } from '../db/connect.js';
import type { CronRow } from './cron-schedules.js';

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

/** Releases leases without moving the schedules on (their firing failed: the next pass tries again). */
export async function releaseCrons(sql: Sql, replica: string, names: string[]): Promise<void> {
  if (names.length === 0) return;
  await sql`UPDATE cron_schedules SET lease_by = NULL, lease_until = NULL WHERE name = ANY(${names}::text[]) AND lease_by = ${replica}`;
}

/** In how long (by the database's clock) the next unpaused schedule is due; undefined if none is. */
export async function nextCronDueInMs(sql: Sql): Promise<number | undefined> {
  const [row] = await sql<{ in_ms: number | null }[]>`
    SELECT (extract(epoch FROM min(next_fire_at) - now()) * 1000)::float8 AS in_ms FROM cron_schedules WHERE NOT paused`;
  return row?.in_ms ?? undefined;
}
