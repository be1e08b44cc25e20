// Dispatch end to end: slots are respected across agents, assignment is pushed
// (no polling interval), and a job submitted through one control plane is
// dispatched by another over the same Postgres.
import test from 'ava';
import { JobState, type Job } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import {
  clients,
  commandSpec,
  sleep,
  startAgent,
  startControlPlane,
  waitForJob,
  waitForNodes,
  type Clients,
  type ControlPlaneProcess,
  type RunningProcess,
} from '../helpers/grid.js';

let db: TestDatabase;
let cp: ControlPlaneProcess;
let agents: RunningProcess[] = [];
let api: Clients;
const NODES = [`slot-a-${process.pid}`, `slot-b-${process.pid}`];

test.before(async () => {
  db = await createTestDatabase();
  // A one-hour sweep: any dispatch that is not pushed would wait an hour.
  cp = await startControlPlane(db.url, ['--dispatch-sweep', '1h']);
  agents = NODES.map((id) => startAgent(cp.address, id, ['--slots', '1']));
  api = clients(cp.address);
  await waitForNodes(api, NODES);
});

test.after.always(async () => {
  api?.close();
  await Promise.all(agents.map((a) => a.stop()));
  await cp?.stop();
  await db?.drop();
});


async function waitFor(c: Clients, ids: string[], done: (jobs: Job[]) => boolean, what: string, timeoutMs = 20_000): Promise<Job[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const jobs = await Promise.all(ids.map(async (jobId) => (await c.jobs.getJob({ jobId })).job!));
    if (done(jobs)) return jobs;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}: ${jobs.map((j) => JobState[j.state]).join(', ')}`);
    await sleep(25);
  }
}

test.serial('two agents with one slot each run two jobs at the same time, and a third waits for a free slot', async (t) => {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await api.jobs.submitJob({ spec: commandSpec(['sleep', '30']), requestId: '' })).job!.id);
  const running = await waitFor(
    api,
    ids,
    (jobs) => jobs.filter((j) => j.state === JobState.JOB_STATE_RUNNING).length === 2,
    'two jobs run',
  );
  const [first, second] = running.filter((j) => j.state === JobState.JOB_STATE_RUNNING);
  t.not(first!.nodeId, second!.nodeId);
  t.deepEqual([first!.nodeId, second!.nodeId].sort(), [...NODES].sort());
  const third = running.find((j) => j.state !== JobState.JOB_STATE_RUNNING)!;
  t.is(third.state, JobState.JOB_STATE_QUEUED, 'a job beyond the free slots must stay queued');

  // Freeing a slot dispatches the queued job to that node.
  await api.jobs.cancelJob({ jobId: first!.id, grace: { seconds: 0n, nanos: 0 } });
  const after = await waitFor(api, [third.id], ([j]) => j!.state === JobState.JOB_STATE_RUNNING, 'the third job runs');
  t.is(after[0]!.nodeId, first!.nodeId);
  for (const id of [second!.id, third.id]) await api.jobs.cancelJob({ jobId: id, grace: { seconds: 0n, nanos: 0 } });
  await waitFor(api, ids, (jobs) => jobs.every((j) => j.state === JobState.JOB_STATE_CANCELLED), 'all are cancelled');
});

test.serial('submit → assignment is pushed: no polling interval in between', async (t) => {
  const delays: number[] = [];
  for (let i = 0; i < 10; i++) {
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' });
    const [done] = await waitFor(api, [job!.id], ([j]) => j!.state === JobState.JOB_STATE_SUCCEEDED, 'the job succeeds');
    delays.push(done!.assignedAt!.getTime() - done!.submittedAt!.getTime());
  }
  t.log(`submit→assign (ms): ${delays.join(', ')}`);
  // The sweep is one hour: anything not pushed would take that long.
  t.true(Math.max(...delays) < 1000, `assignment delays ${delays.join(', ')} ms`);
});

test.serial('a job submitted through a second control plane is dispatched by the one holding the agent', async (t) => {
  const other = await startControlPlane(db.url, ['--dispatch-sweep', '1h']);
  const otherApi = clients(other.address);
  try {
    const { job } = await otherApi.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' });
    const [done] = await waitFor(otherApi, [job!.id], ([j]) => j!.state === JobState.JOB_STATE_SUCCEEDED, 'the job succeeds');
    t.true(NODES.includes(done!.nodeId));
    t.true(done!.assignedAt!.getTime() - done!.submittedAt!.getTime() < 1000);
  } finally {
    otherApi.close();
    await other.stop();
  }
});

test.serial('a job that fits no node does not hold back a small job submitted after it', async (t) => {
  // Far more memory than either node offers: it waits for a node that has it.
  const big = (await api.jobs.submitJob({ spec: commandSpec(['true'], { resources: { cpus: 0, memoryBytes: 1n << 40n } }), requestId: '' })).job!;
  const small = (await api.jobs.submitJob({ spec: commandSpec(['echo', 'not blocked']), requestId: '' })).job!;
  const deadline = Date.now() + 15_000;
  let done: Job | undefined;
  while (Date.now() < deadline) {
    const job = (await api.jobs.getJob({ jobId: small.id })).job!;
    if (job.state === JobState.JOB_STATE_SUCCEEDED) {
      done = job;
      break;
    }
    await sleep(50);
  }
  t.truthy(done, 'the small job ran although a job ahead of it fits no node');
  t.is((await api.jobs.getJob({ jobId: big.id })).job!.state, JobState.JOB_STATE_QUEUED, 'the big one still waits');
  // And it says why, for `status` (written by the dispatcher's sweep).
  const waiting = await waitForJob(api, big.id, (j) => j.message.startsWith('waiting: '), 'the big job says why it waits', 15_000);
  t.regex(waiting.message, /^waiting: it asks for 1 CPU and 1024 GB of memory; no connected node has both \(the most any has: \S+ CPUs?, \S+ \S+\)$/);
  await api.jobs.cancelJob({ jobId: big.id, grace: undefined });
});
