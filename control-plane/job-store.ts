// Every read and write of the jobs table. Each state change is a compare-and-set
// whose guard comes from the state machine (common/job-state.ts), and each report from an
// agent is fenced by its attempt number, so however messages race a job reaches
// exactly one terminal state.
import { Job, JobSpec, JobState } from '../common/gen/grid/v1/job.js';
import { Task, type AttemptRef } from '../common/gen/grid/v1/agent.js';
import {
  ACTIVE_DB_STATES,
  ACTIVE_STATES,
  ALL_STATES,
  cancelTargetOf,
  canTransition,
  EndReason,
  endReasonFor,
  reasonFromDb,
  reasonToDb,
  stateFromDb,
  stateToDb,
  terminalStateFor,
} from '../common/job-state.js';
import { durationToMs } from '../common/units.js';
import type { Sql, TransactionSql } from './db/connect.js';

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
  node_id: string | null;
  exit_code: number | null;
  message: string;
  submitted_at: Date;
  assigned_at: Date | null;
  started_at: Date | null;
  ended_at: Date | null;
}

/** An attempt's identity: the fencing token of every report. */
export type AttemptKey = AttemptRef;

const db = (states: readonly JobState[]) => states.map(stateToDb);

export function rowToJob(row: JobRow): Job {
  return {
    id: row.id,
    state: stateFromDb(row.state),
    endReason: reasonFromDb(row.end_reason),
    spec: JobSpec.decode(row.spec),
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
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
  };
}

export function rowTask(row: JobRow): Task {
  return Task.decode(row.task);
}

/**
 * Stores a validated job as QUEUED, unless the queue already holds `maxQueued`
 * jobs (then `full`). With a request id already seen, returns the job that id
 * created instead (a retried submit is not a second job).
 */
export async function insertJob(
  sql: Sql,
  job: { id: string; spec: JobSpec; task: Task; requestId: string },
  maxQueued: number,
): Promise<{ row: JobRow; created: boolean } | { full: true }> {
  const [row] = await sql<JobRow[]>`
    INSERT INTO jobs (id, state, spec, task, image, cpus, memory_bytes, request_id, max_attempts,
                      queue_deadline, timeout_ms, stop_grace_ms, output_cap_bytes)
    SELECT ${job.id}, 'QUEUED', ${Buffer.from(JobSpec.encode(job.spec).finish())},
           ${Buffer.from(Task.encode(job.task).finish())}, ${job.task.image}, ${job.task.cpus},
           ${Number(job.task.memoryBytes)}, ${job.requestId || null}, ${job.spec.maxAttempts},
           now() + ${durationToMs(job.spec.queueTimeout)} * interval '1 millisecond',
           ${durationToMs(job.task.timeout)}, ${durationToMs(job.task.stopGrace)}, ${Number(job.task.outputCapBytes)}
    WHERE (SELECT sum(queued) FROM queue_depth) < ${maxQueued}
    ON CONFLICT (request_id) DO NOTHING
    RETURNING *`;
  if (row) return { row, created: true };
  const [existing] = job.requestId ? await sql<JobRow[]>`SELECT * FROM jobs WHERE request_id = ${job.requestId}` : [];
  return existing ? { row: existing, created: false } : { full: true };
}

export async function getJob(sql: Sql, id: string): Promise<JobRow | undefined> {
  const [row] = await sql<JobRow[]>`SELECT * FROM jobs WHERE id = ${id}`;
  return row;
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
  opts: { states: JobState[]; limit: number; beforeId?: string },
): Promise<JobRow[]> {
  const states = db(opts.states);
  return sql<JobRow[]>`
    SELECT * FROM jobs
    WHERE true
      ${states.length ? sql`AND state = ANY(${states})` : sql``}
      ${opts.beforeId ? sql`AND id < ${opts.beforeId}` : sql``}
    ORDER BY id DESC
    LIMIT ${opts.limit}`;
}

