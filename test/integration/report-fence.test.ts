// The node is part of every report's fence even when two nodes' reports about
// one attempt reach the same statement (a group commit takes many streams'
// reports at once): the impostor's report, first or not, neither applies nor
// shadows the real node's.
import test from 'ava';
import { v7 as uuidv7 } from 'uuid';
import { EndReason, JobSpec, LogStream } from '../../common/gen/grid/v1/job.js';
import { migrate } from '../../control-plane/db/migrate.js';
import { appendOutputs } from '../../control-plane/log-store.js';
import { claimJobs } from '../../control-plane/sql/claim-jobs.js';
import { finishAttempts } from '../../control-plane/sql/finish-attempts.js';
import { handBackAttempts } from '../../control-plane/sql/hand-back-attempts.js';
import { insertJobs } from '../../control-plane/sql/insert-jobs.js';
import { startAttempts } from '../../control-plane/sql/start-attempts.js';
import { runtimeTable, DEFAULT_RUNTIMES } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
});
test.after.always(async () => db?.drop());

async function jobOnNodeA() {
  const { spec, task } = validateSubmission(JobSpec.fromPartial({ command: ['true'] }), DEFAULT_SPEC_POLICY, runtimeTable(DEFAULT_RUNTIMES));
  const id = uuidv7();
  await insertJobs(db.sql, [{ id, spec, task, requestId: '' }], 1e9);
  const { rows } = await claimJobs(db.sql, [{ nodeId: 'node-a', free: { slots: 1, cpus: 1e6, memoryBytes: 2 ** 60 }, size: { cpus: 1e6, memoryBytes: 2 ** 60 } }]);
  const row = rows.find((r) => r.id === id)!;
  return { jobId: row.id, attempt: row.attempt };
}

test('an impostor\'s start, output and end in the same statement as the real node\'s change nothing of theirs', async (t) => {
  const attempt = await jobOnNodeA();
  const now = new Date();
  // The impostor first in each statement: before the fix it won the first-report-per-attempt rule.
  const started = await startAttempts(db.sql, [{ attempt, nodeId: 'node-b', startedAt: now }, { attempt, nodeId: 'node-a', startedAt: now }], 5000);
  t.deepEqual(started.map((r) => r.node_id), ['node-a']);

  const chunk = (text: string) => ({ stream: LogStream.LOG_STREAM_STDOUT, offset: 0n, data: Buffer.from(text), time: now, attempt: attempt.attempt });
  const stored = await appendOutputs(db.sql, [
    { attempt, nodeId: 'node-b', chunks: [chunk('FORGED LONGER OUTPUT\n')] },
    { attempt, nodeId: 'node-a', chunks: [chunk('real\n')] },
  ]);
  t.is(stored[0], undefined, 'the impostor\'s output is refused');
  t.deepEqual(stored[1]?.map((c) => Buffer.from(c.data).toString()), ['real\n']);
  const logs = await db.sql<{ data: Buffer }[]>`SELECT data FROM job_logs WHERE job_id = ${attempt.jobId} ORDER BY byte_offset`;
  t.deepEqual(logs.map((l) => l.data.toString()), ['real\n']);

  const end = (nodeId: string, reason: EndReason, exitCode: number) => ({ attempt, nodeId, reason, exitCode, message: nodeId, endedAt: now });
  const finished = await finishAttempts(db.sql, [end('node-b', EndReason.END_REASON_SUCCEEDED, 0), end('node-a', EndReason.END_REASON_FAILED, 3)]);
  t.deepEqual(finished.map((r) => [r.node_id, r.exit_code]), [['node-a', 3]]);
});

test('a hand-back is fenced as an end is: an impostor\'s or a stale attempt\'s changes nothing, the node\'s own requeues the job once', async (t) => {
  const attempt = await jobOnNodeA();
  const now = new Date();
  const back = (nodeId: string, a = attempt) => ({ attempt: a, nodeId, endedAt: now });
  t.is((await handBackAttempts(db.sql, [back('node-b'), back('node-a', { ...attempt, attempt: attempt.attempt + 1 })])).length, 0);
  const handed = await handBackAttempts(db.sql, [back('node-b'), back('node-a'), back('node-a')]);
  t.deepEqual(handed.map((r) => [r.state, r.node_id, r.handed_back_by]), [['QUEUED', null, 'node-a']]);
  t.is((await handBackAttempts(db.sql, [back('node-a')])).length, 0, 'a resent hand-back finds the job queued and changes nothing');
  const [row] = await db.sql<{ attempt: number; withdrawn_attempts: number; end_reason: string | null }[]>`
    SELECT attempt, withdrawn_attempts, end_reason FROM jobs WHERE id = ${attempt.jobId}`;
  t.deepEqual(row, { attempt: attempt.attempt, withdrawn_attempts: 1, end_reason: null });
  const [history] = await db.sql<{ outcome: string }[]>`SELECT outcome FROM job_attempts WHERE job_id = ${attempt.jobId} AND attempt = ${attempt.attempt}`;
  t.is(history!.outcome, 'HANDED_BACK');
});
