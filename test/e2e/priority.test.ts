// Priorities against real processes: a high-priority job submitted behind 50
// queued ones runs next; equal priorities keep submit order; gridctl takes
// --priority (negative too) and refuses one out of range with exit 125.
import test from 'ava';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { clients, commandSpec, gridctl, jobWhenEnded, startAgent, startControlPlane, waitForNodes } from '../helpers/grid.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => db?.drop());

test('a high-priority job submitted behind 50 queued ones runs next, and the rest keep their order', async (t) => {
  const cp = await startControlPlane(db.url);
  const api = clients(cp.address);
  const node = `priority-${process.pid}`;
  let agent: ReturnType<typeof startAgent> | undefined;
  try {
    // No node yet: everything queues.
    const low: string[] = [];
    for (let i = 0; i < 50; i++) low.push((await api.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' })).job!.id);
    const lowest = (await gridctl(cp.address, ['run', '-d', '--priority', '-5', '--', 'true'])).stdout.toString().trim();
    const urgent = await gridctl(cp.address, ['run', '-d', '--priority', '10', '--', 'echo', 'urgent']);
    t.is(urgent.code, 0, urgent.stderr.toString());
    const urgentId = urgent.stdout.toString().trim();
    t.is((await api.jobs.getJob({ jobId: urgentId })).job!.spec!.priority, 10);

    agent = startAgent(cp.address, node, ['--slots', '1']);
    await waitForNodes(api, [node]);
    const first = await jobWhenEnded(api, urgentId, 30_000);
    t.is(JobState[first.state], 'JOB_STATE_SUCCEEDED');
    // One slot: the order of assignment is the order of the queue.
    const ended = await Promise.all([...low.slice(0, 5), lowest].map((id) => jobWhenEnded(api, id, 60_000)));
    const assigned = (id: string, jobs = [first, ...ended]) => jobs.find((j) => j.id === id)!.assignedAt!.getTime();
    for (const id of low.slice(0, 5)) t.true(assigned(urgentId) < assigned(id), 'the urgent job was assigned before every earlier one');
    const lowOrder = low.slice(0, 5).map((id) => assigned(id));
    t.deepEqual(lowOrder, [...lowOrder].sort((a, b) => a - b), 'equal priorities in submit order');
    const lastLow = await jobWhenEnded(api, low[49]!, 60_000);
    t.true(lastLow.assignedAt!.getTime() < assigned(lowest), 'the negative priority came after all 50');
  } finally {
    api.close();
    await agent?.stop();
    await cp.stop();
  }
});

test('a priority out of range is refused: INVALID_ARGUMENT naming it, exit 125 from gridctl', async (t) => {
  const cp = await startControlPlane(db.url);
  try {
    const run = await gridctl(cp.address, ['run', '-d', '--priority', '101', '--', 'true']);
    t.is(run.code, 125);
    t.regex(run.stderr.toString(), /spec\.priority is 101: must be a whole number between -100 and 100/);
  } finally {
    await cp.stop();
  }
});