/**
 * Claims queued jobs for one node, oldest first, as many as fit its free slots,
 * CPUs and memory (a running sum, so the claim never overcommits the node).
 * A job larger than the whole node (`size`, by default what is free) is passed
 * over: it would hold back every job behind it for good. One that fits the node
 * but not what is free now waits its turn, and so do the jobs behind it, so it
 * is not starved by a stream of small ones. SKIP LOCKED lets any number of
 * control planes claim at once without blocking.
 */
export async function claimJobs(
  sql: Sql,
  node: { nodeId: string; slots: number; cpus: number; memoryBytes: number; size?: { cpus: number; memoryBytes: number } },
): Promise<JobRow[]> {
  if (node.slots <= 0) return [];
  const size = node.size ?? node;
  return sql<JobRow[]>`
    WITH candidates AS (
      SELECT id, cpus, memory_bytes FROM jobs
      WHERE state = 'QUEUED' AND cpus <= ${size.cpus} + 1e-9 AND memory_bytes <= ${size.memoryBytes}
      ORDER BY id
      LIMIT ${node.slots}
      FOR UPDATE SKIP LOCKED
    ), fitting AS (
      SELECT id FROM (
        SELECT id,
               sum(cpus) OVER (ORDER BY id) AS cpus_needed,
               sum(memory_bytes) OVER (ORDER BY id) AS memory_needed
        FROM candidates
      ) running_sums
      WHERE cpus_needed <= ${node.cpus} + 1e-9 AND memory_needed <= ${node.memoryBytes}
    ), claimed AS (
      UPDATE jobs SET version = version + 1, state = 'ASSIGNED', attempt = attempt + 1, node_id = ${node.nodeId},
                      assigned_at = now(), started_at = NULL, exit_code = NULL, backstop_at = NULL
      WHERE id IN (SELECT id FROM fitting) AND state = 'QUEUED'
      RETURNING *
    ), history AS (
      INSERT INTO job_attempts (job_id, attempt, node_id, assigned_at)
      SELECT id, attempt, node_id, assigned_at FROM claimed
    )
    SELECT * FROM claimed`;
}

export type ReportOutcome =
  | { kind: 'applied'; row: JobRow }
  | { kind: 'duplicate'; row: JobRow }
  | { kind: 'stale'; row: JobRow | undefined };

/** The agent started the attempt's container. Accepted only for the current attempt. */
export async function markStarted(sql: Sql, key: AttemptKey, startedAt: Date, backstopMarginMs: number): Promise<ReportOutcome> {
  const [row] = await sql<JobRow[]>`
    WITH started AS (
    UPDATE jobs
    SET version = version + 1, started_at = coalesce(started_at, ${startedAt}),
        state = CASE WHEN state = 'ASSIGNED' THEN 'RUNNING' ELSE state END,
        -- The agent stops the job at its timeout; this is only the backstop for an agent that does not.
        backstop_at = CASE WHEN state = 'ASSIGNED' AND timeout_ms > 0
                           THEN now() + (timeout_ms + stop_grace_ms + ${backstopMarginMs}) * interval '1 millisecond'
                           ELSE backstop_at END
    WHERE id = ${key.jobId} AND attempt = ${key.attempt} AND state = ANY(${ACTIVE_DB_STATES})
    RETURNING *
    ), history AS (
      UPDATE job_attempts a SET started_at = coalesce(a.started_at, ${startedAt})
      FROM started s WHERE a.job_id = s.id AND a.attempt = s.attempt
    )
    SELECT * FROM started`;
  if (row) return { kind: 'applied', row };
  return classifyRefusal(sql, key);
}

/**
 * The attempt ended on the node: the one compare-and-set that makes the job
 * terminal. How it ends depends on the state it is in (a committed cancel
 * decides, see endReasonFor), so each active state gets its own end, from the
 * state machine; a state with no allowed end is not in the guard.
 */
