// The per-submitter cap in the claim, against the real Postgres: a submitter's
// burst queued first takes only its cap of the offered slots and the jobs of
// others queued behind it take the rest; once at its cap, its jobs are left
// out of the head (not filling it), and the claim says work is left.
import test from 'ava';
import { v7 as uuidv7 } from 'uuid';
import { JobSpec } from '../../common/gen/grid/v1/job.js';
import { migrate } from '../../control-plane/db/migrate.js';
import { claimJobs } from '../../control-plane/sql/claim-jobs.js';
import { insertJobs } from '../../control-plane/sql/insert-jobs.js';
import { noteWaiting } from '../../control-plane/sql/note-waiting.js';
import { DEFAULT_RUNTIMES, runtimeTable } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
});
test.after.always(async () => db?.drop());

const { spec, task } = validateSubmission(JobSpec.fromPartial({ command: ['true'] }), DEFAULT_SPEC_POLICY, runtimeTable(DEFAULT_RUNTIMES));
const queue = (submitter: string, n: number) => insertJobs(db.sql, Array.from({ length: n }, () => ({ id: uuidv7(), spec, task, requestId: '', submitter })), 1e9);
const offer = (slots: number) => [{ nodeId: 'n', free: { slots, cpus: 64, memoryBytes: 2 ** 40 }, size: { cpus: 64, memoryBytes: 2 ** 40 } }];
const bySubmitter = async (state: string) =>
  Object.fromEntries((await db.sql`SELECT submitter, count(*)::int AS n FROM jobs WHERE state = ${state} GROUP BY submitter`).map((r) => [r.submitter, r.n]));

test.serial('a burst takes its cap; the others behind it take the rest; then it is left out of the head', async (t) => {
  await queue('burst', 1000);
  await queue('other', 3);
  await queue('third', 1);
  // The head (8 rows) is all the burst's: it takes its 3, and the claim asks to be run again
  // (as after a race), when the burst, now at its cap, is left out of the head.
  const first = await claimJobs(db.sql, offer(8), { runningCap: 3 });
  t.is(first.rows.length, 3);
  t.true(first.raced);
  const again = await claimJobs(db.sql, offer(5), { runningCap: 3 });
  t.deepEqual(await bySubmitter('ASSIGNED'), { burst: 3, other: 3, third: 1 });
  t.false(again.exhausted, 'the burst\'s jobs are left');
  t.false(again.raced);

  // The submit stored the submitter; the next claim leaves the burst out though 999 of its jobs head the queue.
  await queue('late', 2);
  const second = await claimJobs(db.sql, offer(1), { runningCap: 3 });
  t.is(second.rows.length, 1, 'one slot, and the late job ahead of the burst\'s 997 in the head');
  t.deepEqual(await bySubmitter('ASSIGNED'), { burst: 3, other: 3, third: 1, late: 1 });
  t.false(second.exhausted, 'the burst waits for its cap, not for nothing');

  // One of the burst's jobs ends: exactly one more of its jobs is claimed.
  await db.sql`UPDATE jobs SET state = 'SUCCEEDED', end_reason = 'SUCCEEDED', ended_at = now() WHERE id = (SELECT id FROM jobs WHERE submitter = 'burst' AND state = 'ASSIGNED' LIMIT 1)`;
  const third = await claimJobs(db.sql, offer(8), { runningCap: 3 });
  t.is(third.rows.length, 1, 'one of the burst, which heads the queue');
  t.true(third.raced);
  const fourth = await claimJobs(db.sql, offer(7), { runningCap: 3 });
  t.is(fourth.rows.length, 1, 'the other late job, behind the burst');
  t.deepEqual(await bySubmitter('ASSIGNED'), { burst: 3, other: 3, third: 1, late: 2 });

  // Its queued jobs say why they wait, with a node connected that has room; without the cap they would not.
  await db.sql`INSERT INTO nodes (id, name, state, slots, cpus, memory_bytes, labels, connected_at, last_seen_at, generation)
               VALUES ('n', 'n', 'READY', 64, 64, ${2 ** 40}, '{}'::jsonb, now(), now(), 1)`;
  await noteWaiting(db.sql, 3);
  const messages = await db.sql`SELECT DISTINCT message FROM jobs WHERE state = 'QUEUED'`;
  t.deepEqual(messages.map((r) => r.message), [
    'waiting: its submitter already has 3 jobs assigned or running, the most one may (control plane --max-running-per-submitter); it starts when one of them ends',
  ]);
  await noteWaiting(db.sql, 0);
  t.deepEqual((await db.sql`SELECT DISTINCT message FROM jobs WHERE state = 'QUEUED'`).map((r) => r.message), ['']);
});

test.serial('no cap: the burst takes every slot, as before', async (t) => {
  await db.sql`DELETE FROM job_attempts`;
  await db.sql`DELETE FROM jobs`;
  await queue('burst', 20);
  await queue('other', 2);
  await claimJobs(db.sql, offer(8));
  t.deepEqual(await bySubmitter('ASSIGNED'), { burst: 8 });
});
