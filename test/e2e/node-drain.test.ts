// gridctl node drain / undrain against a running Grid of two real agents: a
// drained node shows draining in `gridctl nodes`, keeps what it runs, and is
// given no new job until it is undrained; a job that only it could take waits
// and says why.
import test from 'ava';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { clients, commandSpec, gridctl, jobWhenEnded, sleep, startAgent, startControlPlane, useGrid, waitForJob, waitForNodes, type RunningProcess } from '../helpers/grid.js';

const DRAINED = `drain-a-${process.pid}`;
const OTHER = `drain-b-${process.pid}`;
const grid = useGrid(test, { nodeId: DRAINED, agentArgs: ['--slots', '2'] });
let other: RunningProcess | undefined;

// The second agent joins once useGrid's hook has started the control plane (hooks run at once, not in order).
async function bothNodes(): Promise<void> {
  other ??= startAgent(grid.cp.address, OTHER, ['--slots', '2']);
  await waitForNodes(grid.api, [DRAINED, OTHER]);
}
test.after.always(async () => {
  await other?.stop();
});

const nodesTable = async () => (await gridctl(grid.cp.address, ['nodes'])).stdout.toString();
const rowOf = (table: string, node: string) => table.split('\n').find((l) => l.includes(node)) ?? '';

test.serial('a drained node shows draining, keeps its running job, and no new job lands on it until undrained', async (t) => {
  await bothNodes();
  // A job already on the node to drain: it runs on to its end.
  const { job: running } = await grid.api.jobs.submitJob({ spec: commandSpec(['sh', '-c', 'sleep 2; echo kept']), requestId: '' });
  const onDrained = await waitForJob(grid.api, running!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the first job runs');
  // Whichever node took it is the one drained in this test's eyes.
  const drained = onDrained.nodeId;
  const spare = drained === DRAINED ? OTHER : DRAINED;

  const drain = await gridctl(grid.cp.address, ['node', 'drain', drained]);
  t.is(drain.code, 0, drain.stderr.toString());
  t.regex(drain.stdout.toString(), new RegExp(`node ${drained} is draining`));
  const table = await nodesTable();
  t.log(table);
  t.regex(rowOf(table, drained), /\bdraining\b/i);
  t.notRegex(rowOf(table, spare), /draining/i);
  const json = JSON.parse((await gridctl(grid.cp.address, ['nodes', '-o', 'json'])).stdout.toString()) as { id: string; draining?: boolean }[];
  t.true(json.find((n) => n.id === drained)?.draining);

  const submitted = await Promise.all(
    Array.from({ length: 6 }, () => grid.api.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' })),
  );
  const ended = await Promise.all(submitted.map(({ job }) => jobWhenEnded(grid.api, job!.id, 30_000)));
  t.deepEqual(ended.map((j) => j.nodeId), ended.map(() => spare), 'every new job ran on the node not drained');
  const kept = await jobWhenEnded(grid.api, running!.id, 30_000);
  t.is(kept.state, JobState.JOB_STATE_SUCCEEDED, 'the job running on the drained node finished there');
  t.is(kept.nodeId, drained);

  const undrain = await gridctl(grid.cp.address, ['node', 'undrain', drained]);
  t.is(undrain.code, 0, undrain.stderr.toString());
  t.notRegex(rowOf(await nodesTable(), drained), /draining/i);
  // Room on the undrained node again: with both nodes open, enough jobs reach it.
  const again = await Promise.all(
    Array.from({ length: 4 }, () => grid.api.jobs.submitJob({ spec: commandSpec(['sleep', '1']), requestId: '' })),
  );
  const after = await Promise.all(again.map(({ job }) => jobWhenEnded(grid.api, job!.id, 30_000)));
  t.true(after.some((j) => j.nodeId === drained), `after undrain a job ran on ${drained}: ${after.map((j) => j.nodeId).join(', ')}`);
});

test.serial('with every node drained, a job waits and says why; an unknown node is a friendly NOT_FOUND', async (t) => {
  await bothNodes();
  for (const node of [DRAINED, OTHER]) t.is((await gridctl(grid.cp.address, ['node', 'drain', node])).code, 0);
  const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['echo', 'late']), requestId: '' });
  const waiting = await waitForJob(grid.api, job!.id, (j) => j.waitingReason !== '', 'a waiting reason');
  t.is(waiting.state, JobState.JOB_STATE_QUEUED);
  t.is(waiting.waitingReason, 'no ready node: 2 draining');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.is((await grid.api.jobs.getJob({ jobId: job!.id })).job!.state, JobState.JOB_STATE_QUEUED, 'still queued: no drained node took it');
  t.is((await gridctl(grid.cp.address, ['node', 'undrain', OTHER])).code, 0);
  const ran = await jobWhenEnded(grid.api, job!.id, 30_000);
  t.is(ran.nodeId, OTHER);
  t.is((await gridctl(grid.cp.address, ['node', 'undrain', DRAINED])).code, 0);

  const unknown = await gridctl(grid.cp.address, ['node', 'drain', 'no-such-node']);
  t.is(unknown.code, 125);
  t.regex(unknown.stderr.toString(), /no node "no-such-node"/);
});

test.serial('a drain through another replica holds on the replica the node is connected to', async (t) => {
  await bothNodes();
  const replica = await startControlPlane(grid.db.url);
  try {
    t.is((await gridctl(replica.address, ['node', 'drain', DRAINED])).code, 0);
    // Submitted at once: whatever this replica has heard yet, the statements that assign check the mark.
    const submitted = await Promise.all(Array.from({ length: 6 }, () => grid.api.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' })));
    const ended = await Promise.all(submitted.map(({ job }) => jobWhenEnded(grid.api, job!.id, 30_000)));
    t.deepEqual(ended.map((j) => j.nodeId), ended.map(() => OTHER));
    t.is((await gridctl(replica.address, ['node', 'undrain', DRAINED])).code, 0);
  } finally {
    await replica.stop();
  }
});

test.serial('an undrain whose announcement was lost is seen with the next heartbeat, and what waited runs', async (t) => {
  // A sweep too slow to help: only the heartbeat's read of the mark can start the job in time.
  const replica = await startControlPlane(grid.db.url, ['--dispatch-sweep', '60s']);
  const node = `drain-lone-${process.pid}`;
  const agent = startAgent(replica.address, node, ['--slots', '1']);
  const api = clients(replica.address);
  try {
    await waitForNodes(api, [node]);
    await bothNodes();
    // Every node drained: the first replica's nodes stay so, and only this replica's can take the job.
    for (const n of [DRAINED, OTHER, node]) t.is((await gridctl(replica.address, ['node', 'drain', n])).code, 0);
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' });
    await sleep(500);
    t.is((await api.jobs.getJob({ jobId: job!.id })).job!.state, JobState.JOB_STATE_QUEUED);
    // Undrained behind the control plane's back: no NOTIFY.
    await grid.db.sql`UPDATE nodes SET drain_requested_at = NULL WHERE id = ${node}`;
    const ran = await jobWhenEnded(api, job!.id, 20_000);
    t.is(ran.nodeId, node);
  } finally {
    for (const n of [DRAINED, OTHER]) await gridctl(replica.address, ['node', 'undrain', n]);
    api.close();
    await agent.stop();
    await replica.stop();
  }
});
