// Agents dying in the two ways that matter: a hung host (SIGSTOP: stream open,
// nothing arrives) is LOST within the heartbeat timeout and its job runs again
// elsewhere, fenced; a crashed agent (SIGKILL) restarted within the reconnect
// grace takes its container up again and the job is not rerun.
import test from 'ava';
import Docker from 'dockerode';
import { EndReason, JobState } from '../../common/gen/grid/v1/job.js';
import { NodeState } from '../../common/gen/grid/v1/node.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import {
  clients,
  commandSpec,
  gridctl,
  sleep,
  startAgent,
  startControlPlane,
  waitForJob,
  waitForNodes,
  type RunningProcess,
} from '../helpers/grid.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => db?.drop());

async function containersOf(jobId: string, attempt: number) {
  return docker.listContainers({ all: true, filters: { label: [`dev.grid.job-id=${jobId}`, `dev.grid.attempt=${attempt}`] } });
}

test.serial('SIGSTOP: the node is lost within heartbeat timeout + 1 s, the job runs again elsewhere, the stale container is killed and its late report refused', async (t) => {
  const cp = await startControlPlane(db.url, ['--heartbeat-timeout', '3s']);
  const api = clients(cp.address);
  const ids = [`stop-a-${process.pid}`, `stop-b-${process.pid}`];
  const agents = new Map<string, RunningProcess>(ids.map((id) => [id, startAgent(cp.address, id, ['--slots', '1'])]));
  try {
    await waitForNodes(api, ids);
    const { job } = await api.jobs.submitJob({
      spec: commandSpec(['sh', '-c', 'if [ "$GRID_ATTEMPT" = 1 ]; then echo first; sleep 60; else echo second; fi']),
      requestId: '',
    });
    const running = await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'attempt 1 runs');
    const stopped = agents.get(running.nodeId)!;
    const other = ids.find((id) => id !== running.nodeId)!;
    const stoppedAt = Date.now();
    stopped.child.kill('SIGSTOP');

    let lostAfter: number | undefined;
    while (lostAfter === undefined && Date.now() - stoppedAt < 15_000) {
      const { nodes } = await api.nodes.listNodes({});
      if (nodes.find((n) => n.id === running.nodeId)?.state === NodeState.NODE_STATE_LOST) lostAfter = Date.now() - stoppedAt;
      else await sleep(25);
    }
    t.log(`node shown LOST ${lostAfter} ms after SIGSTOP (heartbeat timeout 3 s)`);
    t.true(lostAfter !== undefined && lostAfter <= 4000, `lost after ${lostAfter} ms`);
    const rerun = await waitForJob(api, job!.id, (j) => j.attempt === 2 && j.state === JobState.JOB_STATE_SUCCEEDED, 'attempt 2 succeeds');
    t.is(rerun.nodeId, other);
    t.is(rerun.exitCode, 0);

    // The stale container is still running on the stopped host until its agent wakes.
    t.is((await containersOf(job!.id, 1))[0]?.State, 'running');
    stopped.child.kill('SIGCONT');
    for (let i = 0; i < 200 && (await containersOf(job!.id, 1)).length > 0; i++) await sleep(50);
    t.deepEqual(await containersOf(job!.id, 1), [], 'the stale attempt\'s container was killed and removed');
    await sleep(300);
    t.regex(cp.output(), new RegExp(`"job_id":"${job!.id}","attempt":1[^\\n]*refused a report about an attempt that is not this node's current one`));

    // Exactly one end, attempt 2's; attempt 1 is recorded as lost.
    const final = (await api.jobs.getJob({ jobId: job!.id })).job!;
    t.is(final.state, JobState.JOB_STATE_SUCCEEDED);
    t.is(final.attempt, 2);
    const attempts = await db.sql`SELECT attempt, node_id, outcome FROM job_attempts WHERE job_id = ${job!.id} ORDER BY attempt`;
    t.deepEqual(attempts.map((a) => [a.attempt, a.node_id, a.outcome]), [
      [1, running.nodeId, 'NODE_LOST'],
      [2, other, 'SUCCEEDED'],
    ]);
    const logs = await gridctl(cp.address, ['logs', job!.id]);
    t.is(logs.stdout.toString(), 'second\n');
  } finally {
    api.close();
    for (const a of agents.values()) {
      a.child.kill('SIGCONT');
      await a.stop();
    }
    await cp.stop();
  }
});

test.serial('SIGKILL an agent mid-job and restart it within the grace: not rerun, output whole and in order, exit code right', async (t) => {
  const cp = await startControlPlane(db.url);
  const api = clients(cp.address);
  const node = `kill-${process.pid}`;
  let agent = startAgent(cp.address, node, ['--slots', '1']);
  try {
    await waitForNodes(api, [node]);
    const { job } = await api.jobs.submitJob({
      spec: commandSpec(['sh', '-c', 'for i in $(seq 1 40); do echo "line $i"; echo "err $i" >&2; sleep 0.05; done; exit 7']),
      requestId: '',
    });
    const follower = gridctl(cp.address, ['logs', '-f', job!.id]);
    await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs');
    await sleep(700);
    agent.child.kill('SIGKILL');
    await agent.stop();
    await sleep(300);
    agent = startAgent(cp.address, node, ['--slots', '1']);

    const final = await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_FAILED, 'the job ends');
    t.is(final.attempt, 1, 'the job was not rerun');
    t.is(final.endReason, EndReason.END_REASON_FAILED);
    t.is(final.exitCode, 7);
    const expectedOut = Array.from({ length: 40 }, (_, i) => `line ${i + 1}\n`).join('');
    const expectedErr = Array.from({ length: 40 }, (_, i) => `err ${i + 1}\n`).join('');
    const logs = await gridctl(cp.address, ['logs', job!.id]);
    t.is(logs.stdout.toString(), expectedOut);
    t.is(logs.stderr.toString(), expectedErr);
    const followed = await follower;
    t.is(followed.code, 7);
    t.is(followed.stdout.toString(), expectedOut, 'the live follower saw no gap and no duplicate');
    t.is(followed.stderr.toString(), expectedErr);
    t.regex(agent.output(), /taking up container/);
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
  }
});

test.serial('a second agent claiming a connected node id is refused with a clear error', async (t) => {
  const cp = await startControlPlane(db.url);
  const api = clients(cp.address);
  const node = `twin-${process.pid}`;
  const first = startAgent(cp.address, node);
  let second: RunningProcess | undefined;
  try {
    await waitForNodes(api, [node]);
    second = startAgent(cp.address, node);
    for (let i = 0; i < 100 && !/already connected/.test(second.output()); i++) await sleep(50);
    t.regex(second.output(), /node \\?"twin-\d+\\?" is already connected on another stream; each agent needs its own --node-id/);
    const { nodes } = await api.nodes.listNodes({});
    t.is(nodes.filter((n) => n.id === node).length, 1);
    // The first agent still has the node's one stream and runs its work.
    const run = await gridctl(cp.address, ['run', '--', 'echo', 'still here']);
    t.is(run.stdout.toString(), 'still here\n');
  } finally {
    api.close();
    await second?.stop();
    await first.stop();
    await cp.stop();
  }
});
