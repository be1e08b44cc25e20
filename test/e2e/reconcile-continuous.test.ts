// A dispatch claim that committed but whose reply never reached the control
// plane: the job is ASSIGNED in Postgres to a live, connected node that was
// never sent it. The proxy of test/helpers/pg-cutting-proxy.ts breaks the
// control plane's database connection at exactly that moment. Reconciling a
// node's attempts with Postgres only when it connects leaves such a job ASSIGNED
// for ever; the reconcile has to go on while the node is connected (its
// heartbeats say what it holds), so the assignment is sent again and the job
// runs: same attempt, not requeued, and exactly once. A node that reconnects
// meanwhile is sent it on connect; and until the node is reconciled its free
// capacity is unknown, so no other job takes the slot the lost claim holds.
// The same holds for a submit placed at once (its insert is its claim).
import test from 'ava';
import { ClientError, Status } from 'nice-grpc';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { startPgCuttingProxy } from '../helpers/pg-cutting-proxy.js';
import { clients, commandSpec, gridctl, jobWhenEnded, startAgent, startControlPlane, waitForNodes } from '../helpers/grid.js';

test('a claim committed whose reply was lost: the connected node is sent the job anyway and it succeeds, attempt 1', async (t) => {
  const db = await createTestDatabase();
  const upstream = new URL(db.url);
  const proxy = await startPgCuttingProxy({ host: upstream.hostname, port: Number(upstream.port) });
  const cp = await startControlPlane(proxy.urlFor(db.url));
  const node = `reconcile-${process.pid}`;
  const agent = startAgent(cp.address, node, ['--slots', '1']);
  const api = clients(cp.address);
  try {
    await waitForNodes(api, [node]);
    // The node's one slot is taken (placed at submit), so this job is queued and
    // dispatched by a claim when it frees: only that claim is cut.
    await holdTheSlot(api);
    proxy.arm();
    const cutting = proxy.nextCut(10_000);
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['echo', 'hi']), requestId: '' });
    t.is(job!.state, JobState.JOB_STATE_QUEUED);
    const cut = await cutting;

    // The claim that was cut returned this job and committed: Postgres (read
    // directly, not through the proxy) has it ASSIGNED to the node, attempt 1.
    t.is(cut.rows, 1);
    t.is(cut.kind, 'claim');
    t.true(cut.reply.includes(Buffer.from(job!.id)), 'the withheld reply is the claim of this job');
    const [row] = await db.sql`SELECT state, node_id, attempt FROM jobs WHERE id = ${job!.id}`;
    t.deepEqual([row!.state, row!.node_id, row!.attempt], ['ASSIGNED', node, 1], 'the claim committed');
    const history = await db.sql`SELECT attempt, node_id FROM job_attempts WHERE job_id = ${job!.id}`;
    t.deepEqual(history.map((a) => [a.attempt, a.node_id]), [[1, node]]);

    // The node stays connected and heartbeating throughout; nothing else happens to it.
    const final = await jobWhenEnded(api, job!.id, 15_000);
    t.log(`after the cut claim, the job was ${JobState[final.state]} ${Date.now() - cut.at} ms later`);
    t.is(JobState[final.state], JobState[JobState.JOB_STATE_SUCCEEDED], 'the job ran although its claim\'s reply was lost');
    t.is(final.attempt, 1, 'the same attempt was sent again, not requeued as a new one');
    t.is(final.nodeId, node);
    t.is((await gridctl(cp.address, ['logs', job!.id])).stdout.toString(), 'hi\n');
    const attempts = await db.sql`SELECT attempt, node_id, outcome FROM job_attempts WHERE job_id = ${job!.id}`;
    t.deepEqual(attempts.map((a) => [a.attempt, a.node_id, a.outcome]), [[1, node, 'SUCCEEDED']]);
    t.is(proxy.cuts.length, 1, 'exactly one claim was cut');
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
    await proxy.close();
    await db.drop();
  }
});

