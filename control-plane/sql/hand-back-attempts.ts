// Hand back: a draining node stopped attempts at its deadline and gives their
// jobs back (handBackTargetOf). An assigned or running job is queued again for
// another node with no attempt of its budget spent (its number stays used: it
// is a fencing token, counted in withdrawn_attempts); one whose cancel was
// committed first ends CANCELLED. The attempt stays in the history, outcome
// HANDED_BACK. Fenced as finish-attempts.ts is: only the job's current, active
// attempt, and only from its node. One statement for many reports.
import type { AttemptRef, FromNode } from '../../common/attempt.js';
import { ACTIVE_STATES, JobState, handBackTargetOf, stateToDb } from '../../common/job-state.js';
import type { Sql, TransactionSql } from '../db/connect.js';
import { requeuedDeadline } from './queue-deadline.js';
import { changedColumns, guardKeys, movesByState, pick, type ChangedJob, type MoveTable } from './changed-job.js';

export interface HandBackReport {
  attempt: AttemptRef;
  /** When the node had stopped it. */
  endedAt: Date;
  output?: { stdoutBytes: number; stderrBytes: number };
}

const HAND_BACK: MoveTable = movesByState(ACTIVE_STATES, handBackTargetOf);
const QUEUED = stateToDb(JobState.JOB_STATE_QUEUED);
/** The attempt's own outcome in its history when its job was queued again (migration 17). */
export const HANDED_BACK_OUTCOME = 'HANDED_BACK';

/** A changed row, with the node that handed it back (a requeued row no longer names it in node_id). */
export type HandedBackJob = ChangedJob & { handed_back_by: string };

export async function handBackAttempts(sql: Sql | TransactionSql, reports: FromNode<HandBackReport>[]): Promise<HandedBackJob[]> {
  if (reports.length === 0) return [];
  const db = sql as Sql;
  const col = <T>(f: (r: FromNode<HandBackReport>) => T) => reports.map(f);
  const target = pick(db, HAND_BACK, db`jobs.state`, 'state');
  return db<HandedBackJob[]>`
    WITH input AS (
      SELECT DISTINCT ON (id, attempt, node_id) * FROM unnest(
        ${col((r) => r.attempt.jobId)}::uuid[], ${col((r) => r.attempt.attempt)}::int[], ${col((r) => r.nodeId)}::text[],
        ${col((r) => r.endedAt.toISOString())}::timestamptz[],
        ${col((r) => r.output?.stdoutBytes ?? null)}::int8[], ${col((r) => r.output?.stderrBytes ?? null)}::int8[]
      ) AS r(id, attempt, node_id, ended_at, stdout_bytes, stderr_bytes)
    ), changed AS (
      UPDATE jobs SET
        version = jobs.version + 1,
        state = ${target},
        end_reason = ${pick(db, HAND_BACK, db`jobs.state`, 'reason')},
        withdrawn_attempts = jobs.withdrawn_attempts + CASE WHEN ${target} = ${QUEUED} THEN 1 ELSE 0 END,
        ended_at = CASE WHEN ${target} = ${QUEUED} THEN NULL ELSE input.ended_at END,
        node_id = CASE WHEN ${target} = ${QUEUED} THEN NULL ELSE jobs.node_id END,
        stdout_bytes = CASE WHEN ${target} = ${QUEUED} THEN NULL ELSE input.stdout_bytes END,
        stderr_bytes = CASE WHEN ${target} = ${QUEUED} THEN NULL ELSE input.stderr_bytes END,
        backstop_at = NULL,
        -- A requeued job gets its whole queue timeout again.
        queue_deadline = CASE WHEN ${target} = ${QUEUED} THEN ${requeuedDeadline(db, db`now()`)} ELSE jobs.queue_deadline END,
        message = CASE WHEN ${target} = ${QUEUED} THEN 'node ' || jobs.node_id || ' was drained and handed back attempt ' || jobs.attempt || '; queued again'
                       ELSE 'cancelled; its node stopped it while draining' END
      FROM input
      -- The ids again, as an index condition (see claim-jobs.ts).
      WHERE jobs.id = ANY(${col((r) => r.attempt.jobId)}::uuid[]) AND jobs.id = input.id AND jobs.attempt = input.attempt
        AND jobs.node_id = input.node_id
        AND jobs.state = ANY(${guardKeys(HAND_BACK)}::text[])
      RETURNING ${changedColumns(db)}, input.ended_at, input.node_id AS handed_back_by
    ), history AS (
      UPDATE job_attempts a SET outcome = CASE WHEN c.state = ${QUEUED} THEN ${HANDED_BACK_OUTCOME} ELSE c.end_reason END, ended_at = c.ended_at
      FROM changed c WHERE a.job_id = c.id AND a.attempt = c.attempt
    )
    SELECT ${changedColumns(db, 'changed')}, changed.handed_back_by FROM changed`;
}
