// Retries and delayed starts in SQL, against the real Postgres: a failed
// attempt of a job with retries left is queued again behind its back-off, its
// own end kept in the history; a claim does not take it before it is due and
// says when that is; a job not due yet is not claimed either; and a retried
// attempt spends nothing of max_attempts, the budget for lost nodes.
import test from 'ava';
import { v7 as uuidv7 } from 'uuid';
import { EndReason, JobSpec } from '../../common/gen/grid/v1/job.js';
import { migrate } from '../../control-plane/db/migrate.js';
import { claimJobs } from '../../control-plane/sql/claim-jobs.js';
import { finishAttempts } from '../../control-plane/sql/finish-attempts.js';
import { insertJobs } from '../../control-plane/sql/insert-jobs.js';
import { loseAttempts } from '../../control-plane/sql/lose-attempts.js';
import { DEFAULT_RUNTIMES, runtimeTable } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
});
test.after.always(async () => db?.drop());
test.beforeEach(async () => {
  await db.sql`DELETE FROM job_attempts`;
  await db.sql`DELETE FROM jobs`;
});

async function queue(partial: Partial<JobSpec>): Promise<string> {
  const { spec, task } = validateSubmission(JobSpec.fromPartial({ command: ['true'], ...partial }), DEFAULT_SPEC_POLICY, runtimeTable(DEFAULT_RUNTIMES));
  const id = uuidv7();
  await insertJobs(db.sql, [{ id, spec, task, requestId: '' }], 1e9);
  return id;
}
const offer = [{ nodeId: 'n', free: { slots: 4, cpus: 64, memoryBytes: 2 ** 40 }, size: { cpus: 64, memoryBytes: 2 ** 40 } }];
const finish = (jobId: string, attempt: number, reason: EndReason, exitCode?: number) =>
  finishAttempts(db.sql, [{ attempt: { jobId, attempt }, reason, exitCode, message: '', endedAt: new Date(), nodeId: 'n' }]);
const row = async (id: string) => (await db.sql`SELECT *, extract(epoch FROM not_before - now()) * 1000 AS due_in_ms FROM jobs WHERE id = ${id}`)[0]!;

test.serial('a failed attempt with retries left is queued again behind its back-off, and claimed only once due', async (t) => {
  const id = await queue({ retries: 2, maxAttempts: 1, retryBackoff: { seconds: 1n, nanos: 0 } });
  t.is((await claimJobs(db.sql, offer)).rows.length, 1);
  const [changed] = await finish(id, 1, EndReason.END_REASON_FAILED, 3);
  t.is(changed!.state, 'QUEUED');
  t.is(changed!.finished_by, 'n', 'the row names no node; finished_by says whose report it was');
  const queued = await row(id);
  t.is(queued.retries_used, 1);
  t.is(queued.node_id, null);
  t.is(queued.end_reason, null);
  t.true(queued.due_in_ms > 400 && queued.due_in_ms <= 1000, `due in ${queued.due_in_ms} ms: half of to all of 1 s`);
  // One back-off for every column: the whole queue timeout from when it is due, its place in the queue then.
  t.is(queued.queue_deadline.getTime() - queued.not_before.getTime(), 24 * 3600_000);
  t.is(queued.queue_key.getTime(), queued.not_before.getTime(), 'priority 0: keyed at its due time');
  t.is(queued.stdout_bytes, null, 'its output summary is the next attempt\'s');
  t.regex(queued.message, /^attempt 1 ended FAILED \(exit code 3\); retry 1 of 2/);
  const [history] = await db.sql`SELECT outcome, exit_code, ended_at FROM job_attempts WHERE job_id = ${id} AND attempt = 1`;
  t.deepEqual([history!.outcome, history!.exit_code, history!.ended_at !== null], ['FAILED', 3, true]);

  const early = await claimJobs(db.sql, offer);
  t.is(early.rows.length, 0, 'not before its back-off');
  t.true(early.nextDueInMs! > 0 && early.nextDueInMs! <= 1000, `the claim says when: ${early.nextDueInMs} ms`);

  await db.sql`UPDATE jobs SET not_before = now() - interval '1 ms' WHERE id = ${id}`;
  const due = await claimJobs(db.sql, offer);
  t.deepEqual(due.rows.map((r) => r.attempt), [2]);
  // max_attempts 1, yet its node's loss is judged against that budget alone: attempt 2 is its first.
  const [lost] = await loseAttempts(db.sql, { nodeId: 'n' });
  t.deepEqual([lost!.state, lost!.end_reason], ['FAILED', 'NODE_LOST'], 'one attempt allowed for lost nodes, and it was spent');
  t.is((await row(id)).retries_used, 1);
});

test.serial('a retry keeps the node-loss budget whole: with max_attempts 2, a lost retried attempt is queued again', async (t) => {
  const id = await queue({ retries: 1, maxAttempts: 2, retryBackoff: { seconds: 0n, nanos: 100_000_000 } });
  await claimJobs(db.sql, offer);
  await finish(id, 1, EndReason.END_REASON_TIMED_OUT);
  await db.sql`UPDATE jobs SET not_before = now() - interval '1 ms' WHERE id = ${id}`;
  await claimJobs(db.sql, offer);
  const [lost] = await loseAttempts(db.sql, { nodeId: 'n' });
  t.is(lost!.state, 'QUEUED');
  await claimJobs(db.sql, offer);
  const [ended] = await finish(id, 3, EndReason.END_REASON_FAILED, 1);
  t.deepEqual([ended!.state, ended!.end_reason, ended!.exit_code], ['FAILED', 'FAILED', 1], 'its one retry was spent');
});

test.serial('a job not due yet is not claimed, is not placed at submit, and the claim says when it is due', async (t) => {
  const id = await queue({ notBefore: new Date(Date.now() + 60_000) });
  const now = await queue({});
  const claim = await claimJobs(db.sql, offer);
  t.deepEqual(claim.rows.map((r) => r.id), [now]);
  t.true(claim.nextDueInMs! > 55_000 && claim.nextDueInMs! <= 60_000);
  const delayed = await row(id);
  t.is(delayed.state, 'QUEUED');
  // Its queue timeout counts from when it is due.
  t.true(delayed.queue_deadline.getTime() - delayed.not_before.getTime() === 24 * 3600_000);
  // Placed on a node at submit, with nothing queued ahead: still queued, as it is not due.
  await db.sql`DELETE FROM job_attempts`;
  await db.sql`DELETE FROM jobs`;
  const later = uuidv7();
  const { outcomes } = await insertJobs(db.sql, [{ ...specOf({ notBefore: new Date(Date.now() + 60_000) }), id: later, requestId: '' }], 1e9, new Map([[later, 'n']]));
  t.is(outcomes[0]!.kind === 'created' && outcomes[0]!.row.state, 'QUEUED');
  const placedNow = uuidv7();
  const direct = await insertJobs(db.sql, [{ ...specOf({}), id: placedNow, requestId: '' }], 1e9, new Map([[placedNow, 'n']]));
  t.is(direct.outcomes[0]!.kind === 'created' && direct.outcomes[0]!.row.state, 'QUEUED', 'the delayed job is queued ahead of it');
});

function specOf(partial: Partial<JobSpec>) {
  return validateSubmission(JobSpec.fromPartial({ command: ['true'], ...partial }), DEFAULT_SPEC_POLICY, runtimeTable(DEFAULT_RUNTIMES));
}
