// An agent's graceful stop (SIGTERM, as systemd stops it): it takes no new job,
// lets what runs end up to its --drain-deadline, then stops the rest and hands
// it back to the queue without spending an attempt, and exits 0.
import test from 'ava';
import Docker from 'dockerode';
import { once } from 'node:events';
import { JobState, type Job, type JobSpec } from '../../common/gen/grid/v1/job.js';
import { msToDuration } from '../../common/units.js';
import { clients, commandSpec, jobWhenEnded, startAgent, startControlPlane, storedLogs, until, waitForJob, waitForNodes, type RunningProcess } from '../helpers/grid.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => db?.drop());

async function drainScenario(deadline: string, name: string) {
  const cp = await startControlPlane(db.url);
  const api = clients(cp.address);
  const stopping = startAgent(cp.address, `${name}-a-${process.pid}`, ['--slots', '2', '--drain-deadline', deadline]);
  const other = `${name}-b-${process.pid}`;
  let staying: ReturnType<typeof startAgent> | undefined;
  const cleanUp = async () => {
    api.close();
    await stopping.stop();
    await staying?.stop();
    await cp.stop();
  };
  await waitForNodes(api, [`${name}-a-${process.pid}`]);
  const { job } = await api.jobs.submitJob({ spec: commandSpec(['sh', '-c', 'sleep 5; echo done'], { stopGrace: msToDuration(500) }), requestId: '' });
  const running = await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs on the first node');
  staying = startAgent(cp.address, other, ['--slots', '2']);
  await waitForNodes(api, [running.nodeId, other]);
  const exited = once(stopping.child, 'exit') as Promise<[number | null, string | null]>;
  const signalledAt = Date.now();
  stopping.child.kill('SIGTERM');
  return { api, running, other, exited, signalledAt, cleanUp };
}

