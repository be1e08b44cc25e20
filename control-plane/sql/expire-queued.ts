// Expire: queued jobs past their queue timeout end QUEUE_TIMEOUT (expireTargetOf).
import { expireTargetOf, JobState } from '../../common/job-state.js';
import type { Sql } from '../db/connect.js';
import { changedColumns, guardKeys, movesByState, pick, type ChangedJob } from './changed-job.js';

const EXPIRE = movesByState([JobState.JOB_STATE_QUEUED], expireTargetOf);

export async function expireQueued(sql: Sql, limit: number): Promise<ChangedJob[]> {
  return sql<ChangedJob[]>`
    UPDATE jobs SET version = version + 1, state = ${pick(sql, EXPIRE, sql`state`, 'state')},
                    end_reason = ${pick(sql, EXPIRE, sql`state`, 'reason')}, ended_at = now(),
                    message = 'waited in the queue longer than its queue timeout'
    WHERE id IN (SELECT id FROM jobs WHERE state = ANY(${guardKeys(EXPIRE)}::text[]) AND queue_deadline < now()
                 ORDER BY queue_deadline LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      AND state = ANY(${guardKeys(EXPIRE)}::text[])
    RETURNING ${changedColumns(sql)}`;
}
