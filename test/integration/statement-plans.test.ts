// The set-based statements of the hot path look their rows up by id. Joined to
// an unnest of their input, Postgres was free to read every queued or active
// job (or the whole table) and hash it, once per statement: O(jobs) per claim
// and per report commit instead of O(the rows in hand), which grows with the
// history a production table keeps. Each statement is EXPLAINed here, as it is
// sent (captured with postgres.js's debug hook), over a table with a history.
import test from 'ava';
import postgres from 'postgres';
import { v7 as uuidv7 } from 'uuid';
import { EndReason, JobSpec } from '../../common/gen/grid/v1/job.js';
import { migrate } from '../../control-plane/db/migrate.js';
import { connectQueueHeadReader, QUEUE_HEAD_PLANNER, type Sql } from '../../control-plane/db/connect.js';
import { claimJobs } from '../../control-plane/sql/claim-jobs.js';
import { finishAttempts } from '../../control-plane/sql/finish-attempts.js';
import { insertJobs } from '../../control-plane/sql/insert-jobs.js';
import { startAttempts } from '../../control-plane/sql/start-attempts.js';
import { runtimeTable, DEFAULT_RUNTIMES } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
let traced: Sql;
let captured: { query: string; params: unknown[] }[] = [];
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
  traced = postgres(db.url, {
    max: 1,
    onnotice: () => {},
    types: { bigint: { to: 20, from: [20], serialize: (n: number) => String(n), parse: (s: string) => Number(s) } },
    debug: (_conn: number, query: string, params: unknown[]) => captured.push({ query, params }),
  }) as unknown as Sql;
  // A history: 4,000 jobs, 3,000 of them ended, 500 queued, 500 running.
  const { spec, task } = validateSubmission(JobSpec.fromPartial({ command: ['true'] }), DEFAULT_SPEC_POLICY, runtimeTable(DEFAULT_RUNTIMES));
  for (let i = 0; i < 4; i++) await insertJobs(db.sql, Array.from({ length: 1000 }, () => ({ id: uuidv7(), spec, task, requestId: '' })), 1e9);
  const offer = (n: number) => [{ nodeId: 'history', free: { slots: n, cpus: 1e6, memoryBytes: 2 ** 60 }, size: { cpus: 1e6, memoryBytes: 2 ** 60 } }];
  const claimed = (await claimJobs(db.sql, offer(3500))).rows;
  const done = claimed.slice(0, 3000).map((r) => ({ attempt: { jobId: r.id, attempt: r.attempt }, nodeId: 'history', reason: EndReason.END_REASON_SUCCEEDED, exitCode: 0, message: '', endedAt: new Date() }));
  for (let i = 0; i < done.length; i += 500) await finishAttempts(db.sql, done.slice(i, i + 500));
  await startAttempts(db.sql, claimed.slice(3000).map((r) => ({ attempt: { jobId: r.id, attempt: r.attempt }, nodeId: 'history', startedAt: new Date() })), 5000);
  // Statistics as a table that grows fast has them (none yet): autovacuum would analyse it at any moment.
  await db.sql`ALTER TABLE jobs SET (autovacuum_enabled = false)`;
  await db.sql`ALTER TABLE job_attempts SET (autovacuum_enabled = false)`;
});
test.after.always(async () => {
  await traced?.end({ timeout: 1 });
  await db?.drop();
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  Plans?: PlanNode[];
}

/** How each statement the call sent reads the jobs table: "Seq Scan", or an index scan and its condition. */
async function jobsScansOf(call: () => Promise<unknown>): Promise<string[]> {
  captured = [];
  await call();
  const scans: string[] = [];
  for (const { query, params } of captured.filter((c) => /UPDATE jobs/.test(c.query))) {
    const [row] = await db.sql.unsafe(`EXPLAIN (FORMAT JSON) ${query}`, params as never[]);
    const walk = (n: PlanNode) => {
      if (n['Relation Name'] === 'jobs' && n['Node Type'] !== 'ModifyTable') {
        const cond = n['Index Cond'] ?? n['Recheck Cond'];
        scans.push(`${n['Node Type']}${cond ? ` ${n['Index Name'] ?? ''} (${cond})` : ''}`);
      }
      n.Plans?.forEach(walk);
    };
    walk((row as unknown as { 'QUERY PLAN': { Plan: PlanNode }[] })['QUERY PLAN'][0]!.Plan);
  }
  return scans;
}

/** An index lookup of the ids in hand: `id = ANY(...)`, or `id = <input>.id` once per input row. */
const byId = (scan: string) => /^(Index Scan|Index Only Scan|Bitmap Heap Scan).*\(\(?id = (ANY|\w+\.id\b)/.test(scan);

for (const stats of ['before the table is analysed', 'once it is analysed'] as const) {
  test.serial(`a claim, a start and a finish each read only the jobs they name, ${stats}`, async (t) => {
    if (stats === 'once it is analysed') await db.sql`ANALYZE jobs`;
    const queued = await db.sql<{ id: string }[]>`SELECT id FROM jobs WHERE state = 'QUEUED' ORDER BY id LIMIT 10`;
    t.is(queued.length, 10);
    const claimScans = await jobsScansOf(() =>
      claimJobs(traced, [{ nodeId: 'n', free: { slots: 10, cpus: 1e6, memoryBytes: 2 ** 60 }, size: { cpus: 1e6, memoryBytes: 2 ** 60 } }]),
    );
    t.true(claimScans.length > 0 && claimScans.every(byId), `claim: ${claimScans.join('; ')}`);
    const assigned = await db.sql<{ id: string; attempt: number }[]>`SELECT id, attempt FROM jobs WHERE state = 'ASSIGNED' ORDER BY id LIMIT 10`;
    const refs = assigned.map((r) => ({ jobId: r.id, attempt: r.attempt }));
    const startScans = await jobsScansOf(() => startAttempts(traced, refs.map((attempt) => ({ attempt, nodeId: 'n', startedAt: new Date() })), 5000));
    t.true(startScans.length > 0 && startScans.every(byId), `start: ${startScans.join('; ')}`);
    const finishScans = await jobsScansOf(() =>
      finishAttempts(traced, refs.map((attempt) => ({ attempt, nodeId: 'n', reason: EndReason.END_REASON_SUCCEEDED, exitCode: 0, message: '', endedAt: new Date() }))),
    );
    t.true(finishScans.length > 0 && finishScans.every(byId), `finish: ${finishScans.join('; ')}`);
  });
}

/** Every node of the plan of each statement the call sent that matches `which`: "<type> <index>". */
async function planNodesOf(call: () => Promise<unknown>, which: RegExp, planner: Record<string, string>): Promise<string[]> {
  captured = [];
  await call();
  const nodes: string[] = [];
  for (const { query, params } of captured.filter((c) => which.test(c.query))) {
    // EXPLAINed with the planner settings of the connection that sent it.
    const [row] = await db.sql.begin(async (tx) => {
      for (const [name, value] of Object.entries(planner)) await tx`SELECT set_config(${name}, ${value}, true)`;
      return tx.unsafe(`EXPLAIN (FORMAT JSON) ${query}`, params as never[]);
    });
    const walk = (n: PlanNode) => {
      nodes.push(`${n['Node Type']}${n['Index Name'] ? ` ${n['Index Name']}` : ''}`);
      n.Plans?.forEach(walk);
    };
    walk((row as unknown as { 'QUERY PLAN': { Plan: PlanNode }[] })['QUERY PLAN'][0]!.Plan);
  }
  return nodes;
}

// The claim's read of the queue's head: the planner, misled by statistics that
// missed a burst, read and sorted every queued job (by way of the queue
// deadlines' index) instead of walking the queue order's index to its first
// rows: 2.9x the time per read at 15,000 queued, 14% off the batched submit
// bench. The head must be read in index order whatever the statistics say: its
// reader's connection disables sorting (db/connect.ts QUEUE_HEAD_PLANNER).
test.serial("the claim reads the queue's head in queue order, sorting nothing, after a burst the statistics missed", async (t) => {
  // Analysed with few jobs queued, then a burst: what the bench's table looks like.
  await db.sql`ANALYZE jobs`;
  const { spec, task } = validateSubmission(JobSpec.fromPartial({ command: ['true'] }), DEFAULT_SPEC_POLICY, runtimeTable(DEFAULT_RUNTIMES));
  for (let i = 0; i < 10; i++) await insertJobs(db.sql, Array.from({ length: 1000 }, () => ({ id: uuidv7(), spec, task, requestId: '' })), 1e9);
  const offer = [{ nodeId: 'n', free: { slots: 128, cpus: 1e6, memoryBytes: 2 ** 60 }, size: { cpus: 1e6, memoryBytes: 2 ** 60 } }];
  const nodes = await planNodesOf(() => claimJobs(traced, offer, { headSql: traced }), /ORDER BY queue_key/, QUEUE_HEAD_PLANNER);
  t.true(nodes.length > 0, 'the head read was captured');
  t.true(nodes.some((n) => /^Index (Only )?Scan jobs_queue_order$/.test(n)), nodes.join('; '));
  t.false(nodes.includes('Sort'), nodes.join('; '));
});

// With sorting disabled, any plan that still sorts costs 1e10 more, past
// jit_above_cost: postgres.js's fetch of array types, which every new
// connection sends (GROUP BY, ORDER BY), was JIT-compiled for ~110 ms of
// Postgres CPU on each queue-head connection, 6% of a batched submit bench
// run. That connection must never JIT-compile.
test.serial('on the queue-head connection a statement that must sort is not JIT-compiled', async (t) => {
  const head = connectQueueHeadReader(db.url);
  try {
    const [row] = await head.unsafe(`EXPLAIN (ANALYZE, FORMAT JSON) SELECT b.oid, b.typarray FROM pg_catalog.pg_type a
      LEFT JOIN pg_catalog.pg_type b ON b.oid = a.typelem WHERE a.typcategory = 'A' GROUP BY b.oid, b.typarray ORDER BY b.oid`);
    const plan = (row as Record<string, { JIT?: unknown }[]>)['QUERY PLAN']![0]!;
    t.is(plan.JIT, undefined, JSON.stringify(plan.JIT));
  } finally {
    await head.end({ timeout: 1 });
  }
});