test.serial('SIGTERM with a 30 s deadline: the running job finishes there, new jobs go elsewhere, the agent exits 0', async (t) => {
  const s = await drainScenario('30s', 'drain-long');
  try {
    // Give the control plane the agent's word before the new jobs come.
    await new Promise((r) => setTimeout(r, 300));
    const others = await Promise.all(Array.from({ length: 4 }, () => s.api.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' })));
    const ended = await Promise.all(others.map(({ job }) => jobWhenEnded(s.api, job!.id, 30_000)));
    t.deepEqual(ended.map((j) => j.nodeId), ended.map(() => s.other), 'no new job reached the draining agent');
    const kept = await jobWhenEnded(s.api, s.running.id, 30_000);
    t.is(JobState[kept.state], 'JOB_STATE_SUCCEEDED');
    t.is(kept.nodeId, s.running.nodeId);
    t.is(kept.attempt, 1);
    const [code, signal] = await s.exited;
    t.is(code, 0, `exit signal ${signal}`);
    t.log(`the agent exited ${Date.now() - s.signalledAt} ms after SIGTERM`);
  } finally {
    await s.cleanUp();
  }
});

test.serial('SIGTERM with a 1 s deadline: the job is handed back and runs elsewhere, its attempt not spent; the agent exits 0', async (t) => {
  const s = await drainScenario('1s', 'drain-short');
  try {
    const [code, signal] = await s.exited;
    t.is(code, 0, `exit signal ${signal}`);
    const tookMs = Date.now() - s.signalledAt;
    t.log(`the agent exited ${tookMs} ms after SIGTERM`);
    t.true(tookMs < 4500, 'it stopped the job at its deadline rather than waiting for it to end');
    const ended = await jobWhenEnded(s.api, s.running.id, 30_000);
    t.is(JobState[ended.state], 'JOB_STATE_SUCCEEDED');
    t.is(ended.nodeId, s.other);
    t.is(ended.attempt, 2);
    t.is(ended.attemptsCounted, 1, 'the handed-back attempt is not counted');
  } finally {
    await s.cleanUp();
  }
});

/**
 * A job on an agent (drain deadline 0s) whose control plane is then killed, so
 * nothing the agent reports arrives; `meanwhile` drives the agent until the job's
 * container has exited, the agent is killed, and a new control plane and agent
 * process of the node take over. Resolves with the job once it has ended.
 */
async function acrossAnOutage(name: string, spec: JobSpec, meanwhile: (agent: RunningProcess, containerExited: () => Promise<void>) => Promise<void>): Promise<Job> {
  const node = `${name}-${process.pid}`;
  let cp = await startControlPlane(db.url);
  let api = clients(cp.address);
  let agent = startAgent(cp.address, node, ['--slots', '1', '--drain-deadline', '0s']);
  try {
    await waitForNodes(api, [node]);
    const { job } = await api.jobs.submitJob({ spec, requestId: '' });
    await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs');
    cp.child.kill('SIGKILL');
    await cp.stop();
    api.close();
    await meanwhile(agent, () =>
      until('the job\'s container has exited', async () => {
        const [c] = await docker.listContainers({ all: true, filters: { label: [`dev.grid.job-id=${job!.id}`] } });
        return c?.State === 'exited';
      }),
    );
    agent.child.kill('SIGKILL');
    await agent.stop();
    cp = await startControlPlane(db.url);
    api = clients(cp.address);
    agent = startAgent(cp.address, node, ['--slots', '1']);
    return await jobWhenEnded(api, job!.id, 30_000);
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
  }
}

test.serial('an agent killed after stopping a job to hand it back, before the control plane heard: the next agent reports it handed back, not failed', async (t) => {
  const ended = await acrossAnOutage('drain-crash', commandSpec(['sh', '-c', 'sleep 2; echo done'], { stopGrace: msToDuration(0) }), async (agent, containerExited) => {
    // The drain's deadline passes at once: the agent stops the job to hand it back, and cannot report it.
    agent.child.kill('SIGTERM');
    await containerExited();
  });
  t.is(JobState[ended.state], 'JOB_STATE_SUCCEEDED', ended.message);
  t.is(ended.attempt, 2, 'run again after the hand-back');
  t.is(ended.attemptsCounted, 1);
  const history = await db.sql<{ outcome: string }[]>`SELECT outcome FROM job_attempts WHERE job_id = ${ended.id} ORDER BY attempt`;
  t.deepEqual(history.map((h) => h.outcome), ['HANDED_BACK', 'SUCCEEDED']);
});

test.serial('SIGINT (a restart keeping jobs) stops the agent at once; its container runs on and the next agent takes it up', async (t) => {
  const node = `keep-jobs-${process.pid}`;
  const cp = await startControlPlane(db.url);
  const api = clients(cp.address);
  let agent = startAgent(cp.address, node, ['--slots', '1', '--drain-deadline', '5m']);
  try {
    await waitForNodes(api, [node]);
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['sh', '-c', 'sleep 3; echo kept']), requestId: '' });
    await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs');
    const exited = once(agent.child, 'exit') as Promise<[number | null, string | null]>;
    agent.child.kill('SIGINT');
    t.deepEqual(await exited, [0, null]);
    const [container] = await docker.listContainers({ filters: { label: [`dev.grid.job-id=${job!.id}`] } });
    t.is(container?.State, 'running', 'the job carries on without its agent');
    agent = startAgent(cp.address, node, ['--slots', '1']);
    const ended = await jobWhenEnded(api, job!.id, 30_000);
    t.is(JobState[ended.state], 'JOB_STATE_SUCCEEDED', ended.message);
    t.is(ended.attempt, 1, 'taken up, not rerun');
    t.is(await storedLogs(api, job!.id, 1), 'kept\n');
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
  }
});

test.serial('a job that ended by itself before the drain\'s deadline is reported as it ended, even by the next agent process', async (t) => {
  const ended = await acrossAnOutage('drain-ended', commandSpec(['sh', '-c', 'sleep 1; echo done']), async (agent, containerExited) => {
    await containerExited();
    // The drain's deadline passes at once, with the ended job's report still unsent.
    agent.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1000));
  });
  t.is(JobState[ended.state], 'JOB_STATE_SUCCEEDED', ended.message);
  t.is(ended.attempt, 1, 'not handed back and run again');
  t.is(ended.exitCode, 0);
});
