// The feed that carries what one replica commits to the others, against a real
// PostgreSQL: a change made through another replica's connection reaches this
// replica's watchers, its own changes are not fed back to it, and the feed hears
// the channel again, and tells its watchers to read again, after the database
// crashed or was unreachable (connections hanging, not refused) for longer than
// the connect timeout.
import test from 'ava';
import pino from 'pino';
import { v7 as uuidv7 } from 'uuid';
import { JobSpec } from '../../common/gen/grid/v1/job.js';
import { connectDatabase, type Sql } from '../../control-plane/db/connect.js';
import { migrate } from '../../control-plane/db/migrate.js';
import { startJobEventFeed } from '../../control-plane/job-event-feed.js';
import { createLocalEventBus, type JobEvent } from '../../control-plane/job-events.js';
import { insertJobs } from '../../control-plane/sql/insert-jobs.js';
import { runtimeTable, DEFAULT_RUNTIMES } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { sleep, until } from '../helpers/grid.js';
import { startPrivatePostgres } from '../helpers/private-postgres.js';
import { blackHoleProxy } from '../helpers/black-hole-proxy.js';

async function submit(sql: Sql): Promise<string> {
  const { spec, task } = validateSubmission(JobSpec.fromPartial({ command: ['true'] }), DEFAULT_SPEC_POLICY, runtimeTable(DEFAULT_RUNTIMES));
  const [inserted] = (await insertJobs(sql, [{ id: uuidv7(), spec, task, requestId: '' }], 1000)).outcomes;
  if (inserted!.kind !== 'created') throw new Error('queue full');
  return inserted!.row.id;
}

/** The state events a bus delivers for one job, as they come. */
function collect(bus: ReturnType<typeof createLocalEventBus>, jobId: string): JobEvent[] {
  const seen: JobEvent[] = [];
  bus.subscribe(jobId, (e) => seen.push(e));
  return seen;
}

test('another replica\'s commits reach this replica\'s watchers, its own do not, and the feed recovers from a database crash', async (t) => {
  t.timeout(60_000);
  const pg = await startPrivatePostgres();
  const mine = connectDatabase(pg.url, { replicaId: 'replica-a' });
  const theirs = connectDatabase(pg.url, { replicaId: 'replica-b' });
  const bus = createLocalEventBus();
  const log = pino({ level: 'silent' });
  try {
    await migrate(mine);
    const feed = await startJobEventFeed({ sql: mine, replicaId: 'replica-a', events: bus, deliverCancel: () => false, log });
    const id = await submit(mine);
    const events = collect(bus, id);

    await theirs`UPDATE jobs SET version = version + 1, message = 'from b' WHERE id = ${id}`;
    await until('replica b\'s change arrives', () => events.some((e) => e.kind === 'state' && e.job.message === 'from b'));
    await mine`UPDATE jobs SET version = version + 1, message = 'from a' WHERE id = ${id}`;
    await theirs`UPDATE jobs SET version = version + 1, message = 'from b again' WHERE id = ${id}`;
    await until('the next change of b arrives', () => events.some((e) => e.kind === 'state' && e.job.message === 'from b again'));
    const messages = events.flatMap((e) => (e.kind === 'state' ? [e.job.message] : []));
    t.false(messages.includes('from a'), 'a replica is not fed its own commits (it publishes them itself)');

    await pg.crash();
    await sleep(500);
    await pg.start();
    // A watcher told to read again once the feed listens anew, and b's changes heard again.
    await until('the feed listens again', () => events.some((e) => e.kind === 'resync'), 20_000);
    const heard = () => events.some((e) => e.kind === 'state' && e.job.message === 'after the crash');
    for (let tries = 0; !heard(); tries++) {
      if (tries === 100) throw new Error('no change made after the crash reached the feed in 20 s');
      // Until b's pool has reconnected too, its update fails: try again.
      await theirs`UPDATE jobs SET version = version + 1, message = 'after the crash' WHERE id = ${id}`.catch(() => {});
      await sleep(200);
    }
    t.true(heard());
    await feed.stop();
  } finally {
    await mine.end({ timeout: 1 });
    await theirs.end({ timeout: 1 });
    await pg.destroy();
  }
});

test('the feed hears the channel again after Postgres was unreachable past the connect timeout', async (t) => {
  t.timeout(60_000);
  const pg = await startPrivatePostgres();
  const port = Number(new URL(pg.url).port);
  const proxy = await blackHoleProxy(port);
  const viaProxy = new URL(pg.url);
  viaProxy.port = String(proxy.port);
  const mine = connectDatabase(viaProxy.toString(), { replicaId: 'replica-a' });
  const theirs = connectDatabase(pg.url, { replicaId: 'replica-b' });
  const bus = createLocalEventBus();
  try {
    await migrate(theirs);
    const feed = await startJobEventFeed({ sql: mine, replicaId: 'replica-a', events: bus, deliverCancel: () => false, log: pino({ level: 'silent' }) });
    const id = await submit(theirs);
    const events = collect(bus, id);
    // Longer than the connect timeout (5 s, db/connect.ts).
    proxy.swallow();
    await sleep(7000);
    proxy.restore();
    const heard = () => events.some((e) => e.kind === 'state' && e.job.message === 'after the outage');
    for (let tries = 0; !heard(); tries++) {
      if (tries === 75) throw new Error('no change made after the outage reached the feed in 15 s');
      await theirs`UPDATE jobs SET version = version + 1, message = 'after the outage' WHERE id = ${id}`;
      await sleep(200);
    }
    t.true(events.some((e) => e.kind === 'resync'), 'watchers were told to read again');
    await feed.stop();
  } finally {
    await mine.end({ timeout: 1 });
    await theirs.end({ timeout: 1 });
    await proxy.close();
    await pg.destroy();
  }
});
