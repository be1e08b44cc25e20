// Submits against a real control plane: SubmitJobs stores many jobs in one
// call with a result per request, and concurrent SubmitJob calls, committed
// together, each stay idempotent by their request id.
import test from 'ava';
import { Status } from 'nice-grpc';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { clients, commandSpec, startControlPlane, type Clients, type ControlPlaneProcess } from '../helpers/grid.js';

let db: TestDatabase;
let cp: ControlPlaneProcess;
let api: Clients;

test.before(async () => {
  db = await createTestDatabase();
  // No agent: jobs stay queued. A small queue limit to see admission per request.
  cp = await startControlPlane(db.url, ['--max-queued', '30']);
  api = clients(cp.address);
});

test.after.always(async () => {
  api?.close();
  await cp?.stop();
  await db?.drop();
});

test.serial('SubmitJobs: one result per request in order; a bad spec refuses only itself; a repeated request id is the same job', async (t) => {
  const { results } = await api.jobs.submitJobs({
    requests: [
      { spec: commandSpec(['true']), requestId: 'batch-a' },
      { spec: commandSpec([]), requestId: '' },
      { spec: commandSpec(['echo', 'two']), requestId: 'batch-b' },
      { spec: commandSpec(['true']), requestId: 'batch-a' },
    ],
  });
  t.is(results.length, 4);
  const [a, bad, b, again] = results.map((r) => r.outcome);
  t.is(a?.$case, 'job');
  t.is(b?.$case, 'job');
  t.is(bad?.$case, 'refused');
  if (bad?.$case === 'refused') {
    t.is(bad.value.code, Status.INVALID_ARGUMENT);
    t.regex(bad.value.message, /^requests\[1\]: spec\.command is empty/);
  }
  t.is(again?.$case, 'job');
  if (a?.$case === 'job' && again?.$case === 'job' && b?.$case === 'job') {
    t.is(again.value.id, a.value.id, 'the same request id within one call is one job');
    t.not(b.value.id, a.value.id);
    t.is(a.value.state, JobState.JOB_STATE_QUEUED);
    t.deepEqual(b.value.spec?.command, ['echo', 'two']);
    const { job } = await api.jobs.getJob({ jobId: b.value.id });
    t.is(job!.state, JobState.JOB_STATE_QUEUED, 'stored, as the result said');
  }
  const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM jobs WHERE request_id IN ('batch-a', 'batch-b')`;
  t.is(n, 2);
});

test.serial('SubmitJobs: an empty or oversized call is refused whole, with the limits in the message', async (t) => {
  const empty = await t.throwsAsync(api.jobs.submitJobs({ requests: [] }));
  t.regex(String(empty?.message), /requests holds 0 submissions: must be between 1 and 1000/);
  const many = Array.from({ length: 1001 }, () => ({ spec: commandSpec(['true']), requestId: '' }));
  const tooMany = await t.throwsAsync(api.jobs.submitJobs({ requests: many }));
  t.regex(String(tooMany?.message), /requests holds 1001 submissions/);
});

test.serial('concurrent submits committed together: each request id is one job, and a full queue refuses the rest with RESOURCE_EXHAUSTED', async (t) => {
  const [{ queued }] = await db.sql`SELECT count(*)::int AS queued FROM jobs WHERE state = 'QUEUED'`;
  const room = 30 - queued;
  // Twice each request id, all at once: they are grouped into shared commits.
  const calls = Array.from({ length: 2 * room + 10 }, (_, i) =>
    api.jobs.submitJob({ spec: commandSpec(['true']), requestId: `concurrent-${i % (room + 5)}` }).then(
      (r) => ({ id: r.job!.id, requestId: `concurrent-${i % (room + 5)}` }),
      (err: { code?: Status }) => ({ code: err.code }),
    ),
  );
  const outcomes = await Promise.all(calls);
  const created = outcomes.filter((o): o is { id: string; requestId: string } => 'id' in o);
  const refused = outcomes.filter((o) => 'code' in o);
  for (const r of refused) t.is((r as { code: Status }).code, Status.RESOURCE_EXHAUSTED);
  const byRequest = new Map<string, Set<string>>();
  for (const c of created) byRequest.set(c.requestId, (byRequest.get(c.requestId) ?? new Set()).add(c.id));
  for (const [requestId, ids] of byRequest) t.is(ids.size, 1, `${requestId} made one job`);
  t.true(byRequest.size <= room, 'never more jobs than the queue had room for');
  const [{ after }] = await db.sql`SELECT count(*)::int AS after FROM jobs WHERE state = 'QUEUED'`;
  t.is(after, queued + byRequest.size);
  t.true(after <= 30);
});

test.serial('a job queued while no node is connected says so in its message, for status', async (t) => {
  // The queue is full by now (the test before filled it): any of its jobs will do.
  const [queued] = await db.sql<{ id: string }[]>`SELECT id FROM jobs WHERE state = 'QUEUED' ORDER BY id LIMIT 1`;
  const job = { id: queued!.id };
  const deadline = Date.now() + 15_000;
  let message = '';
  while (Date.now() < deadline && !message.startsWith('waiting: ')) {
    message = (await api.jobs.getJob({ jobId: job!.id })).job!.message;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.is(message, 'waiting: no node is connected');
  const after = (await api.jobs.getJob({ jobId: job!.id })).job!;
  t.is(after.state, JobState.JOB_STATE_QUEUED);
});
