// The continuous reconciler against real PostgreSQL, without servers: a node
// whose capacity a failed claim left unknown gets it back from a read only when
// that read's plan could count what the claim committed.
import test from 'ava';
import { GRID_VERSION } from '../../common/version.js';
import { pino } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { migrate } from '../../control-plane/db/migrate.js';
import { createLocalEventBus } from '../../control-plane/job-events.js';
import { createJobTransitions } from '../../control-plane/job-transitions.js';
import { NodeRegistry } from '../../control-plane/node-registry.js';
import { NodeSession } from '../../control-plane/node-session.js';
import { startNodeReconciler } from '../../control-plane/node-reconciler.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
});
test.after.always(async () => db?.drop());

test('capacity left unknown stays unknown while another claim or placement was in flight at the read', async (t) => {
  const registry = new NodeRegistry();
  const node = new NodeSession('reconciled', 'reconciled', { slots: 4, cpus: 4, memoryBytes: 8n << 30n }, '', GRID_VERSION, () => true, () => {});
  node.markReady();
  registry.add(node);
  const log = pino({ level: 'silent' });
  const transitions = createJobTransitions({ sql: db.sql, registry, events: createLocalEventBus(), log, backstopMarginMs: 5000, kick: () => {} });
  let kicks = 0;
  const reconciler = startNodeReconciler({ sql: db.sql, registry, transitions: () => transitions, dispatcher: { kick: () => kicks++, stop: async () => {} }, log, intervalMs: 100 });
  t.teardown(() => reconciler.stop());
  // A claim failed with its answer lost (it may have committed), while a
  // placement on the node was still in flight: its resend would be held back.
  // Each heartbeat that follows a read is planned, and a plan asks what is counted.
  let planned = 0;
  const counted = node.countedAttempts.bind(node);
  node.countedAttempts = () => (planned++, counted());
  node.capacityUnknown();
  node.claimStarted(true);
  const deadline = Date.now() + 10_000;
  while (planned < 3 && Date.now() < deadline) {
    await sleep(150);
    reconciler.heartbeat(node, []);
  }
  await sleep(200);
  t.true(planned >= 3, 'reads were planned while the placement was in flight');
  t.is(node.freeCapacity().slots, 0, 'not offered: the held-back resend was not counted');
  node.claimSettled(true);
  const until = Date.now() + 10_000;
  while (node.freeCapacity().slots === 0 && Date.now() < until) {
    await sleep(200);
    reconciler.heartbeat(node, []);
  }
  t.is(node.freeCapacity().slots, 4, 'a read after it settled gives the capacity back');
  t.true(kicks > 0, 'and asks for dispatch');
});
