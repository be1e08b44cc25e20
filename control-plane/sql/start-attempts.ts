// Start: nodes report that attempts' containers started. Many reports in one
// statement, each fenced by its attempt; the move comes from startTargetOf.
import { ACTIVE_STATES, startTargetOf } from '../../common/job-state.js';
import type { AttemptRef, FromNode } from '../../common/attempt.js';
import type { Sql, TransactionSql } from '../db/connect.js';
import { changedColumns, guardKeys, movesByState, pick, type ChangedJob } from './changed-job.js';

const START = movesByState(ACTIVE_STATES, startTargetOf);

export interface StartReport {
  attempt: AttemptRef;
  startedAt: Date;
}

/**
 * Records the starts of the reported attempts that are their job's current,
 * active one on the reporting node, and returns the rows it changed. The run timeout's backstop is
 * set as the job starts running: the agent stops the job at its timeout; this
 * is only for an agent that does not.
 */
export async function startAttempts(sql: Sql | TransactionSql, reports: FromNode<StartReport>[], backstopMarginMs: number): Promise<(ChangedJob & { assigned_ms: number | null })[]> {
  if (reports.length === 0) return [];
  const running = sql`${pick(sql as Sql, START, sql`jobs.state`, 'state')}`;
  return sql<(ChangedJob & { assigned_ms: number | null })[]>`
    WITH input AS (
      SELECT DISTINCT ON (id, attempt, node_id) * FROM unnest(
        ${reports.map((r) => r.attempt.jobId)}::uuid[], ${reports.map((r) => r.attempt.attempt)}::int[],
        ${reports.map((r) => r.startedAt.toISOString())}::timestamptz[], ${reports.map((r) => r.nodeId)}::text[])
        WITH ORDINALITY AS r(id, attempt, started_at, node_id, ord)
      -- The first report of an attempt from one node wins; a second in the same call is its
      -- duplicate. Per node: another node's report (refused below) must not shadow the real one.
      ORDER BY id, attempt, node_id, ord
    ), started AS (
      UPDATE jobs SET version = jobs.version + 1, started_at = coalesce(jobs.started_at, input.started_at),
        backstop_at = CASE WHEN ${running} <> jobs.state AND jobs.timeout_ms > 0
                           THEN now() + (jobs.timeout_ms + jobs.stop_grace_ms + ${backstopMarginMs}) * interval '1 millisecond'
                           ELSE jobs.backstop_at END,
        state = ${running}
      FROM input
      -- The ids again, as the only index condition (see claim-jobs.ts).
      WHERE jobs.id = ANY(${reports.map((r) => r.attempt.jobId)}::uuid[]) AND jobs.id = input.id AND jobs.attempt = input.attempt
        AND jobs.node_id = input.node_id
        AND array_position(${guardKeys(START)}::text[], jobs.state) IS NOT NULL
      RETURNING ${changedColumns(sql as Sql)}, jobs.started_at,
        -- For the assigned → started histogram: both ends on this database's clock.
        (extract(epoch FROM now() - jobs.assigned_at) * 1000)::float8 AS assigned_ms
    ), history AS (
      UPDATE job_attempts a SET started_at = coalesce(a.started_at, s.started_at)
      FROM started s WHERE a.job_id = s.id AND a.attempt = s.attempt
    )
    SELECT * FROM started`;
}
