// Verdicts about nodes across replicas, after a database outage. Every replica
// judges the nodes nobody has heard from past the reconnect grace, from the
// last_seen_at the replicas persist. After an outage all of them are stale: a
// replica must not judge another's nodes before that one had a grace to write
// again. And should a connected node be judged elsewhere all the same, the
// replica holding its stream must notice (its heartbeat writes stop taking)
// and have the agent reconnect, rather than go on dispatching to a node the
// database calls LOST. The fault test found both (a node flapping LOST every
// second, its attempts lost again and again).
import test from 'ava';
import postgres from 'postgres';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { NodeState } from '../../common/gen/grid/v1/node.js';
import { blackHoleProxy } from '../helpers/black-hole-proxy.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { startPrivatePostgres } from '../helpers/private-postgres.js';
import { clients, commandSpec, sleep, startAgent, startControlPlane, waitForJob, waitForNodes } from '../helpers/grid.js';

test('a node judged LOST elsewhere while its stream is open here reconnects and is READY again', async (t) => {
  const db = await createTestDatabase();
  const cp = await startControlPlane(db.url);
  const node = `verdict-${process.pid}`;
  const agent = startAgent(cp.address, node, ['--slots', '1']);
  const api = clients(cp.address);
  try {
    await waitForNodes(api, [node]);
    const [{ generation }] = await db.sql`SELECT generation FROM nodes WHERE id = ${node}`;
    // What another replica's verdict leaves in the row (its attempts, none here, would be lost too).
    await db.sql`UPDATE nodes SET state = 'LOST' WHERE id = ${node}`;
    let back: { state: string; generation: number } | undefined;
    for (let i = 0; i < 100 && !(back?.state === 'READY' && back.generation > generation); i++) {
      await sleep(50);
      [back] = await db.sql<{ state: string; generation: number }[]>`SELECT state, generation FROM nodes WHERE id = ${node}`;
    }
    t.deepEqual(back && [back.state, back.generation > generation], ['READY', true], 'the agent reconnected: a new stream, READY');
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['echo', 'still working']), requestId: '' });
    await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_SUCCEEDED, 'a job runs on the node again');
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
    await db.drop();
  }
});

test('after an outage both replicas lived through, neither judges the other\'s nodes before it could write again', async (t) => {
  t.timeout(90_000);
  const pg = await startPrivatePostgres();
  // Replica A reaches Postgres through a proxy, so it can be kept away a moment longer than B.
  const proxy = await blackHoleProxy(Number(new URL(pg.url).port));
  const viaProxy = new URL(pg.url);
  viaProxy.port = String(proxy.port);
  const args = ['--reconnect-grace', '4s'];
  const a = await startControlPlane(viaProxy.toString(), args);
  const b = await startControlPlane(pg.url, args);
  const node = `outage-${process.pid}`;
  const agent = startAgent(a.address, node, ['--slots', '1']);
  const api = clients(b.address);
  const probe = postgres(pg.url, { max: 1, onnotice: () => {} });
  try {
    await waitForNodes(api, [node]);
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['sh', '-c', 'sleep 16; echo done']), requestId: '' });
    await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs on A\'s node');
    // Both replicas lose the database for longer than the grace; B gets it back a
    // second before A, which then has the rest of B's grace to write again.
    proxy.swallow();
    await pg.crash();
    await sleep(5000);
    await pg.start();
    await sleep(1000);
    proxy.restore();
    await sleep(6000);
    const { nodes } = await api.nodes.listNodes({});
    t.is(NodeState[nodes.find((n) => n.id === node)!.state], NodeState[NodeState.NODE_STATE_READY]);
    const done = await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_SUCCEEDED, 'the job ends', 30_000);
    t.is(done.attempt, 1, 'the job was not run again: its node was never judged lost');
    const lost = await probe`SELECT count(*)::int AS n FROM job_attempts WHERE outcome = 'NODE_LOST'`;
    t.is(lost[0]!.n, 0);
  } finally {
    api.close();
    await probe.end({ timeout: 1 });
    await agent.stop();
    await Promise.all([a.stop(), b.stop()]);
    await proxy.close();
    await pg.destroy();
  }
});
