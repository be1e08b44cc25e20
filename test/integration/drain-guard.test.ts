// A drained node is given nothing, by a claim or by a submit placed on it,
// however stale the replica's own picture of the node is: the guard is in the
// statement that assigns, not only in memory.
import test from 'ava';
import { v7 as uuidv7 } from 'uuid';
import { JobSpec } from '../../common/gen/grid/v1/job.js';
import { migrate } from '../../control-plane/db/migrate.js';
import { setNodeDraining } from '../../control-plane/node-store.js';
import { claimJobs } from '../../control-plane/sql/claim-jobs.js';
import { insertJobs } from '../../control-plane/sql/insert-jobs.js';
import { runtimeTable, DEFAULT_RUNTIMES } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
  await db.sql`INSERT INTO nodes (id, name, state, slots, cpus, memory_bytes, labels, agent_version) VALUES ('drained', 'drained', 'READY', 4, 4, 8589934592, '{}'::jsonb, 'test')`;
  drainedNode = await setNodeDraining(db.sql, 'drained', true);
});
test.after.always(async () => db?.drop());
let drainedNode: { draining: boolean } | undefined;

const offer = { nodeId: 'drained', free: { slots: 4, cpus: 4, memoryBytes: 2 ** 33 }, size: { cpus: 4, memoryBytes: 2 ** 33 } };
function newJob() {
  const { spec, task } = validateSubmission(JobSpec.fromPartial({ command: ['true'] }), DEFAULT_SPEC_POLICY, runtimeTable(DEFAULT_RUNTIMES));
  return { id: uuidv7(), spec, task, requestId: '' };
}

test.serial('a claim offering a drained node assigns nothing and names the node', async (t) => {
  t.true(drainedNode?.draining);
  const job = newJob();
  await insertJobs(db.sql, [job], 1e9);
  const claim = await claimJobs(db.sql, [offer]);
  t.is(claim.rows.length, 0);
  t.true(claim.raced);
  t.deepEqual(claim.drained, ['drained']);
  const [row] = await db.sql<{ state: string }[]>`SELECT state FROM jobs WHERE id = ${job.id}`;
  t.is(row!.state, 'QUEUED');
  await db.sql`DELETE FROM jobs`;
});

test.serial('a submit placed on a drained node is queued instead', async (t) => {
  const job = newJob();
  const { outcomes } = await insertJobs(db.sql, [job], 1e9, new Map([[job.id, 'drained']]));
  t.is(outcomes[0]!.kind, 'created');
  const [row] = await db.sql<{ state: string; node_id: string | null }[]>`SELECT state, node_id FROM jobs WHERE id = ${job.id}`;
  t.deepEqual({ ...row }, { state: 'QUEUED', node_id: null });
});
