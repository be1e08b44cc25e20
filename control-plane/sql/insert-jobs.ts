// Submit: many validated jobs stored in one statement (one commit for a group
// of concurrent submits, see group-commit.ts), QUEUED unless placed (below). Admission reads the
// queue depth the triggers of migration 7 keep, never a count of the queue.
// A job the caller placed on a node (a free slot, nothing queued) is stored
// ASSIGNED to it at once, claimed in the same statement: QUEUED → ASSIGNED
// without the queue's two round trips, but only while the queue holds nothing
// a connected node could run, as this statement reads it, so it never passes a
// committed job that waits for a node like the one it takes (one that another
// replica is inserting at the same moment can be passed, as by any claim). Jobs
// that fit no connected node (marked by sql/note-waiting.ts) do not count; a
// node that could hold one unmarks it as it connects, before it is offered work.
import { AGEING_STEP_MS } from '../../common/queue-order.js';
import { JobSpec } from '../../common/gen/grid/v1/job.js';
import { Task } from '../../common/gen/grid/v1/agent.js';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { claimTargetOf, stateToDb } from '../../common/job-state.js';
import { durationToMs } from '../../common/units.js';
import { labelTestsToDb } from './label-match.js';
import type { Sql } from '../db/connect.js';

export interface NewJob {
  id: string;
  spec: JobSpec;
  task: Task;
  /** Empty: no idempotency key. */
  requestId: string;
  /** spec.secret_env's values: in memory only, for a delivery straight from the submit. */
  secrets?: Record<string, string>;
  /** The same, sealed (secret-box.ts): what is stored. */
  sealedSecrets?: Buffer;
  /** The API token it came with (submitter-context.ts); none: ''. */
  submitter?: string;
  /** The periodic schedule and tick that submitted it (cron-firer.ts). */
  cron?: { name: string; tick: Date };
}

export interface InsertedJob {
  id: string;
  version: number;
  submitted_at: Date;
  /** QUEUED, or ASSIGNED to `node_id` (attempt 1) when it was placed and the queue was empty. */
  state: string;
  node_id: string | null;
  attempt: number;
  assigned_at: Date | null;
}

