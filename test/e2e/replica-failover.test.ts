// Two control-plane replicas over one PostgreSQL, agents given both addresses:
// a replica that dies (SIGKILL) or is stopped (SIGTERM) mid-run has its agents
// reconnect to the other within seconds, and every job ends once, on its first
// attempt: nothing is requeued, lost or run twice.
import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { clients, commandSpec, jobWhenEnded, startAgent, startControlPlane, storedLogs, until, waitForJob, waitForNodes, type RunningProcess } from '../helpers/grid.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => db?.drop());

/** The replica an agent's latest stream is on, from its log. */
function connectedTo(agent: RunningProcess): string | undefined {
  const lines = agent.output().split('\n').filter((l) => l.includes('connected to control plane'));
  return /"server":"([^"]+)"/.exec(lines.at(-1) ?? '')?.[1];
}

async function failover(t: ExecutionContext, how: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const replicas = [await startControlPlane(db.url), await startControlPlane(db.url)];
  const addresses = replicas.map((r) => r.address);
  const nodes = [0, 1, 2, 3].map((i) => `failover-${how}-${i}-${process.pid}`);
  const agents = nodes.map((n) => startAgent(addresses[0]!, n, ['--slots', '2', '--server', addresses.join(',')]));
  const apis = addresses.map((a) => clients(a));
  try {
    await waitForNodes(apis[0]!, nodes);
    await until('every agent says which replica it is on', () => agents.every((a) => connectedTo(a) !== undefined));
    // The replica holding more agents goes; the other serves the API throughout.
    const onFirst = agents.filter((a) => connectedTo(a) === addresses[0]).length;
    const victim = onFirst >= agents.length - onFirst ? 0 : 1;
    const survivor = 1 - victim;
    const moving = agents.filter((a) => connectedTo(a) === addresses[victim]);
    t.log(`${moving.length} of ${agents.length} agents on the replica that gets ${how}`);
    const api = apis[survivor]!;

    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await api.jobs.submitJob({ spec: commandSpec(['sh', '-c', `sleep 3; echo ok-${i}`]), requestId: '' })).job!.id);
    for (const id of ids) await waitForJob(api, id, (j) => j.state === JobState.JOB_STATE_RUNNING, `job ${id} runs`);

    const exited = once(replicas[victim]!.child, 'exit') as Promise<[number | null, string | null]>;
    const at = Date.now();
    replicas[victim]!.child.kill(how);
    await until('the moving agents are on the other replica', () => moving.every((a) => connectedTo(a) === addresses[survivor]), 10_000);
    t.log(`they reconnected to the other replica within ${Date.now() - at} ms`);
    const [code, signal] = await exited;
    if (how === 'SIGTERM') t.is(code, 0, `a stopped replica exits clean (signal ${signal})`);

    for (const [i, id] of ids.entries()) {
      const job = await jobWhenEnded(api, id, 30_000);
      t.is(JobState[job.state], 'JOB_STATE_SUCCEEDED', `${id}: ${job.message}`);
      t.is(job.attempt, 1, `${id} ran once, never requeued`);
      t.is(await storedLogs(api, id, 1), `ok-${i}\n`);
    }
    const [{ n }] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM job_attempts WHERE job_id = ANY(${ids}::uuid[])`;
    t.is(n, ids.length, 'one attempt per job');
  } finally {
    for (const api of apis) api.close();
    for (const agent of agents) await agent.stop();
    for (const replica of replicas) await replica.stop();
  }
}

test.serial('a replica killed mid-run: its agents move to the other within seconds, every job ends once', (t) => failover(t, 'SIGKILL'));
test.serial('a replica stopped mid-run: it exits clean, its agents move, no job is requeued', (t) => failover(t, 'SIGTERM'));
