// Cancel: each job moves by the state it is in when the cancel commits
// (cancelTargetOf): a queued one ends CANCELLED at once, one on a node becomes
// CANCELLING with its grace and backstop, and its node is sent the stop.
import { ALL_STATES, cancelTargetOf, EndReason, JobState, stateToDb } from '../../common/job-state.js';
import type { Sql } from '../db/connect.js';
import { changedColumns, guardKeys, movesByState, pick } from './changed-job.js';
import type { ChangedJob } from './changed-job.js';

const CANCEL = movesByState(ALL_STATES, (from) => {
  const to = cancelTargetOf(from);
  return to === undefined ? undefined : { state: to, reason: to === JobState.JOB_STATE_CANCELLED ? EndReason.END_REASON_CANCELLED : undefined };
});
const CANCELLED = stateToDb(JobState.JOB_STATE_CANCELLED);
const CANCELLING = stateToDb(JobState.JOB_STATE_CANCELLING);

/** Cancels the jobs there is something to cancel of; returns the rows it changed. */
export async function cancelJobs(sql: Sql, ids: string[], graceMs: number, backstopMarginMs: number): Promise<ChangedJob[]> {
  if (ids.length === 0) return [];
  // Every SET sees the row before this statement changes it: the newest committed
  // version, re-read if a concurrent commit (a requeue) changed it while this one
  // waited for its lock. The target is looked up from that row's state.
  const target = pick(sql, CANCEL, sql`state`, 'state');
  return sql<ChangedJob[]>`
    UPDATE jobs SET
      version = version + 1,
      state = ${target},
      end_reason = ${pick(sql, CANCEL, sql`state`, 'reason')},
      ended_at = CASE WHEN ${target} = ${CANCELLED} THEN now() END,
      message = CASE WHEN ${target} = ${CANCELLED} THEN 'cancelled before it started' ELSE message END,
      cancel_grace_ms = CASE WHEN ${target} = ${CANCELLING} THEN ${graceMs}::int ELSE cancel_grace_ms END,
      backstop_at = CASE WHEN ${target} = ${CANCELLING}
                         THEN now() + (${graceMs}::int8 + ${backstopMarginMs}::int8) * interval '1 millisecond'
                         ELSE backstop_at END
    WHERE id = ANY(${ids}::uuid[]) AND state = ANY(${guardKeys(CANCEL)}::text[])
    RETURNING ${changedColumns(sql)}`;
}

