// Finish: nodes report that attempts ended. The one compare-and-set that makes
// a job terminal, for many reports in one statement. How a job ends depends on
// the state it is in when the statement reaches its row (a committed cancel
// decides, see endReasonFor), so every (state, reported reason) pair gets its
// own end from the state machine; a pair with no allowed end is not in the guard.
import { EndReason } from '../../common/gen/grid/v1/job.js';
import type { AttemptRef, FromNode } from '../../common/attempt.js';
import { ACTIVE_STATES, canTransition, endReasonFor, reasonToDb, stateToDb, terminalStateFor } from '../../common/job-state.js';
import type { Sql, TransactionSql } from '../db/connect.js';
import { changedColumns, guardKeys, pick, type MoveTable, type ChangedJob } from './changed-job.js';

export interface FinishReport {
  attempt: AttemptRef;
  reason: EndReason;
  exitCode?: number;
  message: string;
  /** The runtime's own start time: the same clock as endedAt. */
  startedAt?: Date;
  endedAt: Date;
  output?: { stdoutBytes: number; stderrBytes: number };
}

const REPORTABLE = Object.values(EndReason).filter(
  (r): r is EndReason => typeof r === 'number' && r !== EndReason.END_REASON_UNSPECIFIED && r !== EndReason.UNRECOGNIZED,
);

/** Keyed by "<state>/<reported reason>". */
const FINISH: MoveTable = ACTIVE_STATES.flatMap((from) =>
  REPORTABLE.flatMap((reported) => {
    const reason = endReasonFor(from, reported);
    const state = terminalStateFor(reason);
    return canTransition(from, state) ? [{ key: `${stateToDb(from)}/${reasonToDb(reported)}`, move: { state, reason } }] : [];
  }),
);

/** Ends the reported attempts that are their job's current, active one on the reporting node; returns the rows it changed. */
export async function finishAttempts(sql: Sql | TransactionSql, reports: FromNode<FinishReport>[]): Promise<ChangedJob[]> {
  if (reports.length === 0) return [];
  const col = <T>(f: (r: FromNode<FinishReport>) => T) => reports.map(f);
  const db = sql as Sql;
  const key = db`jobs.state || '/' || input.reported`;
  const reason = pick(db, FINISH, key, 'reason');
  return db<ChangedJob[]>`
    WITH input AS (
      SELECT DISTINCT ON (id, attempt, node_id) * FROM unnest(
        ${col((r) => r.attempt.jobId)}::uuid[], ${col((r) => r.attempt.attempt)}::int[],
        ${col((r) => reasonToDb(r.reason))}::text[], ${col((r) => r.exitCode ?? null)}::int[],
        ${col((r) => r.message)}::text[], ${col((r) => overruled(r))}::text[],
        ${col((r) => r.startedAt?.toISOString() ?? null)}::timestamptz[], ${col((r) => r.endedAt.toISOString())}::timestamptz[],
        ${col((r) => r.output?.stdoutBytes ?? null)}::int8[], ${col((r) => r.output?.stderrBytes ?? null)}::int8[],
        ${col((r) => r.nodeId)}::text[]
      ) WITH ORDINALITY AS r(id, attempt, reported, exit_code, message, overruled_message, started_at, ended_at, stdout_bytes, stderr_bytes, node_id, ord)
      -- The first report of an attempt from one node wins; a second in the same call is its
      -- duplicate. Per node: another node's report (refused below) must not shadow the real one.
      ORDER BY id, attempt, node_id, ord
    ), finished AS (
      UPDATE jobs SET version = jobs.version + 1, state = ${pick(db, FINISH, key, 'state')}, end_reason = ${reason},
        exit_code = input.exit_code,
        -- A reason the job's state overruled (a cancel) keeps what the process did visible.
        message = CASE WHEN ${reason} = input.reported THEN input.message ELSE lower(${reason}) || input.overruled_message END,
        stdout_bytes = input.stdout_bytes, stderr_bytes = input.stderr_bytes,
        started_at = coalesce(input.started_at, jobs.started_at), ended_at = input.ended_at
      FROM input
      -- Only an active attempt can be ended, and only by the node it is assigned to: a requeued job keeps its
      -- attempt number until claimed again, and must not be ended by the lost one.
      -- The ids again, as an index condition (see claim-jobs.ts).
      WHERE jobs.id = ANY(${col((r) => r.attempt.jobId)}::uuid[]) AND jobs.id = input.id AND jobs.attempt = input.attempt
        AND jobs.node_id = input.node_id
        AND ${key} = ANY(${guardKeys(FINISH)}::text[])
      RETURNING ${changedColumns(db)}, jobs.started_at, jobs.ended_at
    ), history AS (
      UPDATE job_attempts a SET outcome = f.end_reason, exit_code = f.exit_code, started_at = f.started_at, ended_at = f.ended_at
      FROM finished f WHERE a.job_id = f.id AND a.attempt = f.attempt
    )
    SELECT ${changedColumns(db, 'finished')} FROM finished`;
}

/** The tail of the message of an end whose reason the job's state overruled: what the process did. */
function overruled(r: FinishReport): string {
  const what = r.exitCode !== undefined ? `the process exited with code ${r.exitCode}` : r.message;
  return what ? `; ${what}` : '';
}
