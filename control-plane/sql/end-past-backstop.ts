// Backstop: active attempts past their backstop (the timeout, or a cancel's
// grace, plus a margin) without a result from their node are ended by the
// control plane itself (backstopTargetOf); the caller has the container killed.
import { ACTIVE_DB_STATES, ACTIVE_STATES, backstopTargetOf, JobState, stateToDb } from '../../common/job-state.js';
import type { Sql } from '../db/connect.js';
import { changedColumns, guardKeys, movesByState, pick, type ChangedJob } from './changed-job.js';

const BACKSTOP = movesByState(ACTIVE_STATES, backstopTargetOf);
const CANCELLED = stateToDb(JobState.JOB_STATE_CANCELLED);

export async function endPastBackstop(sql: Sql, limit: number): Promise<ChangedJob[]> {
  const target = pick(sql, BACKSTOP, sql`state`, 'state');
  return sql<ChangedJob[]>`
    WITH ended AS (
      UPDATE jobs SET version = version + 1, state = ${target},
        end_reason = ${pick(sql, BACKSTOP, sql`state`, 'reason')}, ended_at = now(),
        message = CASE WHEN ${target} = ${CANCELLED}
                       THEN 'cancelled; node ' || node_id || ' did not confirm within the grace, so the control plane ended it'
                       ELSE 'ran past its timeout and node ' || node_id || ' did not stop it; the control plane ended it' END
      WHERE id IN (SELECT id FROM jobs WHERE state = ANY(${ACTIVE_DB_STATES}::text[]) AND backstop_at < now()
                   ORDER BY backstop_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        AND state = ANY(${guardKeys(BACKSTOP)}::text[])
      RETURNING ${changedColumns(sql)}, ended_at
    ), history AS (
      UPDATE job_attempts a SET outcome = e.end_reason, ended_at = e.ended_at
      FROM ended e WHERE a.job_id = e.id AND a.attempt = e.attempt
    )
    SELECT ${changedColumns(sql, 'ended')} FROM ended`;
}
