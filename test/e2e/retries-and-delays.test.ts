// Retries on failure and delayed starts against real processes: a job that
// fails twice and then succeeds with --retries 3 ends SUCCEEDED on attempt 3,
// each attempt's exit code and logs kept; one that keeps failing ends FAILED
// once its retries are spent; a job given --in 2s starts no earlier than 2 s
// after its submit, woken when due (the dispatch sweep is set to an hour).
import test from 'ava';
import { EndReason, JobState } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { clients, gridctl, jobWhenEnded, startAgent, startControlPlane, waitForNodes } from '../helpers/grid.js';

let db: TestDatabase;
let cp: Awaited<ReturnType<typeof startControlPlane>>;
let agent: ReturnType<typeof startAgent>;
const node = `retry-${process.pid}`;
test.before(async () => {
  db = await createTestDatabase();
  cp = await startControlPlane(db.url, ['--dispatch-sweep', '1h']);
  agent = startAgent(cp.address, node, ['--slots', '4', '--cpus', '4']);
  const api = clients(cp.address);
  await waitForNodes(api, [node]);
  api.close();
});
test.after.always(async () => {
  await agent?.stop();
  await cp?.stop();
  await db?.drop();
});

async function logsOf(api: ReturnType<typeof clients>, jobId: string, attempt: number): Promise<string> {
  let text = '';
  for await (const { chunk } of api.jobs.readJobLogs({ jobId, attempt })) text += chunk!.data.toString();
  return text;
}

test('a job failing twice then succeeding with --retries 3 ends SUCCEEDED on attempt 3, each attempt\'s exit code and logs kept', async (t) => {
  const api = clients(cp.address);
  try {
    const script = 'echo "this is attempt $GRID_ATTEMPT"; case "$GRID_ATTEMPT" in 1) exit 11;; 2) exit 12;; esac';
    const run = await gridctl(cp.address, ['run', '--retries', '3', '--retry-backoff', '200ms', '--', 'sh', '-c', script]);
    t.is(run.code, 0, run.stderr.toString());
    const stderr = run.stderr.toString();
    // A follower sees whole jobs by version, and may skip a short-lived one: not every "queued again" need show.
    t.regex(stderr, /running on \S+ \(attempt 3\)/);
    t.regex(stderr, /succeeded on attempt 3, after 2 retries/);
    const id = /grid: job (\S+) queued/.exec(stderr)![1]!;
    const { job, attempts } = await api.jobs.getJob({ jobId: id });
    t.is(job!.state, JobState.JOB_STATE_SUCCEEDED);
    t.is(job!.attempt, 3);
    t.is(job!.retriesUsed, 2);
    t.is(job!.exitCode, 0);
    t.deepEqual(
      attempts.map((a) => [a.attempt, a.endReason, a.exitCode]),
      [
        [1, EndReason.END_REASON_FAILED, 11],
        [2, EndReason.END_REASON_FAILED, 12],
        [3, EndReason.END_REASON_SUCCEEDED, 0],
      ],
    );
    for (const n of [1, 2, 3]) t.is(await logsOf(api, id, n), `this is attempt ${n}\n`, `attempt ${n}'s own log`);
    // Each retry waited its back-off after the attempt before it: at least half of 200 ms, then of 400 ms.
    t.true(attempts[1]!.assignedAt!.getTime() - attempts[0]!.endedAt!.getTime() >= 100);
    t.true(attempts[2]!.assignedAt!.getTime() - attempts[1]!.endedAt!.getTime() >= 200);
    const status = await gridctl(cp.address, ['status', id]);
    t.regex(status.stdout.toString(), /Attempt: +3 \(2 of 3 retries used\)/);
    t.regex(status.stdout.toString(), /^ +2 +\S+ +FAILED \(exit code 12\)/m);
  } finally {
    api.close();
  }
});

test('a job that keeps failing ends FAILED with its last exit code once its retries are spent', async (t) => {
  const api = clients(cp.address);
  try {
    const run = await gridctl(cp.address, ['run', '-d', '--retries', '1', '--retry-backoff', '100ms', '--', 'sh', '-c', 'exit 7']);
    const job = await jobWhenEnded(api, run.stdout.toString().trim(), 30_000);
    t.is(job.state, JobState.JOB_STATE_FAILED);
    t.is(job.endReason, EndReason.END_REASON_FAILED);
    t.is(job.exitCode, 7);
    t.is(job.attempt, 2);
    t.is(job.retriesUsed, 1);
    t.is(job.attemptsCounted, 1, 'of max_attempts (the budget for lost nodes) only the last attempt counts: not the one retried');
  } finally {
    api.close();
  }
});

test('a job given --in 2s starts no earlier than 2 s after its submit, and soon after that', async (t) => {
  const api = clients(cp.address);
  try {
    const run = await gridctl(cp.address, ['run', '-d', '--in', '2s', '--', 'true']);
    const id = run.stdout.toString().trim();
    const queued = (await api.jobs.getJob({ jobId: id })).job!;
    t.is(queued.state, JobState.JOB_STATE_QUEUED, 'not placed on the idle node at once');
    t.truthy(queued.notBefore);
    const job = await jobWhenEnded(api, id, 30_000);
    t.is(job.state, JobState.JOB_STATE_SUCCEEDED);
    const due = job.submittedAt!.getTime() + 2000;
    // The not-before time is the caller's clock (this host's, as the database's); allow 100 ms between them.
    t.true(job.assignedAt!.getTime() >= due - 100, `assigned ${job.assignedAt!.getTime() - job.submittedAt!.getTime()} ms after submit`);
    t.true(job.assignedAt!.getTime() < due + 3000, 'woken when due, not by the hourly sweep');
  } finally {
    api.close();
  }
});
