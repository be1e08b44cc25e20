// Placement by node labels against real agents: a job with --constraint runs
// only on a node whose labels hold it (= and !=), one with --prefer goes to a
// matching node while it has room; a job that no ready node can satisfy says
// so in GetJob and gridctl status, and runs as soon as an agent with the label
// connects. gridctl refuses a constraint that is not KEY=VALUE with exit 125.
import test from 'ava';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { clients, gridctl, jobWhenEnded, startAgent, startControlPlane, waitForJob, waitForNodes } from '../helpers/grid.js';
import { createTestDatabase } from '../helpers/postgres.js';

/** Two agents, gpu=true,region=eu and region=us; node ids unique per grid (tests run at once). */
async function placementGrid() {
  const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const [GPU, PLAIN, MARS] = [`gpu-${suffix}`, `plain-${suffix}`, `mars-${suffix}`];
  const db = await createTestDatabase();
  const cp = await startControlPlane(db.url);
  const agents = [
    startAgent(cp.address, GPU, ['--slots', '4', '--labels', 'gpu=true,region=eu']),
    startAgent(cp.address, PLAIN, ['--slots', '4', '--labels', 'region=us']),
  ];
  const api = clients(cp.address);
  await waitForNodes(api, [GPU, PLAIN]);
  return {
    db, cp, api, agents, GPU, PLAIN, MARS,
    async close() {
      api.close();
      await Promise.all(agents.map((a) => a.stop()));
      await cp.stop();
      await db.drop();
    },
  };
}

/** `gridctl run -d` with these flags; the job's id. */
async function submit(address: string, flags: string[]): Promise<string> {
  const run = await gridctl(address, ['run', '-d', ...flags, '--', 'true']);
  if (run.code !== 0) throw new Error(`gridctl run failed: ${run.stderr}`);
  return run.stdout.toString().trim();
}

test('constraints choose the node: gpu=true only on the gpu node, region!=eu only elsewhere, and --prefer leans', async (t) => {
  const grid = await placementGrid();
  const { GPU, PLAIN } = grid;
  try {
    const gpu = await Promise.all(Array.from({ length: 6 }, () => submit(grid.cp.address, ['--constraint', 'gpu=true'])));
    const notEu = await Promise.all(Array.from({ length: 6 }, () => submit(grid.cp.address, ['--constraint', 'region!=eu'])));
    const nodesOf = async (ids: string[]) => (await Promise.all(ids.map((id) => jobWhenEnded(grid.api, id, 30_000)))).map((j) => [JobState[j.state], j.nodeId]);
    t.deepEqual(await nodesOf(gpu), gpu.map(() => ['JOB_STATE_SUCCEEDED', GPU]));
    t.deepEqual(await nodesOf(notEu), notEu.map(() => ['JOB_STATE_SUCCEEDED', PLAIN]));
    const stored = (await grid.api.jobs.getJob({ jobId: gpu[0]! })).job!.spec!;
    t.deepEqual(stored.constraints, [{ key: 'gpu', operator: 1, value: 'true' }], 'the spec keeps its constraints');

    // Both nodes idle and equal: spreading alone would pick by id; the affinity decides.
    const preferred = await submit(grid.cp.address, ['--prefer', `region=us`]);
    t.is((await jobWhenEnded(grid.api, preferred, 30_000)).nodeId, PLAIN);
    const preferredGpu = await submit(grid.cp.address, ['--prefer', 'gpu=true']);
    t.is((await jobWhenEnded(grid.api, preferredGpu, 30_000)).nodeId, GPU);
  } finally {
    await grid.close();
  }
});

test('a constraint no ready node holds: the job says so, then runs on the first agent that has the label', async (t) => {
  const grid = await placementGrid();
  const { MARS } = grid;
  try {
    const id = await submit(grid.cp.address, ['--constraint', 'zone=mars']);
    const queued = await waitForJob(grid.api, id, (j) => j.state === JobState.JOB_STATE_QUEUED && j.waitingReason !== '', 'a reason');
    t.is(queued.waitingReason, 'needs a node with zone=mars; none of the 2 ready nodes has it (agent --labels)');
    const status = await gridctl(grid.cp.address, ['status', id]);
    t.regex(status.stdout.toString(), /Reason:\s+needs a node with zone=mars; none of the 2 ready nodes has it/);
    // Other work is not held back by it.
    const other = await submit(grid.cp.address, []);
    t.is(JobState[(await jobWhenEnded(grid.api, other, 30_000)).state], 'JOB_STATE_SUCCEEDED');
    t.is((await grid.api.jobs.getJob({ jobId: id })).job!.state, JobState.JOB_STATE_QUEUED);

    grid.agents.push(startAgent(grid.cp.address, MARS, ['--slots', '1', '--labels', 'zone=mars']));
    const ran = await jobWhenEnded(grid.api, id, 30_000);
    t.deepEqual([JobState[ran.state], ran.nodeId], ['JOB_STATE_SUCCEEDED', MARS]);
  } finally {
    await grid.close();
  }
});

test('gridctl refuses a constraint that is not KEY=VALUE or KEY!=VALUE, before anything is sent', async (t) => {
  const run = await gridctl('127.0.0.1:1', ['run', '--constraint', 'gpu', '--', 'true']);
  t.is(run.code, 125);
  t.regex(run.stderr.toString(), /--constraint "gpu" is not KEY=VALUE or KEY!=VALUE/);
});
