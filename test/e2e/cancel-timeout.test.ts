// Cancellation and timeouts end to end: preemptive kills of CPU-bound work that
// ignores SIGTERM, typed end reasons, queue limits, and a cancel racing a job's
// own exit — always exactly one terminal state, and the watch stream's final
// event is that state.
import test from 'ava';
import Docker from 'dockerode';
import { ClientError, Status } from 'nice-grpc';
import { EndReason, JobState } from '../../common/gen/grid/v1/job.js';
import { msToDuration } from '../../common/units.js';
import { createTestDatabase } from '../helpers/postgres.js';
import {
  clients,
  commandSpec,
  gridctl,
  PYTHON,
  sleep,
  startAgent,
  startControlPlane,
  waitForJob,
  waitForNodes,
  useGrid,
} from '../helpers/grid.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const NODE = `cancel-${process.pid}`;
const grid = useGrid(test, { nodeId: NODE, agentArgs: ['--slots', '8', '--cpus', '8'] });

/** Resolves with the time the job's container stopped running (or vanished). */
async function containerGone(jobId: string): Promise<number> {
  for (;;) {
    const [c] = await docker.listContainers({ all: true, filters: { label: [`dev.grid.job-id=${jobId}`] } });
    if (!c || c.State !== 'running') return Date.now();
    await sleep(20);
  }
}

const BUSY_IGNORING_TERM = ['sh', '-c', "trap '' TERM; while :; do :; done"];

for (const [graceArg, graceMs] of [['3s', 3000], ['0s', 0]] as const) {
  test.serial(`a CPU-bound job ignoring SIGTERM is gone within grace + 1 s of a cancel (grace ${graceArg})`, async (t) => {
    const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(BUSY_IGNORING_TERM, { resources: { cpus: 0.5, memoryBytes: 0n } }), requestId: '' });
    await waitForJob(grid.api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs');
    await sleep(300);
    // Timed from the cancel reaching the control plane (not from a CLI's start-up).
    const cancelledAt = Date.now();
    const gone = containerGone(job!.id);
    await grid.api.jobs.cancelJob({ jobId: job!.id, grace: msToDuration(graceMs) });
    const goneAfter = (await gone) - cancelledAt;
    t.log(`container gone ${goneAfter} ms after the cancel (grace ${graceMs} ms)`);
    t.true(goneAfter <= graceMs + 1000, `gone after ${goneAfter} ms`);
    if (graceMs > 0) t.true(goneAfter >= graceMs - 100, 'the grace was honoured before SIGKILL');
    const cancel = await gridctl(grid.cp.address, ['cancel', job!.id, '--grace', graceArg, '--wait']);
    t.is(cancel.code, 130, cancel.stderr.toString());
    const final = (await grid.api.jobs.getJob({ jobId: job!.id })).job!;
    t.is(final.state, JobState.JOB_STATE_CANCELLED);
    t.is(final.endReason, EndReason.END_REASON_CANCELLED);
  });
}

test.serial('a job with a 2 s timeout running sleep 60 ends TIMED_OUT in 2–4 s and its container is gone', async (t) => {
  const started = Date.now();
  const run = await gridctl(grid.cp.address, ['run', '--timeout', '2s', '--', 'sleep', '60']);
  const took = Date.now() - started;
  t.is(run.code, 124, run.stderr.toString());
  t.regex(run.stderr.toString(), /ended FAILED \(TIMED_OUT\): stopped after its timeout of 2s/);
  const [job] = (await grid.api.jobs.listJobs({ states: [JobState.JOB_STATE_FAILED], pageSize: 1, pageToken: '' })).jobs;
  t.is(job!.endReason, EndReason.END_REASON_TIMED_OUT);
  const ran = job!.endedAt!.getTime() - job!.startedAt!.getTime();
  t.log(`ran ${ran} ms; gridctl returned after ${took} ms`);
  t.true(ran >= 2000 && ran <= 4000, `ran ${ran} ms`);
  // Not running any more the moment the job has ended; removed right after its end is acknowledged.
  const [left] = await docker.listContainers({ all: true, filters: { label: [`dev.grid.job-id=${job!.id}`] } });
  t.not(left?.State, 'running');
  for (let i = 0; i < 100 && (await docker.listContainers({ all: true, filters: { label: [`dev.grid.job-id=${job!.id}`] } })).length > 0; i++) await sleep(50);
  t.deepEqual(await docker.listContainers({ all: true, filters: { label: [`dev.grid.job-id=${job!.id}`] } }), []);
});

