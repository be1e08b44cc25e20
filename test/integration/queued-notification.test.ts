// The queued-work notification (grid_job_queued) that wakes every replica's
// dispatcher: sent when a statement queues a job (an insert, a requeue), not
// when it only rewrites a queued job's waiting message, which would wake them all
// for nothing new each time the reasons are noted.
import test from 'ava';
import { v7 as uuidv7 } from 'uuid';
import { pino } from 'pino';
import { JobSpec } from '../../common/gen/grid/v1/job.js';
import { migrate } from '../../control-plane/db/migrate.js';
import { createLocalEventBus } from '../../control-plane/job-events.js';
import { createJobTransitions } from '../../control-plane/job-transitions.js';
import { NodeRegistry } from '../../control-plane/node-registry.js';
import { runtimeTable, DEFAULT_RUNTIMES } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
});
test.after.always(async () => db?.drop());

/** How many notifications `change` caused, counted until a marker notification sent after it arrives. */
async function notificationsOf(change: () => Promise<unknown>): Promise<number> {
  let count = 0;
  let marked!: () => void;
  const marker = new Promise<void>((resolve) => (marked = resolve));
  const listening = await db.sql.listen('grid_job_queued', (payload) => (payload === 'marker' ? marked() : count++));
  try {
    await change();
    // Notifications of one session arrive in commit order: the marker comes after the change's.
    await db.sql`SELECT pg_notify('grid_job_queued', 'marker')`;
    await marker;
    return count;
  } finally {
    await listening.unlisten();
  }
}

test('queueing a job notifies; noting why it waits does not; queueing it again does', async (t) => {
  const owner = createJobTransitions({ sql: db.sql, registry: new NodeRegistry(), events: createLocalEventBus(), log: pino({ level: 'silent' }), backstopMarginMs: 5000, kick: () => {} });
  const { spec, task } = validateSubmission(JobSpec.fromPartial({ command: ['true'] }), DEFAULT_SPEC_POLICY, runtimeTable(DEFAULT_RUNTIMES));
  const id = uuidv7();
  t.is(await notificationsOf(() => owner.submitMany([{ id, spec, task, requestId: '' }], 1_000_000)), 1, 'an insert of a queued job');
  t.is(await notificationsOf(() => owner.noteWaiting()), 0, 'a waiting message written on a queued job');
  const [row] = await db.sql<{ message: string }[]>`SELECT message FROM jobs WHERE id = ${id}`;
  t.regex(row!.message, /^waiting: no node is connected/, 'the message was written');
  await db.sql`UPDATE jobs SET state = 'ASSIGNED', node_id = 'n', attempt = 1 WHERE id = ${id}`;
  t.is(await notificationsOf(() => db.sql`UPDATE jobs SET state = 'QUEUED', node_id = NULL WHERE id = ${id}`), 1, 'a requeue');
});
