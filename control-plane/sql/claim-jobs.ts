// Claim: one statement pair per dispatch pass for every node with free slots,
// not one per node. The queue's head is read, placed on nodes in memory
// (scheduler.ts), and the placed jobs are moved QUEUED → ASSIGNED, each with
// its new attempt number.
import { Task } from '../../common/gen/grid/v1/agent.js';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { ACTIVE_DB_STATES, claimTargetOf, stateToDb } from '../../common/job-state.js';
import type { Sql } from '../db/connect.js';
import { placeJobs, type NodeOffer, type PlacementStrategy, type QueuedJob, type RunningCap } from '../scheduler.js';
import { withSecrets } from '../spec-validation.js';
import type { OpenSecrets } from '../secret-box.js';
import { labelsSatisfy, labelTestsFromDb, type StoredTests } from './label-match.js';
import { changedColumns, guardKeys, movesByState, pick, type ChangedJob } from './changed-job.js';

const CLAIM = movesByState([JobState.JOB_STATE_QUEUED], claimTargetOf);

export interface ClaimedJob extends ChangedJob {
  task: Buffer;
  /** Sealed secret env values, if the job has any (see secret-box.ts). */
  secret_env: Buffer | null;
}

/**
 * Claims queued jobs for the offered nodes (every live one, full ones too), by priority then oldest first, as many as their free
 * slots, CPUs and memory take (see placeJobs: a job no node could ever hold is
 * passed over, one that waits for room holds its place). Returns the claimed
 * rows with their tasks (`node_id` says which node each is for), and whether
 * the queue had nothing placeable left behind them.
 *
 * Two statements and no transaction: the queue's head is read, placed in
 * memory, and claimed by one compare-and-set (QUEUED → ASSIGNED). A job another
 * replica claimed in between fails the guard and is not in the answer (`raced`:
 * the caller passes again; `drained` names the nodes a drain took out meanwhile). No transaction also keeps postgres.js's reserved
 * connections, whose death can crash the process (porsager/postgres#1208), off
 * the hot path. The claim commits as one statement, so the only unknown outcome
 * is that statement's answer being lost (see NodeSession.capacityUnknown).
 */
