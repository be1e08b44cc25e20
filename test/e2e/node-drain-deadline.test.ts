// gridctl node drain --deadline against a running Grid of two real agents: a
// job that ends before the deadline ends where it runs; one still running at
// the deadline is stopped and handed back, queued again without spending an
// attempt of its budget, and runs on the other node.
import test from 'ava';
import Docker from 'dockerode';
import { EndReason, JobState } from '../../common/gen/grid/v1/job.js';
import { msToDuration } from '../../common/units.js';
import { commandSpec, gridctl, jobWhenEnded, startAgent, until, useGrid, waitForJob, waitForNodes, type RunningProcess } from '../helpers/grid.js';

const DRAINED = `deadline-a-${process.pid}`;
const OTHER = `deadline-b-${process.pid}`;
const grid = useGrid(test, { nodeId: DRAINED, agentArgs: ['--slots', '2'] });
let other: RunningProcess | undefined;
const docker = new Docker({ socketPath: '/var/run/docker.sock' });

test.after.always(async () => {
  await other?.stop();
});

/** A job started on the node to drain while the other node is not there (or drained); then it joins. */
async function runningOnDrained(command: string[]) {
  if (other) mustSucceed(await gridctl(grid.cp.address, ['node', 'drain', OTHER]));
  const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(command, { stopGrace: msToDuration(500) }), requestId: '' });
  const running = await waitForJob(grid.api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs');
  if (running.nodeId !== DRAINED) throw new Error(`the job ran on ${running.nodeId}`);
  if (other) mustSucceed(await gridctl(grid.cp.address, ['node', 'undrain', OTHER]));
  other ??= startAgent(grid.cp.address, OTHER, ['--slots', '2']);
  await waitForNodes(grid.api, [DRAINED, OTHER]);
  return running;
}

function mustSucceed(run: { code: number | null; stderr: Buffer }): void {
  if (run.code !== 0) throw new Error(`gridctl failed: ${run.stderr.toString()}`);
}

const attemptsOf = (jobId: string) =>
  grid.db.sql<{ attempt: number; node_id: string; outcome: string }[]>`SELECT attempt, node_id, outcome FROM job_attempts WHERE job_id = ${jobId} ORDER BY attempt`;

test.serial('a job still running at the deadline is handed back: queued again, its attempt not spent, and run on the other node', async (t) => {
  const running = await runningOnDrained(['sh', '-c', 'echo started; sleep 3; echo done']);
  const drain = await gridctl(grid.cp.address, ['node', 'drain', DRAINED, '--deadline', '1s']);
  t.is(drain.code, 0, drain.stderr.toString());
  t.regex(drain.stdout.toString(), new RegExp(`node ${DRAINED} is draining; what still runs on it at .* is handed back`));
  const nodes = JSON.parse((await gridctl(grid.cp.address, ['nodes', '-o', 'json'])).stdout.toString()) as { id: string; drainDeadline?: string }[];
  t.truthy(nodes.find((n) => n.id === DRAINED)?.drainDeadline, 'nodes shows the deadline');

  const handedBack = await waitForJob(grid.api, running.id, (j) => j.attempt === 2, 'the job is handed back and assigned again', 20_000);
  t.is(handedBack.nodeId, OTHER);
  t.is(handedBack.attemptsCounted, 1, 'the handed-back attempt is not counted against max_attempts');
  const ended = await jobWhenEnded(grid.api, running.id, 30_000);
  t.is(JobState[ended.state], 'JOB_STATE_SUCCEEDED');
  t.is(ended.endReason, EndReason.END_REASON_SUCCEEDED);
  t.is(ended.nodeId, OTHER);
  t.is(ended.attemptsCounted, 1);
  t.deepEqual(
    (await attemptsOf(running.id)).map((a) => [a.attempt, a.node_id, a.outcome]),
    [[1, DRAINED, 'HANDED_BACK'], [2, OTHER, 'SUCCEEDED']],
  );
  // Stopped on the drained node, not left running beside its successor.
  await until('the handed-back container is gone', async () =>
    (await docker.listContainers({ all: true, filters: { label: [`dev.grid.job-id=${running.id}`, `dev.grid.node-id=${DRAINED}`] } })).length === 0,
  );
  t.is((await gridctl(grid.cp.address, ['node', 'undrain', DRAINED])).code, 0);
});

test.serial('a job that ends before the deadline ends where it runs, and no new job reaches the node meanwhile', async (t) => {
  const running = await runningOnDrained(['sh', '-c', 'sleep 2; echo kept']);
  t.is((await gridctl(grid.cp.address, ['node', 'drain', DRAINED, '--deadline', '30s'])).code, 0);
  const submitted = await Promise.all(Array.from({ length: 4 }, () => grid.api.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' })));
  const others = await Promise.all(submitted.map(({ job }) => jobWhenEnded(grid.api, job!.id, 30_000)));
  t.deepEqual(others.map((j) => j.nodeId), others.map(() => OTHER));
  const kept = await jobWhenEnded(grid.api, running.id, 30_000);
  t.is(JobState[kept.state], 'JOB_STATE_SUCCEEDED');
  t.is(kept.nodeId, DRAINED);
  t.is(kept.attempt, 1);
  t.is((await gridctl(grid.cp.address, ['node', 'undrain', DRAINED])).code, 0);
});

test.serial('a bad deadline is a usage error that says what a deadline is', async (t) => {
  const bad = await gridctl(grid.cp.address, ['node', 'drain', DRAINED, '--deadline', 'soon']);
  t.is(bad.code, 125);
  t.regex(bad.stderr.toString(), /--deadline/);
});
