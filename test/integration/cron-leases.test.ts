// The leases periodic firing is fenced by, against the real Postgres: two
// replicas leasing at once get each due schedule once; a lease that lapsed
// (its replica died between submit and advance) goes to another replica, and
// the first one's late advance then changes nothing; a pause drops the lease.
import test from 'ava';
import { migrate } from '../../control-plane/db/migrate.js';
import { insertCron, setCronPaused } from '../../control-plane/sql/cron-schedules.js';
import { advanceCrons, leaseDueCrons, nextCronDueInMs, releaseCrons } from '../../control-plane/sql/fire-crons.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
});
test.after.always(async () => db?.drop());

const due = new Date(Date.now() - 1000);
const store = (name: string, nextFireAt = due) => insertCron(db.sql, { name, schedule: '* * * * * *', overlap: 'ALLOW', spec: Buffer.alloc(0), submitter: '', nextFireAt });

test.serial('concurrent leases split the due schedules; a lapsed lease moves on and fences the late advance', async (t) => {
  for (let i = 0; i < 20; i++) await store(`s${i}`);
  await store('later', new Date(Date.now() + 60_000));
  const [x, y] = await Promise.all([leaseDueCrons(db.sql, 'x', 200, 100), leaseDueCrons(db.sql, 'y', 200, 100)]);
  const names = [...x.rows, ...y.rows].map((r) => r.name).sort();
  t.is(names.length, 20, 'each due schedule leased once, the later one not at all');
  t.is(new Set(names).size, 20);
  t.is((await leaseDueCrons(db.sql, 'z', 200, 100)).rows.length, 0, 'all leased');

  await new Promise((r) => setTimeout(r, 300));
  const z = await leaseDueCrons(db.sql, 'z', 10_000, 100);
  t.is(z.rows.length, 20, 'the lapsed leases went to z');
  const advance = (who: string) => advanceCrons(db.sql, who, [{ name: 's0', from: due, next: new Date(due.getTime() + 1000), firedAt: due, jobId: undefined }]);
  t.deepEqual(await advance('x'), [], 'x lost its lease: its advance is refused');
  t.deepEqual(await advance('z'), ['s0']);
  t.deepEqual(await advance('z'), [], 'advanced already: the tick it started from is gone');
});

test.serial('a pause drops the lease and stops the schedule; the next due time is the database\'s', async (t) => {
  await db.sql`DELETE FROM cron_schedules`;
  await store('p');
  t.is((await leaseDueCrons(db.sql, 'x', 10_000, 10)).rows.length, 1);
  await setCronPaused(db.sql, 'p', undefined);
  t.deepEqual(await advanceCrons(db.sql, 'x', [{ name: 'p', from: due, next: new Date(), firedAt: due, jobId: undefined }]), []);
  t.is(await nextCronDueInMs(db.sql), undefined, 'nothing unpaused');
  await setCronPaused(db.sql, 'p', new Date(Date.now() + 5000));
  const inMs = (await nextCronDueInMs(db.sql))!;
  t.true(inMs > 4000 && inMs <= 5000, `${inMs}`);
});

test.serial('a schedule leased elsewhere, or released to cool off, is next due when its lease ends: no replica polls it before', async (t) => {
  await db.sql`DELETE FROM cron_schedules`;
  await store('busy');
  t.is((await leaseDueCrons(db.sql, 'x', 10_000, 10)).rows.length, 1);
  const leased = (await nextCronDueInMs(db.sql))!;
  t.true(leased > 9000 && leased <= 10_000, `overdue, but leased for 10 s: next due in ${leased} ms`);
  await releaseCrons(db.sql, 'x', ['busy'], 2000);
  t.is((await leaseDueCrons(db.sql, 'y', 10_000, 10)).rows.length, 0, 'cooling off');
  const cooling = (await nextCronDueInMs(db.sql))!;
  t.true(cooling > 1000 && cooling <= 2000, `${cooling} ms`);
});