export async function finishAttempt(
  sql: Sql,
  key: AttemptKey,
  result: {
    reason: EndReason;
    exitCode?: number;
    message: string;
    startedAt?: Date;
    endedAt: Date;
    output?: { stdoutBytes: number; stderrBytes: number };
  },
): Promise<ReportOutcome> {
  const ends = ACTIVE_STATES.map((from) => {
    const reason = endReasonFor(from, result.reason);
    return { from, reason, state: terminalStateFor(reason), message: reason === result.reason ? result.message : overruled(reason, result) };
  }).filter((e) => canTransition(e.from, e.state));
  // Looked up by position from the row's state, not joined: a row changed by a
  // concurrent commit (a cancel) is re-checked as it is then, and ends by its new state.
  const from = ends.map((e) => stateToDb(e.from));
  const pick = (values: string[]) => sql`(${values}::text[])[array_position(${from}::text[], state)]`;
  const [row] = await sql<JobRow[]>`
    WITH finished AS (
    UPDATE jobs
    SET version = version + 1, state = ${pick(ends.map((e) => stateToDb(e.state)))},
        end_reason = ${pick(ends.map((e) => reasonToDb(e.reason)))},
        exit_code = ${result.exitCode ?? null}, message = ${pick(ends.map((e) => e.message))},
        stdout_bytes = ${result.output?.stdoutBytes ?? null}, stderr_bytes = ${result.output?.stderrBytes ?? null},
        -- The final report carries the runtime's own start time: the same clock as ended_at.
        started_at = coalesce(${result.startedAt ?? null}, started_at), ended_at = ${result.endedAt}
    -- Only an active attempt can be ended by its node: a requeued job keeps its
    -- attempt number until claimed again, and must not be ended by the lost one.
    WHERE id = ${key.jobId} AND attempt = ${key.attempt} AND state = ANY(${from}::text[])
    RETURNING *
    ), history AS (
      UPDATE job_attempts a SET outcome = f.end_reason, exit_code = f.exit_code, started_at = f.started_at, ended_at = f.ended_at
      FROM finished f WHERE a.job_id = f.id AND a.attempt = f.attempt
    )
    SELECT * FROM finished`;
  if (row) return { kind: 'applied', row };
  return classifyRefusal(sql, key);
}

/** The message of an end whose reason the job's state overruled (a cancel): what the process did stays visible. */
function overruled(reason: EndReason, result: { exitCode?: number; message: string }): string {
  const what = result.exitCode !== undefined ? `the process exited with code ${result.exitCode}` : result.message;
  return what ? `${reasonToDb(reason).toLowerCase()}; ${what}` : reasonToDb(reason).toLowerCase();
}

async function classifyRefusal(sql: Sql, key: AttemptKey): Promise<ReportOutcome> {
  const row = await getJob(sql, key.jobId);
  // The same attempt already ended: a resent report after a lost ack.
  if (row && row.attempt === key.attempt && row.end_reason !== null) return { kind: 'duplicate', row };
  return { kind: 'stale', row };
}

const CANCELS = ALL_STATES.flatMap((from) => {
  const to = cancelTargetOf(from);
  return to === undefined ? [] : [{ from: stateToDb(from), to: stateToDb(to) }];
});

/**
 * Cancels a job in one compare-and-set, by the state it is in when the cancel
 * commits (cancelTargetOf): a queued one ends CANCELLED, one on a node becomes
 * CANCELLING with its grace and backstop. Returns the row after the change, or
 * the unchanged row when there was nothing to cancel.
 */
