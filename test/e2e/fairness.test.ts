// The per-submitter cap against real processes: with --max-running-per-submitter 2,
// one API token's burst of 12 jobs on a 6-slot node never has more than 2 of
// them assigned or running at once, and another token's jobs submitted after
// the burst start on the room left, with its first, instead of waiting behind it.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { JobState, type Job, type SubmitJobResult } from '../../common/gen/grid/v1/job.js';
import { TokenScope } from '../../common/gen/grid/v1/token.js';
import { makeTestCerts } from '../helpers/certs.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { BIN, clients, commandSpec, jobWhenEnded, startAgent, startControlPlane, waitForNodes } from '../helpers/grid.js';

const idOf = (r: SubmitJobResult): string => {
  if (r.outcome?.$case !== 'job') throw new Error(`refused: ${JSON.stringify(r.outcome)}`);
  return r.outcome.value.id;
};

/** The most intervals [assignedAt, endedAt) that overlap at any instant. */
function mostAtOnce(jobs: Job[]): number {
  const edges = jobs.flatMap((j) => [[j.assignedAt!.getTime(), 1], [j.endedAt!.getTime(), -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (now += d));
  return most;
}

test('one token\'s burst runs at most 2 at a time; another token\'s jobs queued behind it start with its first', async (t) => {
  const db = await createTestDatabase();
  const certs = makeTestCerts();
  const cp = await startControlPlane(db.url, [...certs.serverArgs, '--max-running-per-submitter', '2']);
  const node = `fair-${process.pid}`;
  const agent = startAgent(cp.address, node, [...certs.agent(node).args, '--slots', '6', '--cpus', '6']);
  const made = spawnSync(process.execPath, [BIN.controlPlane, 'token', 'create', '--scope', 'admin', '--name', 'root'], { env: { ...process.env, GRID_DATABASE_URL: db.url }, encoding: 'utf8' });
  const admin = clients(cp.address, { credentials: certs.credentials(), token: made.stdout.trim() });
  try {
    await waitForNodes(admin, [node]);
    const token = async (name: string) => (await admin.tokens.createToken({ name, scope: TokenScope.TOKEN_SCOPE_SUBMIT, expiresIn: undefined }));
    const [burstToken, otherToken] = [await token('burst'), await token('other')];
    const burst = clients(cp.address, { credentials: certs.credentials(), token: burstToken.token });
    const other = clients(cp.address, { credentials: certs.credentials(), token: otherToken.token });
    try {
      const burstIds = (await burst.jobs.submitJobs({ requests: Array.from({ length: 12 }, () => ({ spec: commandSpec(['sleep', '1']), requestId: '' })) })).results.map(idOf);
      const otherIds = (await other.jobs.submitJobs({ requests: Array.from({ length: 3 }, () => ({ spec: commandSpec(['sleep', '1']), requestId: '' })) })).results.map(idOf);
      const others = await Promise.all(otherIds.map((id) => jobWhenEnded(admin, id, 60_000)));
      const bursts = await Promise.all(burstIds.map((id) => jobWhenEnded(admin, id, 120_000)));
      t.true([...others, ...bursts].every((j) => j.state === JobState.JOB_STATE_SUCCEEDED));
      t.is(bursts[0]!.submitter, burstToken.info!.id, 'a job says which token submitted it');
      t.is(others[0]!.submitter, otherToken.info!.id);
      t.is(mostAtOnce(bursts), 2, 'the burst ran 2 at a time, never more');
      t.is(mostAtOnce(others), 2, 'the other token is held to 2 as well');
      // Behind the burst in the queue, yet started with its first jobs: without the cap the
      // burst would take all 6 slots, twice over, before the other token's first job.
      const burstStarts = bursts.map((j) => j.assignedAt!.getTime()).sort((a, b) => a - b);
      const otherFirst = Math.min(...others.map((j) => j.assignedAt!.getTime()));
      t.log(`the other token's first job was assigned ${otherFirst - burstStarts[0]!} ms after the burst's first, and before its third (${burstStarts[2]! - burstStarts[0]!} ms)`);
      t.true(otherFirst < burstStarts[2]!, 'the other token\'s first job did not wait behind the burst');
      t.true(Math.max(...others.map((j) => j.endedAt!.getTime())) < burstStarts[11]!, 'the other token was done before the burst\'s last job started');
    } finally {
      burst.close();
      other.close();
    }
  } finally {
    admin.close();
    await agent.stop();
    await cp.stop();
    await db.drop();
  }
});