test.serial('a job that allocates past its memory limit ends OOM_KILLED', async (t) => {
  const run = await gridctl(grid.cp.address, [
    'run', '--image', PYTHON, '--memory', '32m', '--', 'python3', '-c', 'a = bytearray(256 * 1024 * 1024); print(len(a))',
  ]);
  t.is(run.code, 137, run.stderr.toString());
  t.regex(run.stderr.toString(), /OOM_KILLED/);
  const [job] = (await grid.api.jobs.listJobs({ states: [JobState.JOB_STATE_FAILED], pageSize: 1, pageToken: '' })).jobs;
  t.is(job!.endReason, EndReason.END_REASON_OOM_KILLED);
});

test.serial('cancelling a queued job ends it at once; cancelling a finished one changes nothing, twice', async (t) => {
  // No slot can take a job this large: it stays queued.
  const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['true'], { resources: { cpus: 200, memoryBytes: 0n } }), requestId: '' });
  const cancelled = (await grid.api.jobs.cancelJob({ jobId: job!.id, grace: undefined })).job!;
  t.is(cancelled.state, JobState.JOB_STATE_CANCELLED);
  t.is(cancelled.endReason, EndReason.END_REASON_CANCELLED);
  t.is(cancelled.startedAt, undefined, 'it never started');

  const done = await gridctl(grid.cp.address, ['run', '-d', '--', 'true']);
  const id = done.stdout.toString().trim();
  await waitForJob(grid.api, id, (j) => j.state === JobState.JOB_STATE_SUCCEEDED, 'the job succeeds');
  for (let i = 0; i < 2; i++) {
    const again = (await grid.api.jobs.cancelJob({ jobId: id, grace: undefined })).job!;
    t.is(again.state, JobState.JOB_STATE_SUCCEEDED);
    t.is(again.endReason, EndReason.END_REASON_SUCCEEDED);
  }
  const twice = await gridctl(grid.cp.address, ['cancel', job!.id]);
  t.is(twice.code, 0);
  t.regex(twice.stderr.toString(), /is CANCELLED/);
});

test.serial('race, 100 times: a cancel sent as a short job exits — one terminal state, and the watch ends on it', async (t) => {
  t.timeout(300_000);
  const outcomes: Record<string, number> = {};
  // In waves the size of the node's slots, so no race waits behind a long queue.
  const race = async (i: number) => {
      const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['sh', '-c', 'sleep 0.2'], { resources: { cpus: 0.1, memoryBytes: 0n } }), requestId: '' });
      const jobId = job!.id;
      let cancelled: Promise<unknown> | undefined;
      const watched = (async () => {
        let last;
        for await (const { event } of grid.api.jobs.watchJob({ jobId, includeLogs: false, stdoutOffset: 0n, stderrOffset: 0n, attempt: 0 })) {
          last = event;
          // Aim the cancel around the moment the 0.2 s job's end is committed (its exit,
          // plus the agent's wait and report): the cancel's commit and the end's race.
          if (event?.$case === 'job' && event.value.state === JobState.JOB_STATE_RUNNING && !cancelled) {
            cancelled = sleep(150 + (i % 20) * 40).then(() => grid.api.jobs.cancelJob({ jobId, grace: msToDuration(i % 2 === 0 ? 0 : 5000) }));
          }
        }
        return last;
      })();
      const last = await watched;
      await cancelled;
      const final = (await grid.api.jobs.getJob({ jobId })).job!;
      t.truthy(cancelled, 'the watch saw the job running and sent the cancel');
      t.is(last?.$case, 'ended');
      t.is(last?.$case === 'ended' ? last.value.state : undefined, final.state, `watch of job ${jobId} ended on its stored state`);
      t.is(last?.$case === 'ended' ? last.value.endReason : undefined, final.endReason);
      outcomes[EndReason[final.endReason]] = (outcomes[EndReason[final.endReason]] ?? 0) + 1;
  };
  for (let wave = 0; wave < 100; wave += 8) {
    await Promise.all(Array.from({ length: Math.min(8, 100 - wave) }, (_, k) => race(wave + k)));
  }
  const rows = await grid.db.sql`
    SELECT j.state, j.end_reason, (SELECT count(*)::int FROM job_attempts a WHERE a.job_id = j.id AND a.outcome IS NOT NULL) AS ended_attempts
    FROM jobs j WHERE j.spec IS NOT NULL AND j.id IN (SELECT job_id FROM job_attempts)`;
  for (const r of rows) t.is(r.ended_attempts, 1);
  t.log(`outcomes: ${JSON.stringify(outcomes)}`);
});

