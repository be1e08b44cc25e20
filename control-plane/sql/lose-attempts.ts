// Lose: attempts whose node was lost or no longer has them (lostTargetOf): a
// cancelling job ends CANCELLED, one with attempts left goes back to the queue,
// the rest end NODE_LOST. Withdraw: assignments that were committed but never
// sent (withdrawTargetOf): nothing ran, so an assigned job is queued again with
// no attempt of its budget spent (its number stays used: it is a fencing
// token), a cancelling one ends CANCELLED, and one that started is left alone.
// One statement for many attempts.
import type { AttemptRef } from '../../common/attempt.js';
import { ACTIVE_DB_STATES, ACTIVE_STATES, EndReason, JobState, lostTargetOf, reasonToDb, stateToDb, withdrawTargetOf } from '../../common/job-state.js';
import type { Sql, TransactionSql } from '../db/connect.js';
import { requeuedDeadline } from './queue-deadline.js';
import { changedColumns, guardKeys, movesByState, pick, type ChangedJob, type Fragment, type MoveTable } from './changed-job.js';

/** Keyed by "<state>/<whether attempts are left>". */
const LOSE: MoveTable = ACTIVE_STATES.flatMap((from) =>
  [true, false].flatMap((left) => {
    const move = lostTargetOf(from, left);
    return move ? [{ key: `${stateToDb(from)}/${left}`, move }] : [];
  }),
);
/** Keyed by state alone: a withdrawn assignment spent no attempt, so its budget does not matter. */
const WITHDRAW: MoveTable = movesByState(ACTIVE_STATES, withdrawTargetOf);
const QUEUED = stateToDb(JobState.JOB_STATE_QUEUED);
const CANCELLED = stateToDb(JobState.JOB_STATE_CANCELLED);
// The attempt's own outcome in its history, whatever became of the job.
const LOST_OUTCOME = reasonToDb(EndReason.END_REASON_NODE_LOST);

export type LostSelection =
  /** Every active attempt on the node (a lost node). */
  | { nodeId: string }
  /** These attempts, each only while still on its node. */
  | { attempts: (AttemptRef & { nodeId: string })[] };

/**
 * Returns the rows it changed; a requeued row no longer names its node (the
 * caller's selection does).
 */
export async function loseAttempts(sql: Sql | TransactionSql, which: LostSelection): Promise<ChangedJob[]> {
  const db = sql as Sql;
  if ('attempts' in which && which.attempts.length === 0) return [];
  const selection = 'nodeId' in which ? db`jobs.node_id = ${which.nodeId}` : theseAttempts(db, which.attempts);
  return db<ChangedJob[]>`
    WITH ${lost(db, selection, true)}
    SELECT * FROM changed`;
}

/**
 * Assignments committed to a node but never sent to it (its stream ended, or
 * was replaced, while the claim was in flight): queued again without spending
 * an attempt, their history row removed, as nothing ran. Only the caller can
 * know that nothing was sent.
 */
export async function withdrawAttempts(sql: Sql, attempts: (AttemptRef & { nodeId: string })[]): Promise<ChangedJob[]> {
  if (attempts.length === 0) return [];
  return sql<ChangedJob[]>`
    WITH ${lost(sql, theseAttempts(sql, attempts), false)}
    SELECT * FROM changed`;
}

function theseAttempts(db: Sql, attempts: (AttemptRef & { nodeId: string })[]): Fragment {
  return db`(jobs.id, jobs.attempt, jobs.node_id) IN (SELECT * FROM unnest(
             ${attempts.map((a) => a.jobId)}::uuid[], ${attempts.map((a) => a.attempt)}::int[],
             ${attempts.map((a) => a.nodeId)}::text[]))`;
}

/**
 * The verdict on a lost node, atomic and fenced, in one statement: only the
 * connection that was judged (its generation) is marked LOST, and its attempts
 * are lost with it; the node's row stays locked until the statement commits,
 * so a reconnect waits for the verdict. Undefined when the node has moved on to
 * a newer connection.
 */
export async function loseNode(sql: Sql, nodeId: string, generation: number): Promise<ChangedJob[] | undefined> {
  const rows = await sql<(ChangedJob & { judged: boolean })[]>`
    WITH verdict AS (
      UPDATE nodes SET state = 'LOST' WHERE id = ${nodeId} AND generation = ${generation} RETURNING id
    ), ${lost(sql, sql`jobs.node_id = ${nodeId} AND EXISTS (SELECT 1 FROM verdict)`, true)}
    SELECT true AS judged, changed.* FROM changed
    UNION ALL
    SELECT false, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM verdict WHERE NOT EXISTS (SELECT 1 FROM changed)`;
  if (rows.length === 0) return undefined;
  return rows.filter((r) => r.judged).map(({ judged: _, ...row }) => row);
}

/**
 * The CTEs `changed` (the lost rows) and `history`, for the attempts `selection`
 * picks; `spent` says whether the attempts ran (lost) or never reached the node
 * (withdrawn: not counted against max_attempts, and gone from the history).
 * Attempts that ended in a retry (spec.retries) are not counted either: lost
 * nodes and failures have budgets of their own.
 */
function lost(db: Sql, selection: Fragment, spent: boolean): Fragment {
  const key = spent ? db`jobs.state || '/' || (jobs.attempt - jobs.withdrawn_attempts - jobs.retries_used < jobs.max_attempts)::text` : db`jobs.state`;
  const moves = spent ? LOSE : WITHDRAW;
  const target = pick(db, moves, key, 'state');
  // Withdrawn only while it never started: a start report (of an assignment a
  // replacing stream was sent after all) says its node had it.
  const unstarted = spent ? db`true` : db`jobs.started_at IS NULL`;
  const history = spent
    ? db`UPDATE job_attempts a SET outcome = ${LOST_OUTCOME}, ended_at = now()
      FROM changed c WHERE a.job_id = c.id AND a.attempt = c.attempt`
    : db`DELETE FROM job_attempts a USING changed c WHERE a.job_id = c.id AND a.attempt = c.attempt`;
  const lostHow = spent ? db`' was lost during attempt '` : db`' never received attempt '`;
  return db`changed AS (
      UPDATE jobs SET
        version = jobs.version + 1,
        withdrawn_attempts = jobs.withdrawn_attempts + ${spent ? 0 : 1},
        state = ${target},
        end_reason = ${pick(db, moves, key, 'reason')},
        ended_at = CASE WHEN ${target} = ${QUEUED} THEN NULL ELSE now() END,
        node_id = CASE WHEN ${target} = ${QUEUED} THEN NULL ELSE jobs.node_id END,
        backstop_at = NULL,
        -- A requeued job gets its whole queue timeout again.
        queue_deadline = ${requeuedDeadline(db, db`now()`)},
        message = CASE WHEN ${target} = ${CANCELLED} THEN ${spent ? 'cancelled; its node was lost before confirming' : 'cancelled before its node received it'}
                       WHEN ${target} = ${QUEUED} THEN 'node ' || jobs.node_id || ${lostHow} || jobs.attempt || '; queued again'
                       ELSE 'node ' || jobs.node_id || ${lostHow} || jobs.attempt || ', the last one allowed' END
      WHERE ${selection} AND jobs.state = ANY(${ACTIVE_DB_STATES}::text[]) AND ${key} = ANY(${guardKeys(moves)}::text[]) AND ${unstarted}
      RETURNING ${changedColumns(db)}
    ), history AS (
      ${history}
    )`;
}
