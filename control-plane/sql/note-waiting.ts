// Why queued jobs wait, kept in their message for `status`: no node connected,
// or no connected node (open to work: drained ones do not count) large enough
// or with the labels its constraints ask for (such a job is passed over by claims, see
// claim-jobs.ts, and would otherwise wait without a word). The latter are also
// marked `unfit`, counted apart from the queue so that they do not stop
// submits from being placed at once (insert-jobs.ts). Not a state change: the
// version is not bumped. A message this wrote is cleared once the job could
// run; other messages (a requeue's "node … was lost") are left as they are, but
// such jobs are marked too. A node connecting unmarks what it can hold before
// it is offered work (unmarkFitFor); a mark this writes from a read taken just
// before such a connect lasts until the next note (~5 s). Under a
// per-submitter cap, a job that could run but whose submitter runs its cap
// says so (claim-jobs.ts passes it over until one of those ends).
import { JobState } from '../../common/gen/grid/v1/job.js';
import { ACTIVE_DB_STATES, stateToDb } from '../../common/job-state.js';
import type { Labels } from '../../common/label-constraints.js';
import type { Sql } from '../db/connect.js';
import { labelsSatisfy } from './label-match.js';

const QUEUED = stateToDb(JobState.JOB_STATE_QUEUED);
export const WAITING_PREFIX = 'waiting: ';
const BATCH = 1000;

/** Returns how many jobs' reasons changed. `runningCap`: the per-submitter cap (0: none). */
export async function noteWaiting(sql: Sql, runningCap = 0): Promise<number> {
  const rows = await sql`
    WITH at_cap AS (
      SELECT submitter, count(*) AS n FROM jobs
      WHERE ${runningCap > 0} AND state IN ${sql(ACTIVE_DB_STATES as string[])}
      GROUP BY submitter HAVING count(*) >= ${runningCap}
    ), biggest AS (
      SELECT max(cpus) AS cpus, max(memory_bytes) AS memory FROM nodes WHERE state = 'READY' AND drain_requested_at IS NULL
    ), fit AS (
      SELECT j.id, j.cpus, j.memory_bytes, j.message, j.unfit AS was_unfit,
        (j.message = '' OR starts_with(j.message, ${WAITING_PREFIX})) AS rewritable,
        -- Node by node: the most CPUs and the most memory may be two different nodes'.
        b.cpus IS NOT NULL AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.state = 'READY' AND n.drain_requested_at IS NULL AND j.cpus <= n.cpus + 1e-9 AND j.memory_bytes <= n.memory_bytes
                                             AND ${labelsSatisfy(sql, sql`n.labels`, sql`j.constraints`)}) AS unfit,
        j.constraints IS NOT NULL AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.state = 'READY' AND n.drain_requested_at IS NULL
                                                    AND ${labelsSatisfy(sql, sql`n.labels`, sql`j.constraints`)}) AS unlabelled,
        (SELECT string_agg(t->>'key' || (t->>'op') || (t->>'value'), ', ') FROM jsonb_array_elements(j.constraints) AS t) AS wanted,
        b.cpus AS most_cpus, b.memory AS most_memory, c.n AS submitter_runs
      FROM jobs j CROSS JOIN biggest b LEFT JOIN at_cap c ON c.submitter = j.submitter
      WHERE j.state = ${QUEUED}
    ), why AS (
      SELECT id, unfit, was_unfit, message, CASE
          WHEN NOT rewritable THEN message
          WHEN most_cpus IS NULL THEN ${WAITING_PREFIX} || 'no node is connected'
          WHEN unfit AND unlabelled
            THEN ${WAITING_PREFIX} || 'it runs only on nodes with ' || wanted || '; no connected node has those labels'
          WHEN unfit
            THEN ${WAITING_PREFIX} || 'it asks for ' || cpus || CASE WHEN cpus = 1 THEN ' CPU' ELSE ' CPUs' END
                 || ' and ' || pg_size_pretty(memory_bytes) || ' of memory; no connected node has both (the most any has: '
                 || most_cpus || CASE WHEN most_cpus = 1 THEN ' CPU' ELSE ' CPUs' END || ', ' || pg_size_pretty(most_memory) || ')'
          WHEN submitter_runs IS NOT NULL
            THEN ${WAITING_PREFIX} || 'its submitter already has ' || submitter_runs || ' jobs assigned or running, the most one may '
                 || '(control plane --max-running-per-submitter); it starts when one of them ends'
          ELSE '' END AS new_message
      FROM fit
    ), changed AS (
      -- A bounded batch, oldest first: when the first node connects, a full queue
      -- is rewritten over several passes, not in one statement holding every row.
      SELECT id, new_message, unfit FROM why WHERE message <> new_message OR was_unfit <> unfit ORDER BY id LIMIT ${BATCH}
    )
    UPDATE jobs SET message = changed.new_message, unfit = changed.unfit FROM changed
    WHERE jobs.id = changed.id AND jobs.state = ${QUEUED}
    RETURNING jobs.id`;
  return rows.length;
}

/**
 * Nodes just connected: queued jobs marked unfit that one of them can run (size and labels) are
 * unmarked before the nodes are offered work, so that no submit placed on such
 * a node passes them (insert-jobs.ts). Reads only the marked jobs.
 */
export async function unmarkFitFor(sql: Sql, nodes: { cpus: number; memoryBytes: number; labels: Labels }[]): Promise<void> {
  if (nodes.length === 0) return;
  await sql`
    UPDATE jobs SET unfit = false
    WHERE state = ${QUEUED} AND unfit
      AND EXISTS (SELECT 1 FROM unnest(${nodes.map((n) => n.cpus)}::float8[], ${nodes.map((n) => n.memoryBytes)}::int8[],
                                       ${nodes.map((n) => JSON.stringify(n.labels))}::text[]) AS n(cpus, memory_bytes, labels)
                  WHERE jobs.cpus <= n.cpus + 1e-9 AND jobs.memory_bytes <= n.memory_bytes
                    AND ${labelsSatisfy(sql, sql`n.labels::jsonb`, sql`jobs.constraints`)})`;
}
