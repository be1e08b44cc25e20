// Reads of the jobs table, and the writes that are not state changes. Every
// state change is a transition in control-plane/sql/, made by its one owner
// (job-transitions.ts).
import { Job, JobSpec, JobState, type JobAttempt } from '../common/gen/grid/v1/job.js';
import { Task, type AttemptRef } from '../common/gen/grid/v1/agent.js';
import type { FromNode } from '../common/attempt.js';
import { firstIdAt } from '../common/job-id.js';
import { ACTIVE_DB_STATES, reasonFromDb, stateFromDb, stateToDb } from '../common/job-state.js';
import type { Sql } from './db/connect.js';
import type { OpenSecrets } from './secret-box.js';
import { HANDED_BACK_OUTCOME } from './sql/hand-back-attempts.js';
import { withSecrets } from './spec-validation.js';

export interface JobRow {
  id: string;
  state: string;
  end_reason: string | null;
  spec: Buffer;
  task: Buffer;
  version: number;
  cancel_grace_ms: number | null;
  output_cap_bytes: number;
  output_files_error: string | null;
  stdout_bytes: number | null;
  stderr_bytes: number | null;
  stop_grace_ms: number;
  attempt: number;
  max_attempts: number;
  /** Attempts that spent none of the budget: never reached their node, or handed back by a draining one. */
  withdrawn_attempts: number;
  /** Attempts that ended in a retry (spec.retries): not counted against max_attempts either. */
  retries_used: number;
  not_before: Date | null;
  cron_name: string | null;
  cron_tick: Date | null;
  submitter: string;
  node_id: string | null;
  exit_code: number | null;
  message: string;
  submitted_at: Date;
  assigned_at: Date | null;
  started_at: Date | null;
  ended_at: Date | null;
}

const db = (states: readonly JobState[]) => states.map(stateToDb);

export function rowToJob(row: JobRow): Job {
  return {
    id: row.id,
    state: stateFromDb(row.state),
    endReason: reasonFromDb(row.end_reason),
    spec: JobSpec.decode(row.spec),
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    attemptsCounted: row.attempt - row.withdrawn_attempts - row.retries_used,
    retriesUsed: row.retries_used,
    notBefore: row.not_before ?? undefined,
    cronName: row.cron_name ?? '',
    cronTick: row.cron_tick ?? undefined,
    submitter: row.submitter,
    nodeId: row.node_id ?? '',
    exitCode: row.exit_code ?? undefined,
    message: row.message,
    submittedAt: row.submitted_at,
    assignedAt: row.assigned_at ?? undefined,
    startedAt: row.started_at ?? undefined,
    endedAt: row.ended_at ?? undefined,
    output:
      row.stdout_bytes === null || row.stderr_bytes === null
        ? undefined
        : {
            stdoutBytes: BigInt(row.stdout_bytes),
            stderrBytes: BigInt(row.stderr_bytes),
            capBytes: BigInt(row.output_cap_bytes),
            truncated: row.stdout_bytes > row.output_cap_bytes || row.stderr_bytes > row.output_cap_bytes,
          },
    // Listed by getJob (outputFilesOf); not loaded for every row of a list.
    outputFiles: [],
    outputFilesError: row.output_files_error ?? '',
    waitingReason: '',
  };
}

export function rowTask(row: JobRow): Task {
  return Task.decode(row.task);
}

export async function getJob(sql: Sql, id: string): Promise<JobRow | undefined> {
  const [row] = await sql<JobRow[]>`SELECT * FROM jobs WHERE id = ${id}`;
  return row;
}

/** The job's attempt history (job_attempts), oldest first. */
export async function attemptsOf(sql: Sql, id: string): Promise<JobAttempt[]> {
  const rows = await sql<{ attempt: number; node_id: string; assigned_at: Date; started_at: Date | null; ended_at: Date | null; outcome: string | null; exit_code: number | null }[]>`
    SELECT attempt, node_id, assigned_at, started_at, ended_at, outcome, exit_code FROM job_attempts WHERE job_id = ${id} ORDER BY attempt`;
  return rows.map((r) => ({
    attempt: r.attempt,
    nodeId: r.node_id,
    assignedAt: r.assigned_at,
    startedAt: r.started_at ?? undefined,
    endedAt: r.ended_at ?? undefined,
    endReason: r.outcome === HANDED_BACK_OUTCOME ? reasonFromDb(null) : reasonFromDb(r.outcome),
    exitCode: r.exit_code ?? undefined,
    handedBack: r.outcome === HANDED_BACK_OUTCOME,
  }));
}

export async function getJobs(sql: Sql, ids: string[]): Promise<JobRow[]> {
  return ids.length === 0 ? [] : sql<JobRow[]>`SELECT * FROM jobs WHERE id = ANY(${ids}::uuid[])`;
}