test.serial('queue timeout with no agent connected ends QUEUE_TIMEOUT; past the queue depth limit, RESOURCE_EXHAUSTED and nothing stored', async (t) => {
  const lonelyDb = await createTestDatabase();
  const lonely = await startControlPlane(lonelyDb.url, ['--max-queued', '3']);
  const lonelyApi = clients(lonely.address);
  try {
    const run = await gridctl(lonely.address, ['run', '--queue-timeout', '1s', '--', 'true']);
    t.is(run.code, 123, run.stderr.toString());
    t.regex(run.stderr.toString(), /QUEUE_TIMEOUT/);

    for (let i = 0; i < 3; i++) await lonelyApi.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' });
    const err = await t.throwsAsync(lonelyApi.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' }), { instanceOf: ClientError });
    t.is((err as ClientError).code, Status.RESOURCE_EXHAUSTED);
    t.regex((err as ClientError).details, /the queue is full: it holds 3 jobs, this server's limit \(--max-queued\)/);
    const { jobs } = await lonelyApi.jobs.listJobs({ states: [], pageSize: 100, pageToken: '' });
    t.is(jobs.length, 4, 'the refused submission stored nothing');
  } finally {
    lonelyApi.close();
    await lonely.stop();
    await lonelyDb.drop();
  }
});

test.serial('cancelling a running job whose agent is disconnected: kept in Postgres, delivered when the agent reconnects', async (t) => {
  // A control plane of its own, whose only node is the one going away.
  const ownDb = await createTestDatabase();
  const own = await startControlPlane(ownDb.url);
  const ownApi = clients(own.address);
  const node = `away-${process.pid}`;
  let away = startAgent(own.address, node, ['--slots', '1']);
  try {
    await waitForNodes(ownApi, [node]);
    const { job } = await ownApi.jobs.submitJob({ spec: commandSpec(BUSY_IGNORING_TERM), requestId: '' });
    const running = await waitForJob(ownApi, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'it runs');
    t.is(running.nodeId, node);
    away.child.kill('SIGKILL');
    await away.stop();
    const cancelling = (await ownApi.jobs.cancelJob({ jobId: job!.id, grace: msToDuration(0) })).job!;
    t.is(cancelling.state, JobState.JOB_STATE_CANCELLING);
    await sleep(500);
    const [c] = await docker.listContainers({ filters: { label: [`dev.grid.job-id=${job!.id}`] } });
    t.is(c?.State, 'running', 'nobody could stop it while its agent was away');

    away = startAgent(own.address, node, ['--slots', '1']);
    const final = await waitForJob(ownApi, job!.id, (j) => j.state === JobState.JOB_STATE_CANCELLED, 'the cancel is delivered');
    t.is(final.endReason, EndReason.END_REASON_CANCELLED);
    t.is(final.attempt, 1);
    await containerGone(job!.id);
  } finally {
    ownApi.close();
    await away.stop();
    await own.stop();
    await ownDb.drop();
  }
});

