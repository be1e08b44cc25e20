// Why queued jobs wait, kept in their message for `status`: no node connected,
// or no connected node large enough (such a job is passed over by claims, see
// claim-jobs.ts, and would otherwise wait without a word). The latter are also
// marked `unfit`, counted apart from the queue so that they do not stop
// submits from being placed at once (insert-jobs.ts). Not a state change: the
// version is not bumped. A message this wrote is cleared (and the mark) once
// the job could run; other messages (a requeue's "node … was lost") are left
// as they are, and such a job is never marked.
import { JobState } from '../../common/gen/grid/v1/job.js';
import { stateToDb } from '../../common/job-state.js';
import type { Sql } from '../db/connect.js';

const QUEUED = stateToDb(JobState.JOB_STATE_QUEUED);
export const WAITING_PREFIX = 'waiting: ';
const BATCH = 1000;

/** Returns how many jobs' reasons changed. */
export async function noteWaiting(sql: Sql): Promise<number> {
  const rows = await sql`
    WITH biggest AS (
      SELECT max(cpus) AS cpus, max(memory_bytes) AS memory FROM nodes WHERE state = 'READY'
    ), why AS (
      SELECT j.id, CASE
          WHEN b.cpus IS NULL THEN ${WAITING_PREFIX} || 'no node is connected'
          -- Node by node: the most CPUs and the most memory may be two different nodes'.
          WHEN NOT EXISTS (SELECT 1 FROM nodes n WHERE n.state = 'READY' AND j.cpus <= n.cpus + 1e-9 AND j.memory_bytes <= n.memory_bytes)
            THEN ${WAITING_PREFIX} || 'it asks for ' || j.cpus || CASE WHEN j.cpus = 1 THEN ' CPU' ELSE ' CPUs' END
                 || ' and ' || pg_size_pretty(j.memory_bytes) || ' of memory; no connected node has both (the most any has: '
                 || b.cpus || CASE WHEN b.cpus = 1 THEN ' CPU' ELSE ' CPUs' END || ', ' || pg_size_pretty(b.memory) || ')'
          ELSE '' END AS message,
        b.cpus IS NOT NULL AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.state = 'READY' AND j.cpus <= n.cpus + 1e-9 AND j.memory_bytes <= n.memory_bytes) AS unfit
      FROM jobs j CROSS JOIN biggest b
      WHERE j.state = ${QUEUED} AND (j.message = '' OR starts_with(j.message, ${WAITING_PREFIX}))
    ), changed AS (
      -- A bounded batch, oldest first: when the first node connects, a full queue
      -- is rewritten over several passes, not in one statement holding every row.
      SELECT why.* FROM why JOIN jobs USING (id) WHERE jobs.message <> why.message OR jobs.unfit <> why.unfit ORDER BY id LIMIT ${BATCH}
    )
    UPDATE jobs SET message = changed.message, unfit = changed.unfit FROM changed
    WHERE jobs.id = changed.id AND jobs.state = ${QUEUED}
    RETURNING jobs.id`;
  return rows.length;
}