/** How many jobs are QUEUED, as the triggers of migration 7 keep it. */
export async function queueDepth(sql: Sql): Promise<number> {
  const [row] = await sql<{ queued: number }[]>`SELECT sum(queued)::int8 AS queued FROM queue_depth`;
  return row!.queued;
}

/** Newest first; `beforeId` is the last id of the previous page (keyset paging). */
export async function listJobs(
  sql: Sql,
  opts: { states: JobState[]; limit: number; beforeId?: string; submittedAfter?: Date; nodeId?: string },
): Promise<JobRow[]> {
  const states = db(opts.states);
  return sql<JobRow[]>`
    SELECT * FROM jobs
    WHERE true
      ${states.length ? sql`AND state = ANY(${states})` : sql``}
      ${opts.beforeId ? sql`AND id < ${opts.beforeId}` : sql``}
      ${opts.submittedAfter ? sql`AND id >= ${firstIdAt(opts.submittedAfter)}` : sql``}
      ${opts.nodeId ? sql`AND node_id = ${opts.nodeId}` : sql``}
    ORDER BY id DESC
    LIMIT ${opts.limit}`;
}

/** An active attempt as a node's reconciliation needs it: no spec or task bytes. */
export interface ActiveAttemptRow {
  id: string;
  attempt: number;
  state: string;
  node_id: string;
  cpus: number;
  memory_bytes: number;
  cancel_grace_ms: number | null;
  stop_grace_ms: number;
}

/** The attempts holding a slot on any of these nodes: what their agents should be running. One statement for all. */
export async function activeAttemptsOnNodes(sql: Sql, nodeIds: string[]): Promise<ActiveAttemptRow[]> {
  if (nodeIds.length === 0) return [];
  return sql<ActiveAttemptRow[]>`
    SELECT id, attempt, state, node_id, cpus, memory_bytes, cancel_grace_ms, stop_grace_ms FROM jobs
    WHERE node_id = ANY(${nodeIds}) AND state = ANY(${ACTIVE_DB_STATES})`;
}

/** The grace a cancel of this job gives: the cancel's own, else the job's stop grace. */
export function cancelGraceOf(row: { cancel_grace_ms: number | null; stop_grace_ms: number }): number {
  return row.cancel_grace_ms ?? row.stop_grace_ms;
}

/** The tasks of these attempts while still assigned to `nodeId`, to send them again (secrets unsealed). */
export async function assignedTasks(sql: Sql, nodeId: string, keys: AttemptRef[], open: OpenSecrets): Promise<{ key: AttemptRef; task: Task }[]> {
  if (keys.length === 0) return [];
  const rows = await sql<{ id: string; attempt: number; task: Buffer; secret_env: Buffer | null }[]>`
    SELECT id, attempt, task, secret_env FROM jobs
    WHERE node_id = ${nodeId} AND state = ${stateToDb(JobState.JOB_STATE_ASSIGNED)}
      AND (id, attempt) IN (SELECT * FROM unnest(${keys.map((k) => k.jobId)}::uuid[], ${keys.map((k) => k.attempt)}::int[]))`;
  // A task whose secrets cannot be unsealed here is not sent again (its claim failed it, see failUnsealable).
  return rows.flatMap((r) => {
    try {
      return [{ key: { jobId: r.id, attempt: r.attempt }, task: withSecrets(Task.decode(r.task), open(r.id, r.secret_env)) }];
    } catch {
      return [];
    }
  });
}

/** Whether the attempt is its job's current, active one, on the reporting node: the fence for node reports. */
export async function isCurrentAttempt(sql: Sql, key: FromNode<AttemptRef>): Promise<boolean> {
  const rows = await sql`
    SELECT 1 FROM jobs WHERE id = ${key.jobId} AND attempt = ${key.attempt} AND node_id = ${key.nodeId} AND state = ANY(${ACTIVE_DB_STATES})`;
  return rows.length > 0;
}

export async function recordOutputFiles(
  sql: Sql,
  key: AttemptRef,
  result: { files: { path: string; size: number }[] } | { error: string },
): Promise<void> {
  if ('error' in result) {
    await sql`UPDATE jobs SET output_files_error = ${result.error} WHERE id = ${key.jobId} AND attempt = ${key.attempt}`;
    return;
  }
  if (result.files.length === 0) return;
  await sql`
    INSERT INTO job_output_files (job_id, attempt, path, size)
    SELECT ${key.jobId}, ${key.attempt}, f.path, f.size
    FROM unnest(${result.files.map((f) => f.path)}::text[], ${result.files.map((f) => f.size)}::int8[]) AS f(path, size)
    ON CONFLICT DO NOTHING`;
}

export async function outputFilesOf(sql: Sql, key: AttemptRef): Promise<{ path: string; size: bigint }[]> {
  const rows = await sql<{ path: string; size: number }[]>`
    SELECT path, size FROM job_output_files WHERE job_id = ${key.jobId} AND attempt = ${key.attempt} ORDER BY path`;
  return rows.map((r) => ({ path: r.path, size: BigInt(r.size) }));
}
