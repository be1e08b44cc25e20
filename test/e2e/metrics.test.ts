// Both /metrics endpoints, scraped before and after jobs of each outcome: each
// counter moved by exactly the jobs that ran, and the histograms have samples.
import test from 'ava';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { clients, commandSpec, freePort, jobWhenEnded, startAgent, startControlPlane, until, waitForJob, waitForNodes } from '../helpers/grid.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => db?.drop());

/** Prometheus text → "name{labels}" → value. */
async function scrape(address: string): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) values.set(m[1]!, Number(m[2]));
  }
  return values;
}
const moved = (before: Map<string, number>, after: Map<string, number>, key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);

test('counters move by the jobs of each outcome; histograms and gauges are there', async (t) => {
  const [cpMetrics, agentMetrics] = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
  const cp = await startControlPlane(db.url, ['--metrics-listen', cpMetrics]);
  const agent = startAgent(cp.address, 'metrics-node', ['--metrics-listen', agentMetrics]);
  const api = clients(cp.address);
  try {
    await waitForNodes(api, ['metrics-node']);
    const [cpBefore, agentBefore] = [await scrape(cpMetrics), await scrape(agentMetrics)];
    const submit = async (command: string[], extra = {}) => (await api.jobs.submitJob({ spec: commandSpec(command, extra), requestId: '' })).job!.id;
    const ok = [await submit(['true']), await submit(['echo', 'hello'])];
    const failed = await submit(['sh', '-c', 'echo oops >&2; exit 3']);
    const timedOut = await submit(['sleep', '30'], { timeout: { seconds: 1n, nanos: 0 }, stopGrace: { seconds: 0n, nanos: 0 } });
    const cancelled = await submit(['sleep', '30']);
    await waitForJob(api, cancelled, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job to cancel runs');
    await api.jobs.cancelJob({ jobId: cancelled, grace: { seconds: 0n, nanos: 0 } });
    for (const id of [...ok, failed, timedOut, cancelled]) await jobWhenEnded(api, id, 30_000);
    const [cpAfter, agentAfter] = [await scrape(cpMetrics), await scrape(agentMetrics)];

    t.is(moved(cpBefore, cpAfter, 'grid_jobs_submitted_total'), 5);
    t.is(moved(cpBefore, cpAfter, 'grid_jobs_ended_total{reason="SUCCEEDED"}'), 2);
    t.is(moved(cpBefore, cpAfter, 'grid_jobs_ended_total{reason="FAILED"}'), 1);
    t.is(moved(cpBefore, cpAfter, 'grid_jobs_ended_total{reason="TIMED_OUT"}'), 1);
    t.is(moved(cpBefore, cpAfter, 'grid_jobs_ended_total{reason="CANCELLED"}'), 1);
    t.is(moved(cpBefore, cpAfter, 'grid_dispatch_seconds_count{phase="submitted_to_assigned"}'), 5);
    t.is(moved(cpBefore, cpAfter, 'grid_dispatch_seconds_count{phase="assigned_to_started"}'), 5);
    t.true((cpAfter.get('grid_postgres_statement_seconds_count{statement="claim"}') ?? 0) > 0 || (cpAfter.get('grid_postgres_statement_seconds_count{statement="submit"}') ?? 0) > 0);
    // The pool as PostgreSQL sees this replica's connections: at least the one answering the scrape is active.
    t.is(cpAfter.get('grid_postgres_pool_max_connections'), 10);
    t.true((cpAfter.get('grid_postgres_connections{state="active"}') ?? 0) >= 1);
    // The pool's, and postgres.js's one LISTEN connection beside it.
    t.true((cpAfter.get('grid_postgres_connections{state="active"}') ?? 0) + (cpAfter.get('grid_postgres_connections{state="idle"}') ?? 0) <= 10 + 1);
    t.is(cpAfter.get('grid_nodes{state="READY"}'), 1);
    t.is(cpAfter.get('grid_queue_depth{kind="fit"}'), 0);
    t.is(cpAfter.get('grid_jobs_active{state="RUNNING"}'), 0);
    t.is(cpAfter.get('grid_agent_streams_opened_total'), 1);
    t.true((cpAfter.get('grid_heartbeat_lag_seconds') ?? 99) < 5);

    t.is(moved(agentBefore, agentAfter, 'grid_agent_container_start_seconds_count'), 5);
    t.is(moved(agentBefore, agentAfter, 'grid_agent_log_bytes_sent_total{stream="stdout"}'), 'hello\n'.length);
    t.is(moved(agentBefore, agentAfter, 'grid_agent_log_bytes_sent_total{stream="stderr"}'), 'oops\n'.length);
    // A runner lets go of its attempt once its container is removed, and the outbox of a report once it
    // is acknowledged: both may come just after the end commits.
    await until('the agent holds no attempt and no report', async () => {
      const settled = await scrape(agentMetrics);
      return settled.get('grid_agent_containers_running') === 0 && settled.get('grid_agent_outbox_reports') === 0;
    });
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
  }
});
