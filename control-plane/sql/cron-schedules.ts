// The stored periodic schedules (migration 22), as CronService reads and
// changes them; their firing is cron-firer.ts's (sql/fire-crons.ts).
import type { Sql } from '../db/connect.js';
import type { OverlapPolicy } from '../cron-schedule.js';

export interface CronRow {
  name: string;
  schedule: string;
  overlap: OverlapPolicy;
  paused: boolean;
  spec: Buffer;
  submitter: string;
  next_fire_at: Date | null;
  last_fired_at: Date | null;
  last_job_id: string | null;
  created_at: Date;
}

const COLUMNS = 'name, schedule, overlap, paused, spec, submitter, next_fire_at, last_fired_at, last_job_id, created_at';

/** Stores a schedule; undefined when the name is taken. */
export async function insertCron(
  sql: Sql,
  cron: { name: string; schedule: string; overlap: OverlapPolicy; spec: Buffer; submitter: string; nextFireAt: Date },
): Promise<CronRow | undefined> {
  const [row] = await sql<CronRow[]>`
    INSERT INTO cron_schedules (name, schedule, overlap, spec, submitter, next_fire_at)
    VALUES (${cron.name}, ${cron.schedule}, ${cron.overlap}, ${cron.spec}, ${cron.submitter}, ${cron.nextFireAt})
    ON CONFLICT (name) DO NOTHING
    RETURNING ${sql.unsafe(COLUMNS)}`;
  return row;
}

export async function listCrons(sql: Sql): Promise<CronRow[]> {
  return sql<CronRow[]>`SELECT ${sql.unsafe(COLUMNS)} FROM cron_schedules ORDER BY name`;
}

export async function getCron(sql: Sql, name: string): Promise<CronRow | undefined> {
  const [row] = await sql<CronRow[]>`SELECT ${sql.unsafe(COLUMNS)} FROM cron_schedules WHERE name = ${name}`;
  return row;
}

/**
 * Pauses (nextFireAt undefined) or resumes a schedule from `nextFireAt`; a lease a
 * replica holds is dropped with the pause, so that its firing in flight cannot
 * advance it (fire-crons.ts). Undefined when there is no such schedule.
 */
export async function setCronPaused(sql: Sql, name: string, nextFireAt: Date | undefined): Promise<CronRow | undefined> {
  const [row] = await sql<CronRow[]>`
    UPDATE cron_schedules SET paused = ${nextFireAt === undefined}, next_fire_at = ${nextFireAt ?? null}, lease_by = NULL, lease_until = NULL
    WHERE name = ${name}
    RETURNING ${sql.unsafe(COLUMNS)}`;
  return row;
}

/** Whether there was such a schedule. */
export async function deleteCron(sql: Sql, name: string): Promise<boolean> {
  return (await sql`DELETE FROM cron_schedules WHERE name = ${name}`).count > 0;
}
