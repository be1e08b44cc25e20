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
