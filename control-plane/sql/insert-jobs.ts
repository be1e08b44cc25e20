// Submit: many validated jobs stored as QUEUED in one statement (one commit for
// a group of concurrent submits, see group-commit.ts). Admission reads the
// queue depth the triggers of migration 7 keep, never a count of the queue.
import { JobSpec } from '../../common/gen/grid/v1/job.js';
import { Task } from '../../common/gen/grid/v1/agent.js';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { stateToDb } from '../../common/job-state.js';
import { durationToMs } from '../../common/units.js';
import type { Sql } from '../db/connect.js';

export interface NewJob {
  id: string;
  spec: JobSpec;
  task: Task;
  /** Empty: no idempotency key. */
  requestId: string;
}

export interface InsertedJob {
  id: string;
  version: number;
  submitted_at: Date;
}

export type InsertOutcome =
  | { kind: 'created'; row: InsertedJob }
  /** The request id was seen before: the job it created. */
  | { kind: 'existing'; id: string }
  /** The queue holds `maxQueued` jobs already. */
  | { kind: 'full' };

/**
 * Stores the jobs in order while the queue has room for them (the room is read
 * once for the whole group). A job whose request id was seen before is not
 * stored again: its outcome names the job that id created, so a retried submit
 * is never a second job, inside one group or across groups. Also returns the
 * queue depth the statement read, for backpressure (submit-pacing.ts).
 */
export async function insertJobs(
  sql: Sql,
  jobs: NewJob[],
  maxQueued: number,
): Promise<{ outcomes: InsertOutcome[]; queuedBefore: number | undefined }> {
  if (jobs.length === 0) return { outcomes: [], queuedBefore: undefined };
  const col = <T>(f: (j: NewJob) => T) => jobs.map(f);
  const rows = await sql<(InsertedJob & { ord: number; room: number })[]>`
    WITH input AS (
      SELECT * FROM unnest(
        ${col((j) => j.id)}::uuid[],
        ${sql.array(col((j) => Buffer.from(JobSpec.encode(j.spec).finish())))}::bytea[],
        ${sql.array(col((j) => Buffer.from(Task.encode(j.task).finish())))}::bytea[],
        ${col((j) => j.task.image)}::text[], ${col((j) => j.task.cpus)}::float8[],
        ${col((j) => Number(j.task.memoryBytes))}::int8[], ${col((j) => j.requestId || null)}::text[],
        ${col((j) => j.spec.maxAttempts)}::int[], ${col((j) => durationToMs(j.spec.queueTimeout))}::int8[],
        ${col((j) => durationToMs(j.task.timeout))}::int8[], ${col((j) => durationToMs(j.task.stopGrace))}::int[],
        ${col((j) => Number(j.task.outputCapBytes))}::int8[]
      ) WITH ORDINALITY AS i(id, spec, task, image, cpus, memory_bytes, request_id, max_attempts, queue_ms,
                             timeout_ms, stop_grace_ms, output_cap_bytes, ord)
    ), room AS (
      SELECT ${maxQueued}::int8 - coalesce((SELECT sum(queued) FROM queue_depth), 0) AS n
    ), inserted AS (
      INSERT INTO jobs (id, state, spec, task, image, cpus, memory_bytes, request_id, max_attempts,
                        queue_deadline, timeout_ms, stop_grace_ms, output_cap_bytes)
      SELECT id, ${stateToDb(JobState.JOB_STATE_QUEUED)}, spec, task, image, cpus, memory_bytes, request_id, max_attempts,
             now() + queue_ms * interval '1 millisecond', timeout_ms, stop_grace_ms, output_cap_bytes
      FROM input WHERE ord <= (SELECT n FROM room)
      ORDER BY ord
      ON CONFLICT (request_id) DO NOTHING
      RETURNING id, version, submitted_at
    )
    SELECT inserted.*, input.ord, (SELECT n FROM room) AS room FROM inserted JOIN input USING (id)`;
  const created = new Map(rows.map((r) => [r.ord, r]));
  const missing = jobs.filter((j, i) => !created.has(i + 1) && j.requestId).map((j) => j.requestId);
  const existing = new Map(
    missing.length === 0
      ? []
      : (await sql<{ id: string; request_id: string }[]>`SELECT id, request_id FROM jobs WHERE request_id = ANY(${missing}::text[])`).map(
          (r) => [r.request_id, r.id],
        ),
  );
  const outcomes = jobs.map((job, i): InsertOutcome => {
    const row = created.get(i + 1);
    if (row) return { kind: 'created', row: { id: row.id, version: row.version, submitted_at: row.submitted_at } };
    const id = job.requestId ? existing.get(job.requestId) : undefined;
    return id ? { kind: 'existing', id } : { kind: 'full' };
  });
  // The queue's depth as the statement read it (known only when it stored something).
  return { outcomes, queuedBefore: rows.length > 0 ? maxQueued - Number(rows[0]!.room) : undefined };
}
