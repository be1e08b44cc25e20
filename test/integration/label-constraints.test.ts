// Label constraints in SQL, against the real Postgres: what insertJobs stores
// (a JSON array, or NULL for none), which queued jobs a claim's head read
// offers to nodes with given labels, and the waiting note and unfit mark of a
// job no READY node has the labels for, cleared when one connects.
import test from 'ava';
import { v7 as uuidv7 } from 'uuid';
import { JobSpec } from '../../common/gen/grid/v1/job.js';
import { parseConstraint, type Labels } from '../../common/label-constraints.js';
import { migrate } from '../../control-plane/db/migrate.js';
import { claimJobs } from '../../control-plane/sql/claim-jobs.js';
import { insertJobs } from '../../control-plane/sql/insert-jobs.js';
import { noteWaiting, unmarkFitFor } from '../../control-plane/sql/note-waiting.js';
import { DEFAULT_RUNTIMES, runtimeTable } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

// Serial: each test starts from empty tables, which a concurrent test's
// beforeEach would empty under it.
let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
});
test.after.always(async () => db?.drop());
test.beforeEach(async () => {
  await db.sql`DELETE FROM job_attempts`;
  await db.sql`DELETE FROM jobs`;
  await db.sql`DELETE FROM nodes`;
});

/** Queues a job with these --constraint texts; its id. */
async function queue(constraints: string[], prefer: string[] = []): Promise<string> {
  const { spec, task } = validateSubmission(
    JobSpec.fromPartial({ command: ['true'], constraints: constraints.map((c) => parseConstraint(c, 'c')), affinities: prefer.map((c) => parseConstraint(c, 'p')) }),
    DEFAULT_SPEC_POLICY,
    runtimeTable(DEFAULT_RUNTIMES),
  );
  const id = uuidv7();
  await insertJobs(db.sql, [{ id, spec, task, requestId: '' }], 1e9);
  return id;
}
const offer = (nodeId: string, labels: Labels, slots = 10) => ({ nodeId, free: { slots, cpus: 64, memoryBytes: 2 ** 40 }, size: { cpus: 64, memoryBytes: 2 ** 40 }, labels });

test.serial('constraints are stored as a JSON array of tests, none as NULL', async (t) => {
  const gpu = await queue(['gpu=true', 'region!=eu'], ['disk=ssd']);
  const plain = await queue([]);
  const rows = await db.sql`SELECT id, jsonb_typeof(constraints) AS c, constraints, jsonb_typeof(affinities) AS a FROM jobs ORDER BY id`;
  const byId = new Map(rows.map((r) => [r.id, r]));
  t.is(byId.get(gpu)!.c, 'array');
  t.deepEqual(byId.get(gpu)!.constraints, [{ key: 'gpu', op: '=', value: 'true' }, { key: 'region', op: '!=', value: 'eu' }]);
  t.is(byId.get(gpu)!.a, 'array');
  t.is(byId.get(plain)!.c, null);
});

test.serial('a claim gives each node only the jobs its labels satisfy, and passes over what none does', async (t) => {
  const gpu = await queue(['gpu=true']);
  const notEu = await queue(['region!=eu']);
  const mars = await queue(['zone=mars']);
  const any = await queue([]);
  const { rows, exhausted } = await claimJobs(db.sql, [offer('g', { gpu: 'true', region: 'eu' }), offer('p', { region: 'us' })]);
  const nodeOf = new Map(rows.map((r) => [r.id, r.node_id]));
  t.is(nodeOf.get(gpu), 'g');
  t.is(nodeOf.get(notEu), 'p');
  t.true(nodeOf.has(any));
  t.false(nodeOf.has(mars), 'no offered node has zone=mars');
  t.true(exhausted, 'nothing these nodes can run is left');
  t.is((await db.sql`SELECT state FROM jobs WHERE id = ${mars}`)[0]!.state, 'QUEUED');
});

test.serial('a job no READY node has the labels for is noted and marked unfit; a node that has them unmarks it on connect', async (t) => {
  await db.sql`INSERT INTO nodes (id, name, state, slots, cpus, memory_bytes, labels, connected_at, last_seen_at, generation)
               VALUES ('p', 'p', 'READY', 4, 4, ${2 ** 32}, '{"region":"us"}'::jsonb, now(), now(), 1)`;
  const mars = await queue(['zone=mars']);
  const us = await queue(['region=us']);
  await noteWaiting(db.sql);
  const rows = await db.sql`SELECT id, message, unfit FROM jobs`;
  const byId = new Map(rows.map((r) => [r.id, r]));
  t.deepEqual([byId.get(mars)!.message, byId.get(mars)!.unfit], ['waiting: it runs only on nodes with zone=mars; no connected node has those labels', true]);
  t.deepEqual([byId.get(us)!.message, byId.get(us)!.unfit], ['', false]);
  await unmarkFitFor(db.sql, [{ cpus: 4, memoryBytes: 2 ** 32, labels: { region: 'us' } }]);
  t.true((await db.sql`SELECT unfit FROM jobs WHERE id = ${mars}`)[0]!.unfit, 'a node without zone=mars does not unmark it');
  await unmarkFitFor(db.sql, [{ cpus: 4, memoryBytes: 2 ** 32, labels: { zone: 'mars' } }]);
  t.false((await db.sql`SELECT unfit FROM jobs WHERE id = ${mars}`)[0]!.unfit);
});
