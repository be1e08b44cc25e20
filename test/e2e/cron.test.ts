// Periodic jobs against real processes: a per-second schedule made with
// gridctl, fired by two control-plane replicas over one database, submits
// exactly one job per tick over 10 ticks, none missed; pausing stops it and
// delete removes it. The overlap policies: skip leaves a tick without a job
// while the last one runs; cancel-previous cancels it.
import test from 'ava';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { clients, gridctl, jobWhenEnded, startAgent, startControlPlane, waitForNodes } from '../helpers/grid.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a per-second periodic job with two control-plane replicas fires once per tick over 10 ticks', async (t) => {
  const db = await createTestDatabase();
  const [a, b] = await Promise.all([startControlPlane(db.url), startControlPlane(db.url)]);
  const node = `cron-${process.pid}`;
  const agent = startAgent(a.address, node, ['--slots', '4', '--cpus', '4']);
  const api = clients(a.address);
  try {
    await waitForNodes(api, [node]);
    const made = await gridctl(b.address, ['cron', 'create', 'every-second', '--schedule', '* * * * * *', '--overlap', 'allow', '--', 'true']);
    t.is(made.code, 0, made.stderr.toString());
    t.regex(made.stdout.toString(), /periodic job "every-second" \(\* \* \* \* \* \*, UTC\) first fires/);
    // 11.5 s: 11 ticks, of which the 10 between the first and the last must all be there.
    await sleep(11_500);
    t.is((await gridctl(a.address, ['cron', 'pause', 'every-second'])).code, 0);
    const list = await gridctl(a.address, ['cron', 'list']);
    t.regex(list.stdout.toString(), /every-second +\* \* \* \* \* \* +allow +paused +- +\S+ +true/);
    const rows = await db.sql<{ tick: Date; n: number }[]>`
      SELECT cron_tick AS tick, count(*)::int AS n FROM jobs WHERE cron_name = 'every-second' GROUP BY cron_tick ORDER BY cron_tick`;
    t.true(rows.length >= 10, `${rows.length} ticks fired`);
    t.deepEqual(rows.filter((r) => r.n !== 1), [], 'one job per tick');
    const gaps = rows.slice(1).map((r, i) => r.tick.getTime() - rows[i]!.tick.getTime());
    t.deepEqual(gaps.filter((g) => g !== 1000), [], 'no tick missed between the first and the last');
    const firedBy = [a, b].map((cp) => cp.output().split('\n').filter((l) => l.includes('periodic job submitted')).length);
    t.log(`ticks fired by replica a: ${firedBy[0]}, by b: ${firedBy[1]}`);
    t.is(firedBy[0]! + firedBy[1]!, rows.length, 'each tick submitted by one replica');
    // Paused: no more ticks.
    await sleep(1500);
    const [after] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE cron_name = 'every-second'`;
    t.is(after!.n, rows.length, 'nothing fired while paused');
    const jobs = await api.jobs.listJobs({ pageSize: 100 });
    t.true(jobs.jobs.filter((j) => j.cronName === 'every-second').every((j) => j.cronTick !== undefined));
    t.is((await gridctl(a.address, ['cron', 'delete', 'every-second'])).code, 0);
    const gone = await gridctl(a.address, ['cron', 'pause', 'every-second']);
    t.not(gone.code, 0);
    t.regex(gone.stderr.toString(), /no periodic job is named "every-second"/);
  } finally {
    api.close();
    await agent.stop();
    await Promise.all([a.stop(), b.stop()]);
    await db.drop();
  }
});

test('overlap: skip gives no job to a tick while the last runs; cancel-previous cancels it', async (t) => {
  const db = await createTestDatabase();
  const cp = await startControlPlane(db.url);
  const node = `cron-overlap-${process.pid}`;
  const agent = startAgent(cp.address, node, ['--slots', '4', '--cpus', '4']);
  const api = clients(cp.address);
  try {
    await waitForNodes(api, [node]);
    const spec = { command: ['sleep', '30'], stopGrace: { seconds: 0n, nanos: 0 } };
    await api.crons.createCron({ name: 'skipper', schedule: '* * * * * *', overlap: 1, spec });
    await api.crons.createCron({ name: 'canceller', schedule: '* * * * * *', overlap: 3, spec });
    await sleep(4_500);
    await api.crons.pauseCron({ name: 'skipper' });
    await api.crons.pauseCron({ name: 'canceller' });
    const jobsOf = async (name: string) =>
      db.sql<{ id: string }[]>`SELECT id FROM jobs WHERE cron_name = ${name} ORDER BY cron_tick`;
    const skipped = await jobsOf('skipper');
    t.is(skipped.length, 1, 'one job: every later tick found it running');
    const cancelled = await jobsOf('canceller');
    t.true(cancelled.length >= 3, `${cancelled.length} jobs`);
    const ends = await Promise.all(cancelled.slice(0, -1).map((r) => jobWhenEnded(api, r.id, 30_000)));
    t.deepEqual(ends.map((j) => j.state), ends.map(() => JobState.JOB_STATE_CANCELLED), 'each cancelled by the next tick');
    for (const r of [...skipped, ...cancelled.slice(-1)]) await api.jobs.cancelJob({ jobId: r.id, grace: { seconds: 0n, nanos: 0 } });
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
    await db.drop();
  }
});