/** Takes a one-slot node's slot for a moment: a job submitted now queues, and a claim dispatches it. */
async function holdTheSlot(api: ReturnType<typeof clients>): Promise<void> {
  const { job } = await api.jobs.submitJob({ spec: commandSpec(['sleep', '1']), requestId: '' });
  // Placed at submit, or claimed an instant later.
  for (let i = 0; i < 100; i++) {
    const { job: now } = await api.jobs.getJob({ jobId: job!.id });
    if (now!.state !== JobState.JOB_STATE_QUEUED) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the job meant to take the slot was not dispatched within 2 s');
}

/** Submits short jobs until one is placed at submit (no pass was in flight), waits for it to end; how many it submitted. */
async function untilPlacedAtOnce(api: ReturnType<typeof clients>): Promise<number> {
  for (let i = 1; i <= 50; i++) {
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' });
    await jobWhenEnded(api, job!.id, 15_000);
    if (job!.state === JobState.JOB_STATE_ASSIGNED) return i;
  }
  throw new Error('no job was placed at submit in 50 tries');
}

/** A control plane reaching Postgres through the cutting proxy, and a one-slot agent. */
async function cutClaimGrid(cpArgs: string[] = []) {
  const db = await createTestDatabase();
  const upstream = new URL(db.url);
  const proxy = await startPgCuttingProxy({ host: upstream.hostname, port: Number(upstream.port) });
  const cp = await startControlPlane(proxy.urlFor(db.url), cpArgs);
  const node = `reconcile-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  let agent = startAgent(cp.address, node, ['--slots', '1']);
  const api = clients(cp.address);
  await waitForNodes(api, [node]);
  return {
    db, cp, node, api, proxy,
    async restartAgent() {
      agent.child.kill('SIGKILL');
      await agent.stop();
      agent = startAgent(cp.address, node, ['--slots', '1']);
    },
    async close() {
      api.close();
      await agent.stop();
      await cp.stop();
      await proxy.close();
      await db.drop();
    },
  };
}

test('a lost claim\'s job is sent on connect when its node reconnects before any continuous pass', async (t) => {
  // No continuous pass within the test: only the reconcile of the agent's hello can send it.
  const grid = await cutClaimGrid(['--reconcile-interval', '1h']);
  try {
    await holdTheSlot(grid.api);
    grid.proxy.arm();
    const cutting = grid.proxy.nextCut(10_000);
    const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['echo', 'sent on connect']), requestId: '' });
    await cutting;
    await grid.restartAgent();
    const final = await jobWhenEnded(grid.api, job!.id, 15_000);
    t.is(JobState[final.state], JobState[JobState.JOB_STATE_SUCCEEDED]);
    t.is(final.attempt, 1);
    t.is((await gridctl(grid.cp.address, ['logs', job!.id])).stdout.toString(), 'sent on connect\n');
  } finally {
    await grid.close();
  }
});

test('the slot a lost claim holds is not given to another job: on a one-slot node the two never run at once', async (t) => {
  const grid = await cutClaimGrid();
  try {
    await holdTheSlot(grid.api);
    grid.proxy.arm();
    const cutting = grid.proxy.nextCut(10_000);
    const first = (await grid.api.jobs.submitJob({ spec: commandSpec(['sleep', '2']), requestId: '' })).job!;
    await cutting;
    const second = (await grid.api.jobs.submitJob({ spec: commandSpec(['sleep', '2']), requestId: '' })).job!;
    const [a, b] = [await jobWhenEnded(grid.api, first.id, 20_000), await jobWhenEnded(grid.api, second.id, 20_000)];
    t.is(JobState[a.state], JobState[JobState.JOB_STATE_SUCCEEDED]);
    t.is(JobState[b.state], JobState[JobState.JOB_STATE_SUCCEEDED]);
    const overlap = Math.min(a.endedAt!.getTime(), b.endedAt!.getTime()) - Math.max(a.startedAt!.getTime(), b.startedAt!.getTime());
    t.log(`the lost claim's job ran ${a.startedAt!.toISOString()}–${a.endedAt!.toISOString()}, the next one ${b.startedAt!.toISOString()}–${b.endedAt!.toISOString()}`);
    t.true(overlap <= 0, `the two jobs ran at once for ${overlap} ms on a one-slot node`);
  } finally {
    await grid.close();
  }
});

test('a submit placed at once whose reply was lost: the node is sent the job anyway, attempt 1, and a retry of the submit answers that job', async (t) => {
  // A node being claimed for is not placed on: a pass in flight as the job is
  // submitted (the node's connect pass, slow under a loaded CI run, or a safety
  // sweep) would queue it, and the claim, not the insert, would be cut. So no
  // sweep within the test, and the node has taken a placement before the cut.
  const grid = await cutClaimGrid(['--dispatch-sweep', '1h']);
  try {
    const probes = await untilPlacedAtOnce(grid.api);
    // The slot is free: the submit's own insert stores the job ASSIGNED, and that reply is cut.
    grid.proxy.arm();
    const cutting = grid.proxy.nextCut(10_000);
    const spec = commandSpec(['echo', 'placed at once']);
    const submitted = grid.api.jobs.submitJob({ spec, requestId: 'placed-and-cut' });
    const cut = await cutting;
    t.is(cut.kind, 'insert');
    const refused = await submitted.then(() => undefined, (err: ClientError) => err);
    t.is(refused?.code, Status.UNAVAILABLE, 'the caller is told to retry');
    const { job } = await grid.api.jobs.submitJob({ spec, requestId: 'placed-and-cut' });
    t.true(cut.reply.includes(Buffer.from(job!.id)), 'the withheld reply is the insert of this job');
    const final = await jobWhenEnded(grid.api, job!.id, 15_000);
    t.is(JobState[final.state], JobState[JobState.JOB_STATE_SUCCEEDED]);
    t.is(final.attempt, 1, 'the same attempt was sent, not requeued as a new one');
    t.is(final.nodeId, grid.node);
    t.is((await gridctl(grid.cp.address, ['logs', job!.id])).stdout.toString(), 'placed at once\n');
    const attempts = await grid.db.sql`SELECT attempt, node_id, outcome FROM job_attempts WHERE job_id = ${job!.id}`;
    t.deepEqual(attempts.map((a) => [a.attempt, a.node_id, a.outcome]), [[1, grid.node, 'SUCCEEDED']]);
    t.is((await grid.db.sql`SELECT count(*)::int AS n FROM jobs`)[0]!.n, probes + 1, 'one job, though submitted twice');
  } finally {
    await grid.close();
  }
});