const QUEUED = stateToDb(JobState.JOB_STATE_QUEUED);
const ASSIGNED = stateToDb(claimTargetOf(JobState.JOB_STATE_QUEUED)!.state);

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
  /** Job id → the node it was placed on (see above); the rest are queued. */
  placed: ReadonlyMap<string, string> = new Map(),
): Promise<{ outcomes: InsertOutcome[]; queuedBefore: number | undefined }> {
  if (jobs.length === 0) return { outcomes: [], queuedBefore: undefined };
  const col = <T>(f: (j: NewJob) => T) => jobs.map(f);
  // Placed only while no queued job waits that some connected node can hold
  // (the queued jobs that fit none are counted apart, migration 11).
  // Not on a node drained since this replica last heard (node-drain.ts): such a job is queued.
  const direct = sql`(input.node_id IS NOT NULL AND (SELECT ahead FROM room) = 0 AND input.not_before IS NULL
                      AND NOT EXISTS (SELECT 1 FROM nodes WHERE nodes.id = input.node_id AND nodes.drain_requested_at IS NOT NULL))`;
  const rows = await sql<(InsertedJob & { ord: number; room: number })[]>`
    WITH given AS (
      SELECT * FROM unnest(
        ${col((j) => j.id)}::uuid[],
        ${sql.array(col((j) => Buffer.from(JobSpec.encode(j.spec).finish())))}::bytea[],
        ${sql.array(col((j) => Buffer.from(Task.encode(j.task).finish())))}::bytea[],
        ${col((j) => j.task.image)}::text[], ${col((j) => j.task.cpus)}::float8[],
        ${col((j) => Number(j.task.memoryBytes))}::int8[], ${col((j) => j.requestId || null)}::text[],
        ${col((j) => j.spec.maxAttempts)}::int[], ${col((j) => durationToMs(j.spec.queueTimeout))}::int8[],
        ${col((j) => durationToMs(j.task.timeout))}::int8[], ${col((j) => durationToMs(j.task.stopGrace))}::int[],
        ${col((j) => Number(j.task.outputCapBytes))}::int8[], ${col((j) => placed.get(j.id) ?? null)}::text[],
        ${col((j) => j.sealedSecrets?.toString('base64') ?? null)}::text[],
        ${col((j) => j.spec.priority * AGEING_STEP_MS)}::int8[],
        ${col((j) => labelTestsToDb(j.spec.constraints))}::text[], ${col((j) => labelTestsToDb(j.spec.affinities))}::text[],
        ${col((j) => j.submitter ?? '')}::text[], ${col((j) => j.spec.retries)}::int[],
        ${col((j) => durationToMs(j.spec.retryBackoff))}::int[], ${col((j) => j.spec.notBefore?.toISOString() ?? null)}::timestamptz[],
        ${col((j) => j.cron?.name ?? null)}::text[], ${col((j) => j.cron?.tick.toISOString() ?? null)}::timestamptz[]
      ) WITH ORDINALITY AS i(id, spec, task, image, cpus, memory_bytes, request_id, max_attempts, queue_ms,
                             timeout_ms, stop_grace_ms, output_cap_bytes, node_id, sealed_secrets, ahead_ms,
                             constraints, affinities, submitter, retries, retry_backoff_ms, asked_not_before, cron_name, cron_tick, ord)
    ), input AS (
      -- Not before a time already past: at once.
      SELECT *, CASE WHEN asked_not_before > now() THEN asked_not_before END AS not_before FROM given
    ), room AS (
      SELECT coalesce(sum(queued), 0) AS queued, coalesce(sum(queued - unfit), 0) AS ahead FROM queue_depth
    ), inserted AS (
      INSERT INTO jobs (id, state, spec, task, image, cpus, memory_bytes, request_id, max_attempts,
                        queue_deadline, timeout_ms, stop_grace_ms, output_cap_bytes, node_id, attempt, assigned_at, secret_env, queue_key,
                        constraints, affinities, submitter, retries, retry_backoff_ms, not_before, queue_timeout_ms, cron_name, cron_tick)
      SELECT id, CASE WHEN ${direct} THEN ${ASSIGNED} ELSE ${QUEUED} END, spec, task, image, cpus, memory_bytes, request_id, max_attempts,
             -- A delayed job's queue timeout counts from when it is due.
             coalesce(not_before, now()) + queue_ms * interval '1 millisecond', timeout_ms, stop_grace_ms, output_cap_bytes,
             CASE WHEN ${direct} THEN input.node_id END, CASE WHEN ${direct} THEN 1 ELSE 0 END, CASE WHEN ${direct} THEN now() END,
             decode(sealed_secrets, 'base64'),
             -- Its place in the queue: priority with ageing (common/queue-order.ts), from when it is due.
             coalesce(not_before, now()) - ahead_ms * interval '1 millisecond',
             -- Sent as text: a jsonb[] parameter would store each as a JSON string.
             constraints::jsonb, affinities::jsonb, submitter, retries, retry_backoff_ms, not_before, queue_ms, cron_name, cron_tick
      FROM input WHERE ord <= ${maxQueued}::int8 - (SELECT queued FROM room)
      ORDER BY ord
      ON CONFLICT (request_id) DO NOTHING
      RETURNING id, version, submitted_at, state, node_id, attempt, assigned_at
    ), history AS (
      INSERT INTO job_attempts (job_id, attempt, node_id, assigned_at)
      SELECT id, attempt, node_id, assigned_at FROM inserted WHERE state = ${ASSIGNED}
    )
    SELECT inserted.*, input.ord, ${maxQueued}::int8 - (SELECT queued FROM room) AS room FROM inserted JOIN input USING (id)`;
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
    if (row) {
      const { id, version, submitted_at, state, node_id, attempt, assigned_at } = row;
      return { kind: 'created', row: { id, version, submitted_at, state, node_id, attempt, assigned_at } };
    }
    const id = job.requestId ? existing.get(job.requestId) : undefined;
    return id ? { kind: 'existing', id } : { kind: 'full' };
  });
  // The queue's depth as the statement read it (known only when it stored something).
  return { outcomes, queuedBefore: rows.length > 0 ? maxQueued - Number(rows[0]!.room) : undefined };
}
