// Backpressure on submits against real PostgreSQL, through the owner of job
// transitions: while dispatch is behind, a group of submits waits rather than
// take the queue past its high water, and groups in flight together count
// each other (the owner flushes two groups at once).
import test from 'ava';
import { GRID_VERSION } from '../../common/version.js';
import { v7 as uuidv7 } from 'uuid';
import { pino } from 'pino';
import { JobSpec } from '../../common/gen/grid/v1/job.js';
import { migrate } from '../../control-plane/db/migrate.js';
import { queueDepth } from '../../control-plane/job-store.js';
import { createLocalEventBus } from '../../control-plane/job-events.js';
import { createJobTransitions, type NewJob } from '../../control-plane/job-transitions.js';
import { NodeRegistry } from '../../control-plane/node-registry.js';
import { NodeSession } from '../../control-plane/node-session.js';
import { runtimeTable, DEFAULT_RUNTIMES } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
});
test.after.always(async () => db?.drop());

const runtimes = runtimeTable(DEFAULT_RUNTIMES);
function jobs(n: number): NewJob[] {
  const { spec, task } = validateSubmission(JobSpec.fromPartial({ command: ['true'] }), DEFAULT_SPEC_POLICY, runtimes);
  return Array.from({ length: n }, () => ({ id: uuidv7(), spec, task, requestId: '' }));
}

test('two groups of submits in flight at once do not both pass the high water', async (t) => {
  const registry = new NodeRegistry();
  const node = new NodeSession('pacing', 'pacing', { slots: 10, cpus: 1000, memoryBytes: 2n ** 50n }, '', GRID_VERSION, () => true, () => {});
  node.markReady();
  const owner = createJobTransitions({ sql: db.sql, registry, events: createLocalEventBus(), log: pino({ level: 'silent' }), backstopMarginMs: 5000, kick: () => {} });
  const maxQueued = 1_000_000;

  // 1,000 queued (before the node is here: none is placed at submit) and a
  // claim of 10 that left the rest behind: dispatch is behind, at 10 jobs per
  // 5 s, so the high water is its floor of 1,000 jobs.
  await owner.submitMany(jobs(1000), maxQueued);
  registry.add(node);
  const claim = await owner.claim(registry.live());
  t.is(claim.claimed, 10);
  t.false(claim.exhausted);
  t.is(await queueDepth(db.sql), 990);

  // 1,500 more: two groups (1,000 and 500) flushed at once. 990 < 1,000 lets
  // the first in; the second must count it, and wait.
  const submitted = owner.submitMany(jobs(1500), maxQueued);
  let settled = false;
  void submitted.then(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.is(await queueDepth(db.sql), 1990, 'only the first group went in');
  t.false(settled, 'the second group is held');

  // The queue drains (cancelled here, as dispatch would take it): the held group goes in.
  const queued = await db.sql<{ id: string }[]>`SELECT id FROM jobs WHERE state = 'QUEUED'`;
  await owner.cancel(queued.map((r) => r.id), 0);
  const outcomes = await submitted;
  t.is(outcomes.filter((o) => o.kind === 'created').length, 1500);
  t.is(await queueDepth(db.sql), 500);
});