export async function claimJobs(
  sql: Sql,
  offers: NodeOffer[],
  how: {
    /** Reads the queue's head: a connection with QUEUE_HEAD_PLANNER (db/connect.ts); default: sql. */
    headSql?: Sql;
    strategy?: PlacementStrategy;
    /** At most this many active jobs per submitter (0: no cap). */
    runningCap?: number;
  } = {},
): Promise<ClaimOutcome> {
  const slots = offers.reduce((n, o) => n + Math.max(0, o.free.slots), 0);
  if (slots === 0) return { rows: [], exhausted: false, raced: false, drained: [] };
  // Under a cap, what each submitter runs now; the head leaves out the jobs of
  // those at their cap, which would otherwise fill it and take no slot.
  const cap = how.runningCap ? await runningCap(sql, how.runningCap) : undefined;
  const full = cap ? [...cap.running].filter(([, n]) => n >= cap.perSubmitter).map(([s]) => s) : [];
  // Jobs no offered node could hold even empty are left out here: they would
  // fill the window and hold back every job behind them. Each job is compared
  // with each node (not with the largest CPUs and memory, which may be two
  // different nodes'). Full nodes are offered too, so that a job only they can
  // hold is seen waiting for them.
  // The same for a job whose label constraints no offered node satisfies.
  const headSql = how.headSql ?? sql;
  const head = (
    await headSql<(QueuedJob & { stored_constraints: StoredTests; stored_affinities: StoredTests })[]>`
    SELECT id, cpus, memory_bytes, constraints AS stored_constraints, affinities AS stored_affinities, submitter FROM jobs
    WHERE state = ${stateToDb(JobState.JOB_STATE_QUEUED)}
      -- Not before it is due (spec.not_before, a retry's back-off): such a job is keyed in the queue by when it is due, so
      -- few are passed over here.
      AND (not_before IS NULL OR not_before <= now())
      ${full.length > 0 ? headSql`AND submitter <> ALL(${full}::text[])` : headSql``}
      AND EXISTS (SELECT 1 FROM unnest(${offers.map((o) => o.size.cpus)}::float8[], ${offers.map((o) => o.size.memoryBytes)}::int8[],
                                       ${offers.map((o) => JSON.stringify(o.labels ?? {}))}::text[]) AS n(cpus, memory_bytes, labels)
                  WHERE jobs.cpus <= n.cpus + 1e-9 AND jobs.memory_bytes <= n.memory_bytes
                    AND ${labelsSatisfy(headSql, headSql`n.labels::jsonb`, headSql`jobs.constraints`)})
    -- Priority with ageing, then submit order (common/queue-order.ts), walking
    -- index jobs_queue_order: headSql's planner may not sort instead.
    ORDER BY queue_key, id
    LIMIT ${slots}`
  ).map(({ stored_constraints, stored_affinities, ...job }) => ({
    ...job,
    constraints: labelTestsFromDb(stored_constraints),
    affinities: labelTestsFromDb(stored_affinities),
  }));
  // At the queue's tail, when the first job not yet due will be: the dispatcher wakes then.
  const nextDueInMs = head.length < slots ? await nextDue(sql) : undefined;
  const { placed, waiting, capped } = placeJobs(head, offers, how.strategy, cap);
  // Fewer queued jobs than slots, and none waiting for room: nothing placeable
  // is left, unless some were left out for their submitter's cap (they may be
  // placeable once its jobs end).
  const exhausted = head.length < slots && !waiting && full.length === 0 && !capped;
  // A submitter reached its cap in this pass, so its later jobs took no slot
  // that others' jobs beyond the head could have: read again (as for a race).
  const again = capped && placed.length < slots;
  if (placed.length === 0) return { rows: [], exhausted, raced: again, drained: [], nextDueInMs };
  const rows = await sql<ClaimedJob[]>`
    WITH placed AS (
      SELECT * FROM unnest(${placed.map((p) => p.id)}::uuid[], ${placed.map((p) => p.nodeId)}::text[]) AS p(id, node_id)
    ), claimed AS (
      UPDATE jobs SET version = jobs.version + 1, state = ${pick(sql, CLAIM, sql`jobs.state`, 'state')},
                      attempt = jobs.attempt + 1, node_id = placed.node_id,
                      assigned_at = now(), started_at = NULL, exit_code = NULL, backstop_at = NULL, unfit = false
      FROM placed
      -- The ids again, as the only index condition: joined to the unnest alone,
      -- or with the guard written as state = ANY (which the state indexes
      -- serve), the planner may read every queued job, whose count its
      -- statistics miss after a burst (test/integration/statement-plans.test.ts).
      WHERE jobs.id = ANY(${placed.map((p) => p.id)}::uuid[]) AND jobs.id = placed.id
        AND array_position(${guardKeys(CLAIM)}::text[], jobs.state) IS NOT NULL
        -- A node drained since this replica last heard (node-drain.ts) takes nothing.
        AND NOT EXISTS (SELECT 1 FROM nodes WHERE nodes.id = placed.node_id AND nodes.drain_requested_at IS NOT NULL)
      RETURNING ${changedColumns(sql)}, jobs.task, jobs.secret_env, jobs.assigned_at
    ), history AS (
      INSERT INTO job_attempts (job_id, attempt, node_id, assigned_at)
      SELECT id, attempt, node_id, assigned_at FROM claimed
    )
    SELECT * FROM claimed ORDER BY id`;
  const raced = rows.length < placed.length || again;
  // Rare: which of the nodes turned out drained, so that the caller stops offering them.
  const drained = raced
    ? (await sql<{ id: string }[]>`SELECT id FROM nodes WHERE id = ANY(${[...new Set(placed.map((p) => p.nodeId))]}::text[]) AND drain_requested_at IS NOT NULL`).map((r) => r.id)
    : [];
  return { rows, exhausted: exhausted && !raced, raced, drained, nextDueInMs };
}

/** In how long, by the database's clock (not this host's, which may differ), the first job not yet due will be. */
async function nextDue(sql: Sql): Promise<number | undefined> {
  const [row] = await sql<{ in_ms: number | null }[]>`
    SELECT (extract(epoch FROM min(not_before) - now()) * 1000)::float8 AS in_ms FROM jobs
    WHERE state = ${stateToDb(JobState.JOB_STATE_QUEUED)} AND not_before IS NOT NULL AND not_before > now()`;
  return row?.in_ms ?? undefined;
}

/**
 * What each submitter runs now (its active jobs, read through jobs_active_by_node:
 * at most the fleet's slots). Per replica exact, as its passes never overlap;
 * two replicas claiming at the same instant may each start a submitter's last
 * allowed jobs (docs/api.md).
 */
async function runningCap(sql: Sql, perSubmitter: number): Promise<RunningCap> {
  const rows = await sql<{ submitter: string; n: number }[]>`
    SELECT submitter, count(*)::int AS n FROM jobs WHERE state IN ${sql(ACTIVE_DB_STATES as string[])} GROUP BY submitter`;
  return { perSubmitter, running: new Map(rows.map((r) => [r.submitter, r.n])) };
}

export interface ClaimOutcome {
  rows: ClaimedJob[];
  /** Nothing placeable now is left behind (jobs not due yet aside: nextDueInMs). */
  exhausted: boolean;
  /** Another replica took some of the jobs placed, a node was drained, or a cap was reached: read again. */
  raced: boolean;
  drained: string[];
  /** Read at the queue's tail: in how long the first queued job not yet due will be. */
  nextDueInMs?: number;
}

/** The task as sent to its node: with its secret values unsealed. */
export function taskOf(row: ClaimedJob, open: OpenSecrets): Task {
  return withSecrets(Task.decode(row.task), open(row.id, row.secret_env));
}
