// The control plane and Postgres dying: a killed control plane restarts from
// Postgres alone (the running job finishes and is recorded, queued jobs run,
// nothing is lost or run twice), and a Postgres outage refuses submissions with
// UNAVAILABLE while every accepted job still completes exactly once.
import test from 'ava';
import { ClientError, Status } from 'nice-grpc';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startPrivatePostgres } from '../helpers/private-postgres.js';
import {
  clients,
  commandSpec,
  freePort,
  gridctl,
  sleep,
  startAgent,
  startControlPlane,
  waitForJob,
  waitForNodes,
} from '../helpers/grid.js';


test.serial('SIGKILL the control plane mid-job and restart it: the running job finishes and is recorded, queued jobs run', async (t) => {
  const db: TestDatabase = await createTestDatabase();
  const listen = `127.0.0.1:${await freePort()}`;
  let cp = await startControlPlane(db.url, ['--listen', listen]);
  const node = `cpkill-${process.pid}`;
  const agent = startAgent(cp.address, node, ['--slots', '1']);
  let api = clients(cp.address);
  try {
    await waitForNodes(api, [node]);
    const running = (await api.jobs.submitJob({ spec: commandSpec(['sh', '-c', 'echo start; sleep 2; echo end; exit 5']), requestId: '' })).job!;
    const queued = [];
    for (let i = 0; i < 3; i++) queued.push((await api.jobs.submitJob({ spec: commandSpec(['echo', `queued ${i}`]), requestId: '' })).job!);
    await waitForJob(api, running.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the first job runs');
    await sleep(300);
    cp.child.kill('SIGKILL');
    await cp.stop();
    api.close();
    await sleep(1000);
    cp = await startControlPlane(db.url, ['--listen', listen]);
    api = clients(cp.address);

    const first = await waitForJob(api, running.id, (j) => j.state === JobState.JOB_STATE_FAILED, 'the running job ends');
    t.is(first.exitCode, 5);
    t.is(first.attempt, 1, 'not rerun');
    t.is((await gridctl(cp.address, ['logs', running.id])).stdout.toString(), 'start\nend\n');
    for (const [i, q] of queued.entries()) {
      const done = await waitForJob(api, q.id, (j) => j.state === JobState.JOB_STATE_SUCCEEDED, `queued job ${i} succeeds`);
      t.is(done.attempt, 1);
      t.is((await gridctl(cp.address, ['logs', q.id])).stdout.toString(), `queued ${i}\n`);
    }
    const [{ lost }] = await db.sql`SELECT count(*)::int AS lost FROM job_attempts WHERE outcome = 'NODE_LOST'`;
    t.is(lost, 0, 'the restart judged no node lost');
    const [{ count }] = await db.sql`SELECT count(*)::int AS count FROM jobs`;
    t.is(count, 4);
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
    await db.drop();
  }
});

test.serial('a Postgres outage: submissions get UNAVAILABLE, every accepted job completes exactly once', async (t) => {
  const pg = await startPrivatePostgres();
  const cp = await startControlPlane(pg.url);
  const node = `pgdown-${process.pid}`;
  const agent = startAgent(cp.address, node, ['--slots', '2']);
  const api = clients(cp.address);
  try {
    await waitForNodes(api, [node]);
    // A job that runs through the outage and reports while Postgres is gone.
    const through = (await api.jobs.submitJob({ spec: commandSpec(['sh', '-c', 'echo before; sleep 3; echo after']), requestId: '' })).job!;
    const accepted: string[] = [through.id];
    const refused: string[] = [];
    // Refusals are expected from the stop until the pool has reconnected (its
    // retry interval is at most 0.5 s) after the start.
    let window: { from: number; to: number } = { from: Infinity, to: Infinity };
    const submitting = (async () => {
      for (let i = 0; i < 60; i++) {
        try {
          const { job } = await api.jobs.submitJob({ spec: commandSpec(['echo', `job ${i}`]), requestId: '' }, { signal: AbortSignal.timeout(5000) });
          accepted.push(job!.id);
        } catch (err) {
          const inWindow = Date.now() >= window.from && Date.now() <= window.to;
          const when = inWindow ? '' : ' (outside the outage)';
          refused.push(err instanceof ClientError ? `${Status[err.code]}${when}: ${err.details}` : `${(err as Error).name}${when}`);
        }
        await sleep(100);
      }
    })();
    await sleep(1000);
    window = { from: Date.now(), to: Infinity };
    await pg.stop();
    await sleep(3000);
    await pg.start();
    window.to = Date.now() + 1500;
    await submitting;

    t.true(refused.length > 0, 'some submissions fell in the outage');
    for (const r of refused) t.regex(r, /^UNAVAILABLE: the job database is unreachable right now; retry shortly$/);
    for (const id of accepted) {
      await waitForJob(api, id, (j) => j.state === JobState.JOB_STATE_SUCCEEDED, `accepted job ${id} succeeds`, 60_000);
    }
    const verify = (await import('postgres')).default(pg.url, { max: 1 });
    try {
      const rows = await verify`SELECT id::text, state, attempt FROM jobs`;
      t.is(rows.length, accepted.length, 'exactly the accepted jobs are stored');
      t.deepEqual(rows.map((r) => r.id).sort(), [...accepted].sort());
      t.true(rows.every((r) => r.state === 'SUCCEEDED' && r.attempt === 1));
      const attempts = await verify`SELECT count(*)::int AS n FROM job_attempts`;
      t.is(attempts[0]!.n, accepted.length, 'each job ran once');
    } finally {
      await verify.end();
    }
    t.is((await gridctl(cp.address, ['logs', through.id])).stdout.toString(), 'before\nafter\n');
    t.log(`${accepted.length} accepted, ${refused.length} refused with UNAVAILABLE during a 3 s outage`);
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
    await pg.destroy();
  }
});
