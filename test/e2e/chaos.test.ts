// 200 short jobs while agents are SIGKILLed and restarted at random, some back
// within the reconnect grace (their containers are taken up again), some after
// it (their attempts are lost and requeued). Every job must end exactly once,
// none may go missing, and no attempt's output may be doubled.
import test from 'ava';
import { JobState, type JobSpec } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { clients, commandSpec, sleep, startAgent, startControlPlane, waitForNodes, type RunningProcess } from '../helpers/grid.js';

const JOBS = 200;

test('200 jobs while agents are killed and restarted at random: each ends exactly once, none missing', async (t) => {
  t.timeout(240_000);
  const db = await createTestDatabase();
  const cp = await startControlPlane(db.url, ['--reconnect-grace', '2s']);
  const api = clients(cp.address);
  const nodes = [0, 1, 2].map((i) => `chaos-${i}-${process.pid}`);
  const agents = new Map<string, RunningProcess>(nodes.map((id) => [id, startAgent(cp.address, id, ['--slots', '2'])]));
  let kills = 0;
  let lateRestarts = 0;
  try {
    await waitForNodes(api, nodes);
    const spec: JobSpec = commandSpec(['sh', '-c', 'echo "$GRID_JOB_ID $GRID_ATTEMPT"; sleep 0.3'], { maxAttempts: 5 });
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) ids.push((await api.jobs.submitJob({ spec, requestId: `chaos-${i}` })).job!.id);

    const pending = async () =>
      (await db.sql`SELECT count(*)::int AS n FROM jobs WHERE state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')`)[0]!.n as number;
    const deadline = Date.now() + 180_000;
    let chaosUntil = Date.now() + 25_000;
    while ((await pending()) > 0 && Date.now() < deadline) {
      if (Date.now() < chaosUntil) {
        const victim = nodes[Math.floor(Math.random() * nodes.length)]!;
        const agent = agents.get(victim)!;
        agent.child.kill('SIGKILL');
        await agent.stop();
        kills++;
        const late = Math.random() < 0.3;
        if (late) lateRestarts++;
        await sleep(late ? 2600 : 100 + Math.random() * 400);
        agents.set(victim, startAgent(cp.address, victim, ['--slots', '2']));
        await sleep(400 + Math.random() * 800);
      } else {
        await sleep(250);
      }
      if (Date.now() > chaosUntil && (await pending()) === 0) break;
    }
    chaosUntil = 0;
    t.log(`${kills} agent kills (${lateRestarts} restarted after the grace)`);

    const jobs = await db.sql`SELECT id::text, state, end_reason, attempt FROM jobs`;
    t.is(jobs.length, JOBS, 'no job is missing and none was added');
    t.deepEqual(jobs.map((j) => j.id).sort(), [...ids].sort());
    const notEnded = jobs.filter((j) => !['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(j.state) || j.end_reason === null);
    t.deepEqual(notEnded, [], 'every job has exactly one terminal state');

    // Per job: every attempt but the last was lost; the last one's outcome is the job's.
    const attempts = await db.sql`
      SELECT job_id::text, attempt, outcome FROM job_attempts ORDER BY job_id, attempt`;
    const byJob = new Map<string, { attempt: number; outcome: string | null }[]>();
    for (const a of attempts) byJob.set(a.job_id, [...(byJob.get(a.job_id) ?? []), { attempt: a.attempt, outcome: a.outcome }]);
    const states: Record<string, number> = {};
    for (const job of jobs) {
      states[job.end_reason] = (states[job.end_reason] ?? 0) + 1;
      const history = byJob.get(job.id) ?? [];
      t.is(history.length, job.attempt, `job ${job.id} has one history row per attempt`);
      for (const a of history.slice(0, -1)) t.is(a.outcome, 'NODE_LOST', `job ${job.id} attempt ${a.attempt} was superseded, so it must be lost`);
      t.is(history.at(-1)?.outcome, job.end_reason, `job ${job.id}'s last attempt ended as the job did`);
    }
    t.log(`end reasons: ${JSON.stringify(states)}; attempts: ${attempts.length}`);
    t.true((states.SUCCEEDED ?? 0) > JOBS / 2, 'most jobs succeeded');

    // A succeeded job's output is its last attempt's line, once.
    const outputs = await db.sql`
      SELECT j.id::text, j.attempt, convert_from(string_agg(l.data, ''::bytea ORDER BY l.byte_offset), 'UTF8') AS out
      FROM jobs j JOIN job_logs l ON l.job_id = j.id AND l.attempt = j.attempt AND l.stream = 1
      WHERE j.state = 'SUCCEEDED' GROUP BY j.id, j.attempt`;
    t.is(outputs.length, states.SUCCEEDED);
    for (const o of outputs) t.is(o.out, `${o.id} ${o.attempt}\n`);
    t.is((await api.jobs.listJobs({ states: [JobState.JOB_STATE_QUEUED, JobState.JOB_STATE_RUNNING], pageSize: 10, pageToken: '' })).jobs.length, 0);
  } finally {
    api.close();
    for (const a of agents.values()) await a.stop();
    await cp.stop();
    await db.drop();
  }
});
