// Finish: nodes report that attempts ended. The one compare-and-set that makes
// a job terminal, for many reports in one statement. How a job ends depends on
// the state it is in when the statement reaches its row (a committed cancel
// decides, see endReasonFor), so every (state, reported reason) pair gets its
// own end from the state machine; a pair with no allowed end is not in the guard.
// A job with retries left (spec.retries) whose attempt failed is queued again
// instead (finishTargetOf), not before its back-off (common/retry-policy.ts).
import { EndReason } from '../../common/gen/grid/v1/job.js';
import type { AttemptRef, FromNode } from '../../common/attempt.js';
import { ACTIVE_STATES, finishTargetOf, JobState, reasonToDb, stateToDb } from '../../common/job-state.js';
import { MAX_RETRY_DELAY_MS } from '../../common/retry-policy.js';
import type { Sql, TransactionSql } from '../db/connect.js';
import { requeuedDeadline } from './queue-deadline.js';
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

/** Keyed by "<state>/<reported reason>/<whether retries are left>". */
const FINISH: MoveTable = ACTIVE_STATES.flatMap((from) =>
  REPORTABLE.flatMap((reported) =>
    [true, false].flatMap((left) => {
      const move = finishTargetOf(from, reported, left);
      return move ? [{ key: `${stateToDb(from)}/${reasonToDb(reported)}/${left}`, move }] : [];
    }),
  ),
);
const QUEUED = stateToDb(JobState.JOB_STATE_QUEUED);
const RETRY_KEYS = FINISH.filter((m) => stateToDb(m.move.state) === QUEUED).map((m) => m.key);

/** A row finishAttempts changed: ended, or queued for a retry (which names no node: finished_by does). */
export type FinishedJob = ChangedJob & { finished_by: string };

/** Ends the reported attempts that are their job's current, active one on the reporting node; returns the rows it changed. */
export async function finishAttempts(sql: Sql | TransactionSql, reports: FromNode<FinishReport>[]): Promise<FinishedJob[]> {
  if (reports.length === 0) return [];
  const col = <T>(f: (r: FromNode<FinishReport>) => T) => reports.map(f);
  const db = sql as Sql;
  const key = db`jobs.state || '/' || input.reported || '/' || (jobs.retries_used < jobs.retries)::text`;
  const reason = pick(db, FINISH, key, 'reason');
  const state = pick(db, FINISH, key, 'state');
  // The rows whose move is a retry. Tested column by column below: the cheap test of the
  // budget first, so that a job without retries (most) never looks its key up again.
  const retry = db`(jobs.retries_used < jobs.retries AND ${key} = ANY(${RETRY_KEYS}::text[]))`;
  // When a retried job may start again: its back-off from now (the database's clock, not
  // the node's), drawn between the bounds of retryDelayBounds with the report's one jitter
  // (input.jitter: each column that uses this must get the same time). 2^n as float cannot
  // overflow before the cap applies.
  const due = db`(now() + least(jobs.retry_backoff_ms * power(2::float8, jobs.retries_used), ${MAX_RETRY_DELAY_MS}::float8)
                          * (0.5 + input.jitter / 2) * interval '1 millisecond')`;
  return db<FinishedJob[]>`
    WITH input AS (
      -- random() makes this CTE volatile, so it is evaluated once, not inlined into each use.
      SELECT DISTINCT ON (id, attempt, node_id) *, random() AS jitter FROM unnest(
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
      UPDATE jobs SET version = jobs.version + 1, state = ${state}, end_reason = ${reason},
        exit_code = input.exit_code,
        -- A reason the job's state overruled (a cancel) keeps what the process did visible.
        message = CASE WHEN ${retry} THEN 'attempt ' || jobs.attempt || ' ended ' || input.reported
                                          || coalesce(' (exit code ' || input.exit_code || ')', '') || '; retry '
                                          || (jobs.retries_used + 1) || ' of ' || jobs.retries || ' after its back-off'
                       WHEN ${reason} = input.reported THEN input.message ELSE lower(${reason}) || input.overruled_message END,
        -- A retry's output summary is its next attempt's, not yet known (the failed one's logs stay).
        stdout_bytes = CASE WHEN ${retry} THEN NULL ELSE input.stdout_bytes END, stderr_bytes = CASE WHEN ${retry} THEN NULL ELSE input.stderr_bytes END,
        started_at = CASE WHEN ${retry} THEN NULL ELSE coalesce(input.started_at, jobs.started_at) END,
        ended_at = CASE WHEN ${retry} THEN NULL ELSE input.ended_at END,
        -- A retry: queued again, with no node, behind its back-off, in the queue by when it
        -- is due (less its priority's worth, as at submit: common/queue-order.ts), with its
        -- whole queue timeout from then.
        retries_used = jobs.retries_used + CASE WHEN ${retry} THEN 1 ELSE 0 END,
        node_id = CASE WHEN ${retry} THEN NULL ELSE jobs.node_id END,
        backstop_at = CASE WHEN ${retry} THEN NULL ELSE jobs.backstop_at END,
        not_before = CASE WHEN ${retry} THEN ${due} ELSE jobs.not_before END,
        queue_key = CASE WHEN ${retry} THEN ${due} - (coalesce(jobs.not_before, jobs.submitted_at) - jobs.queue_key) ELSE jobs.queue_key END,
        queue_deadline = CASE WHEN ${retry} THEN ${requeuedDeadline(db, due)} ELSE jobs.queue_deadline END
      FROM input
      -- Only an active attempt can be ended, and only by the node it is assigned to: a requeued job keeps its
      -- attempt number until claimed again, and must not be ended by the lost one.
      -- The ids again, as an index condition (see claim-jobs.ts).
      WHERE jobs.id = ANY(${col((r) => r.attempt.jobId)}::uuid[]) AND jobs.id = input.id AND jobs.attempt = input.attempt
        AND jobs.node_id = input.node_id
        AND ${key} = ANY(${guardKeys(FINISH)}::text[])
      RETURNING ${changedColumns(db)}, input.node_id AS finished_by, input.reported, input.exit_code AS attempt_exit_code,
        coalesce(input.started_at, jobs.started_at) AS attempt_started_at, input.ended_at AS attempt_ended_at
    ), history AS (
      -- The attempt's own end, also when its job is queued for a retry.
      UPDATE job_attempts a SET outcome = coalesce(f.end_reason, f.reported), exit_code = f.attempt_exit_code,
        started_at = coalesce(f.attempt_started_at, a.started_at), ended_at = f.attempt_ended_at
      FROM finished f WHERE a.job_id = f.id AND a.attempt = f.attempt
    )
    SELECT ${changedColumns(db, 'finished')}, finished.finished_by FROM finished`;
}

/** The tail of the message of an end whose reason the job's state overruled: what the process did. */
function overruled(r: FinishReport): string {
  const what = r.exitCode !== undefined ? `the process exited with code ${r.exitCode}` : r.message;
  return what ? `; ${what}` : '';
}
