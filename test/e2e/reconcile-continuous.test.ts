// A dispatch claim that committed but whose reply never reached the control
// plane: the job is ASSIGNED in Postgres to a live, connected node that was
// never sent it. The proxy of test/helpers/pg-cutting-proxy.ts breaks the
// control plane's database connection at exactly that moment. Reconciling a
// node's attempts with Postgres only when it connects leaves such a job ASSIGNED
// for ever; the reconcile has to go on while the node is connected (its
// heartbeats say what it holds), so the assignment is sent again and the job
// runs: same attempt, not requeued, and exactly once.
import test from 'ava';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { isTerminal } from '../../common/job-state.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { startPgCuttingProxy } from '../helpers/pg-cutting-proxy.js';
import { clients, commandSpec, gridctl, sleep, startAgent, startControlPlane, waitForNodes, type Clients } from '../helpers/grid.js';

/** The job once it has ended, or as it is after `timeoutMs`. */
async function jobWhenEnded(api: Clients, jobId: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await api.jobs.getJob({ jobId })).job!;
    if (isTerminal(job.state) || Date.now() > deadline) return job;
    await sleep(50);
  }
}

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
    // Only a claim that returns a row is cut: the dispatch of this job.
    proxy.arm();
    const cutting = proxy.nextCut(10_000);
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['echo', 'hi']), requestId: '' });
    const cut = await cutting;

    // The claim that was cut returned this job and committed: Postgres (read
    // directly, not through the proxy) has it ASSIGNED to the node, attempt 1.
    t.is(cut.rows, 1);
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