export async function cancelJob(
  sql: Sql,
  id: string,
  graceMs: number,
  backstopMarginMs: number,
): Promise<{ row: JobRow | undefined; changed: boolean }> {
  const from = CANCELS.map((c) => c.from);
  // Every SET sees the row before this statement changes it: the newest committed
  // version, re-read if a concurrent commit (a requeue) changed it while this one
  // waited for its lock. The target is looked up from that row's state.
  const target = sql`(${CANCELS.map((c) => c.to)}::text[])[array_position(${from}::text[], state)]`;
  const [row] = await sql<JobRow[]>`
    UPDATE jobs SET
      version = version + 1,
      state = ${target},
      end_reason = CASE WHEN ${target} = 'CANCELLED' THEN 'CANCELLED' END,
      ended_at = CASE WHEN ${target} = 'CANCELLED' THEN now() END,
      message = CASE WHEN ${target} = 'CANCELLED' THEN 'cancelled before it started' ELSE message END,
      cancel_grace_ms = CASE WHEN ${target} = 'CANCELLING' THEN ${graceMs}::int ELSE cancel_grace_ms END,
      backstop_at = CASE WHEN ${target} = 'CANCELLING'
                         THEN now() + (${graceMs}::int8 + ${backstopMarginMs}::int8) * interval '1 millisecond'
                         ELSE backstop_at END
    WHERE id = ${id} AND state = ANY(${from}::text[])
    RETURNING *`;
  if (row) return { row, changed: true };
  return { row: await getJob(sql, id), changed: false };
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

/** The tasks of these attempts while still assigned to `nodeId`, to send them again. */
export async function assignedTasks(sql: Sql, nodeId: string, keys: AttemptKey[]): Promise<{ key: AttemptKey; task: Task }[]> {
  if (keys.length === 0) return [];
  const rows = await sql<{ id: string; attempt: number; task: Buffer }[]>`
    SELECT id, attempt, task FROM jobs
    WHERE node_id = ${nodeId} AND state = 'ASSIGNED'
      AND (id, attempt) IN (SELECT * FROM unnest(${keys.map((k) => k.jobId)}::uuid[], ${keys.map((k) => k.attempt)}::int[]))`;
  return rows.map((r) => ({ key: { jobId: r.id, attempt: r.attempt }, task: Task.decode(r.task) }));
}

/**
 * Marks the active attempts of a lost node LOST (all of them, or only `only`):
 * a job with attempts left goes back to the queue, a cancelling one ends
 * CANCELLED, the rest end NODE_LOST. One statement, each row a compare-and-set.
 */
export async function loseAttempts(sql: Sql | TransactionSql, nodeId: string, only?: AttemptKey[]): Promise<JobRow[]> {
  const ids = only?.map((k) => k.jobId) ?? null;
  const attempts = only?.map((k) => k.attempt) ?? null;
  return sql<JobRow[]>`
    WITH lost AS (
      SELECT id, state, attempt, max_attempts FROM jobs
      WHERE node_id = ${nodeId} AND state = ANY(${ACTIVE_DB_STATES})
        AND (${ids}::uuid[] IS NULL OR (id, attempt) IN (SELECT * FROM unnest(${ids}::uuid[], ${attempts}::int[])))
      FOR UPDATE
    ), changed AS (
      UPDATE jobs j SET
        version = j.version + 1,
        state = CASE WHEN l.state = 'CANCELLING' THEN 'CANCELLED'
                     WHEN l.attempt < l.max_attempts THEN 'QUEUED' ELSE 'FAILED' END,
        end_reason = CASE WHEN l.state = 'CANCELLING' THEN 'CANCELLED'
                          WHEN l.attempt < l.max_attempts THEN NULL ELSE 'NODE_LOST' END,
        ended_at = CASE WHEN l.state <> 'CANCELLING' AND l.attempt < l.max_attempts THEN NULL ELSE now() END,
        node_id = CASE WHEN l.state <> 'CANCELLING' AND l.attempt < l.max_attempts THEN NULL ELSE j.node_id END,
        backstop_at = NULL,
        -- A requeued job gets its whole queue timeout again.
        queue_deadline = now() + (j.queue_deadline - j.submitted_at),
        message = CASE WHEN l.state = 'CANCELLING' THEN 'cancelled; its node was lost before confirming'
                       WHEN l.attempt < l.max_attempts THEN 'node ' || ${nodeId} || ' was lost during attempt ' || l.attempt || '; queued again'
                       ELSE 'node ' || ${nodeId} || ' was lost during attempt ' || l.attempt || ', the last one allowed' END
      FROM lost l
      WHERE j.id = l.id AND j.state = l.state AND j.attempt = l.attempt
      RETURNING j.*
    ), history AS (
      UPDATE job_attempts a SET outcome = 'NODE_LOST', ended_at = now()
      FROM changed c WHERE a.job_id = c.id AND a.attempt = c.attempt
    )
    SELECT * FROM changed`;
}


/** Queued jobs past their queue timeout end QUEUE_TIMEOUT. */
export async function expireQueued(sql: Sql, limit: number): Promise<JobRow[]> {
  return sql<JobRow[]>`
    UPDATE jobs SET version = version + 1, state = 'FAILED', end_reason = 'QUEUE_TIMEOUT', ended_at = now(),
                    message = 'waited in the queue longer than its queue timeout'
    WHERE id IN (SELECT id FROM jobs WHERE state = 'QUEUED' AND queue_deadline < now()
                 ORDER BY queue_deadline LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      AND state = 'QUEUED'
    RETURNING *`;
}

/**
 * Active attempts past their backstop (the timeout, or a cancel's grace, plus a
 * margin) without a result from their node: the control plane ends them itself,
 * a cancelling one CANCELLED, any other TIMED_OUT. The caller sends the kill.
 */
export async function endPastBackstop(sql: Sql, limit: number): Promise<JobRow[]> {
  return sql<JobRow[]>`
    WITH ended AS (
      UPDATE jobs SET version = version + 1,
        state = CASE WHEN state = 'CANCELLING' THEN 'CANCELLED' ELSE 'FAILED' END,
        end_reason = CASE WHEN state = 'CANCELLING' THEN 'CANCELLED' ELSE 'TIMED_OUT' END,
        ended_at = now(),
        message = CASE WHEN state = 'CANCELLING'
                       THEN 'cancelled; node ' || node_id || ' did not confirm within the grace, so the control plane ended it'
                       ELSE 'ran past its timeout and node ' || node_id || ' did not stop it; the control plane ended it' END
      WHERE id IN (SELECT id FROM jobs WHERE state = ANY(${ACTIVE_DB_STATES}) AND backstop_at < now()
                   ORDER BY backstop_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        AND state = ANY(${ACTIVE_DB_STATES})
      RETURNING *
    ), history AS (
      UPDATE job_attempts a SET outcome = e.end_reason, ended_at = e.ended_at
      FROM ended e WHERE a.job_id = e.id AND a.attempt = e.attempt
    )
    SELECT * FROM ended`;
}

/**
 * The verdict on a lost node, atomic and fenced: only the connection that was
 * judged (its generation) is marked LOST, and its attempts are lost in the same
 * transaction, holding the node's row so a reconnect waits for the verdict.
 * Returns undefined when the node has moved on to a newer connection.
 */
export async function loseNode(sql: Sql, nodeId: string, generation: number): Promise<JobRow[] | undefined> {
  return sql.begin(async (tx) => {
    const [node] = await tx<{ generation: number }[]>`SELECT generation FROM nodes WHERE id = ${nodeId} FOR UPDATE`;
    if (!node || node.generation !== generation) return undefined;
    await tx`UPDATE nodes SET state = 'LOST' WHERE id = ${nodeId}`;
    return loseAttempts(tx, nodeId);
  }) as Promise<JobRow[] | undefined>;
}

/**
 * Assignments that never reached their node (its stream ended or was replaced
 * while the claim was in flight) go back to the queue; the attempt counts as
 * lost, since its number may not be reused.
 */
export async function unassign(sql: Sql, nodeId: string, keys: AttemptKey[]): Promise<JobRow[]> {
  return keys.length === 0 ? [] : loseAttempts(sql, nodeId, keys);
}

/** Whether the attempt is its job's current, active one: the fence for node reports. */
export async function isCurrentAttempt(sql: Sql, key: AttemptKey): Promise<boolean> {
  const rows = await sql`SELECT 1 FROM jobs WHERE id = ${key.jobId} AND attempt = ${key.attempt} AND state = ANY(${ACTIVE_DB_STATES})`;
  return rows.length > 0;
}

export async function recordOutputFiles(
  sql: Sql,
  key: AttemptKey,
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

export async function outputFilesOf(sql: Sql, key: AttemptKey): Promise<{ path: string; size: bigint }[]> {
  const rows = await sql<{ path: string; size: number }[]>`
    SELECT path, size FROM job_output_files WHERE job_id = ${key.jobId} AND attempt = ${key.attempt} ORDER BY path`;
  return rows.map((r) => ({ path: r.path, size: BigInt(r.size) }));
}
