// A cancel outlives the agent that carried it out. A RUNNING job is cancelled
// (grace 0), its agent kills the container (exit 137), and the agent dies
// before its report of the cancel is committed, because Postgres is
// unreachable just then. The next agent of the node finds the exited container;
// the job must still end CANCELLED, not FAILED with exit code 137 as a process
// that died by itself would — with the control plane kept running, and with
// it restarted in between too.
//
// Deterministic: the test holds a lock on the job's attempt-history row, which
// the finish report's statement updates and the cancel's does not, so the
// cancel commits and the report waits uncommitted until Postgres is crashed
// under it. Nothing else may end the job meanwhile: the reconnect grace (30 s)
// keeps the node from being judged lost (a cancelling job on a lost node ends
// CANCELLED anyway), and the backstop margin (60 s) keeps the control plane from
// ending the cancel itself.
import test, { type ExecutionContext } from 'ava';
import Docker from 'dockerode';
import postgres from 'postgres';
import { EndReason, JobState } from '../../common/gen/grid/v1/job.js';
import { msToDuration } from '../../common/units.js';
import { startPrivatePostgres } from '../helpers/private-postgres.js';
import {
  clients,
  commandSpec,
  freePort,
  jobWhenEnded,
  sleep,
  startAgent,
  startControlPlane,
  until,
  waitForJob,
  waitForNodes,
} from '../helpers/grid.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

const containersOf = (jobId: string) => docker.listContainers({ all: true, filters: { label: [`dev.grid.job-id=${jobId}`] } });

async function cancelledThenAgentKilled(t: ExecutionContext, restartControlPlane: boolean): Promise<void> {
  const pg = await startPrivatePostgres();
  const listen = `127.0.0.1:${await freePort()}`;
  const cpArgs = ['--listen', listen, '--reconnect-grace', '30s', '--backstop-margin', '60s'];
  let cp = await startControlPlane(pg.url, cpArgs);
  const node = `durable-${restartControlPlane ? 'cp' : 'agent'}-${process.pid}`;
  let agent = startAgent(cp.address, node, ['--slots', '1']);
  let api = clients(cp.address);
  const probe = postgres(pg.url, { max: 1, onnotice: () => {} });
  const holder = postgres(pg.url, { max: 1, onnotice: () => {} });
  try {
    await waitForNodes(api, [node]);
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['sleep', '60']), requestId: '' });
    const id = job!.id;
    await waitForJob(api, id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs');

    // A client of its own (one connection): its transaction lasts until Postgres stops.
    await holder`BEGIN`;
    await holder`SELECT 1 FROM job_attempts WHERE job_id = ${id} FOR UPDATE`;
    const cancelled = (await api.jobs.cancelJob({ jobId: id, grace: msToDuration(0) })).job!;
    t.is(JobState[cancelled.state], JobState[JobState.JOB_STATE_CANCELLING]);
    // The agent killed the container and reported; the report's statement waits on the lock.
    await until('the container has exited', async () => (await containersOf(id))[0]?.State === 'exited');
    await until('the finish report waits on the held row', async () => {
      const [{ n }] = await probe`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE application_name LIKE 'grid-control-plane%' AND wait_event_type = 'Lock'`;
      return n > 0;
    });
    // Immediate shutdown: every backend goes at once. (A fast shutdown ends the lock
    // holder's transaction too, and the waiting report could slip in and commit.)
    await pg.crash();
    agent.child.kill('SIGKILL');
    await agent.stop();
    if (restartControlPlane) {
      cp.child.kill('SIGKILL');
      await cp.stop();
      api.close();
    } else {
      // The old stream's report is retried at most 2 s apart while Postgres is
      // down, until a retry sees the stream is over: let it give up first, so
      // that this control plane cannot commit it once Postgres is back.
      await sleep(3000);
    }
    await pg.start();
    if (restartControlPlane) {
      cp = await startControlPlane(pg.url, cpArgs);
      api = clients(cp.address);
    }
    const [before] = await probe`SELECT state FROM jobs WHERE id = ${id}`;
    t.is(before!.state, 'CANCELLING', 'the killed agent\'s report was never committed');

    const restartedAt = Date.now();
    agent = startAgent(cp.address, node, ['--slots', '1']);
    const final = await jobWhenEnded(api, id, 20_000);
    t.log(
      `after the agent restart${restartControlPlane ? ' (control plane restarted too)' : ''} the job was ` +
        `${JobState[final.state]} (${EndReason[final.endReason]}, exit code ${final.exitCode}) within ${Date.now() - restartedAt} ms`,
    );
    t.is(JobState[final.state], JobState[JobState.JOB_STATE_CANCELLED]);
    t.is(EndReason[final.endReason], EndReason[EndReason.END_REASON_CANCELLED]);
    t.true(final.exitCode === undefined || final.exitCode === 137, `exit code ${final.exitCode}`);
    t.is(final.attempt, 1);
    t.notRegex(final.message, /was lost|control plane ended it/, 'ended by the agent\'s report, not by a verdict of the control plane');
    const attempts = await probe`SELECT attempt, outcome FROM job_attempts WHERE job_id = ${id}`;
    t.deepEqual(attempts.map((a) => [a.attempt, a.outcome]), [[1, 'CANCELLED']], 'the attempt was not lost');
    await until('the job\'s container is removed', async () => (await containersOf(id)).length === 0).catch(() => {});
    t.deepEqual(await containersOf(id), [], 'no container of the job is left');
  } finally {
    await holder.end({ timeout: 0 }).catch(() => {});
    api.close();
    await agent.stop();
    await cp.stop();
    await probe.end({ timeout: 1 });
    await pg.destroy();
  }
}

test.serial('cancelled, container killed, agent killed before its report committed: the restarted agent\'s report ends the job CANCELLED', (t) =>
  cancelledThenAgentKilled(t, false),
);

test.serial('the same with the control plane killed and restarted in between: the job still ends CANCELLED', (t) =>
  cancelledThenAgentKilled(t, true),
);
