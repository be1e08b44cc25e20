// Two control-plane replicas over one database, and an agent on only one of
// them: what a client does through the other replica must work as if it had
// asked the replica holding the node's stream. A cancel through the other
// replica reaches the agent at once (not when the backstop, 5 s later, gives up
// waiting for it), and a watcher on the other replica follows the job's output
// live, whole, with no gap and no duplicate, to its real exit code.
import test from 'ava';
import Docker from 'dockerode';
import { spawn } from 'node:child_process';
import { EndReason, JobState } from '../../common/gen/grid/v1/job.js';
import { isTerminal } from '../../common/job-state.js';
import { msToDuration } from '../../common/units.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import {
  BIN,
  clients,
  commandSpec,
  sleep,
  startAgent,
  startControlPlane,
  waitForJob,
  waitForNodes,
  type Clients,
  type ControlPlaneProcess,
} from '../helpers/grid.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

let db: TestDatabase;
let a: ControlPlaneProcess;
let b: ControlPlaneProcess;
let apiA: Clients;
let apiB: Clients;
test.before(async () => {
  db = await createTestDatabase();
  [a, b] = await Promise.all([startControlPlane(db.url), startControlPlane(db.url)]);
  apiA = clients(a.address);
  apiB = clients(b.address);
});
test.after.always(async () => {
  apiA?.close();
  apiB?.close();
  await Promise.all([a?.stop(), b?.stop()]);
  await db?.drop();
});

/** Resolves with the time the job's container stopped running (or vanished), or undefined after `timeoutMs`. */
async function containerGone(jobId: string, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [c] = await docker.listContainers({ all: true, filters: { label: [`dev.grid.job-id=${jobId}`] } });
    if (!c || c.State !== 'running') return Date.now();
    await sleep(20);
  }
  return undefined;
}

/** The time the job was first seen ended, or undefined after `timeoutMs`. */
async function jobEnded(api: Clients, jobId: string, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (isTerminal((await api.jobs.getJob({ jobId })).job!.state)) return Date.now();
    await sleep(20);
  }
  return undefined;
}

test.serial('a cancel through the replica without the node\'s stream ends the job within 2 s, container gone', async (t) => {
  const node = `replica-cancel-${process.pid}`;
  const agent = startAgent(a.address, node, ['--slots', '1']);
  try {
    await waitForNodes(apiA, [node]);
    const { job } = await apiA.jobs.submitJob({ spec: commandSpec(['sleep', '60']), requestId: '' });
    await waitForJob(apiA, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs');
    await sleep(300);

    // A correctness bound, well under the backstop's 5 s; watched for longer, to tell how long it took.
    const BOUND_MS = 2000;
    const WATCH_MS = 8000;
    const cancelledAt = Date.now();
    const [ended, gone] = [jobEnded(apiB, job!.id, WATCH_MS), containerGone(job!.id, WATCH_MS)];
    await apiB.jobs.cancelJob({ jobId: job!.id, grace: msToDuration(0) });
    const endedAt = await ended;
    const goneAt = await gone;
    const endedAfter = endedAt && endedAt - cancelledAt;
    const goneAfter = goneAt && goneAt - cancelledAt;
    t.log(`cancel through the other replica ended the job after ${endedAfter ?? `> ${WATCH_MS}`} ms, container gone after ${goneAfter ?? `> ${WATCH_MS}`} ms`);
    t.true(endedAfter !== undefined && endedAfter <= BOUND_MS, `the job ended ${endedAfter ?? `not within ${WATCH_MS}`} ms after the cancel`);
    t.true(goneAfter !== undefined && goneAfter <= BOUND_MS, `the container stopped ${goneAfter ?? `not within ${WATCH_MS}`} ms after the cancel`);
    const final = (await apiB.jobs.getJob({ jobId: job!.id })).job!;
    t.is(JobState[final.state], JobState[JobState.JOB_STATE_CANCELLED]);
    t.is(EndReason[final.endReason], EndReason[EndReason.END_REASON_CANCELLED]);
    t.notRegex(final.message, /control plane ended it/, 'ended by the agent\'s confirmation, not by the backstop');
  } finally {
    await agent.stop();
  }
});

test.serial('a watcher on replica A follows a job on an agent of replica B live to its end: all output, exit code 3', async (t) => {
  const node = `replica-watch-${process.pid}`;
  const agent = startAgent(b.address, node, ['--slots', '1']);
  try {
    await waitForNodes(apiB, [node]);
    // 20 lines on stdout and 4 on stderr over about 2 s.
    const script = 'for i in $(seq 1 20); do echo "out $i"; if [ $((i % 5)) -eq 0 ]; then echo "err $i" >&2; fi; sleep 0.1; done; exit 3';
    const { job } = await apiA.jobs.submitJob({ spec: commandSpec(['sh', '-c', script]), requestId: '' });

    const follower = spawn(process.execPath, [BIN.gridctl, 'logs', '-f', job!.id], {
      env: { ...process.env, GRID_SERVER: a.address },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let firstStdoutAt: number | undefined;
    follower.stdout.on('data', (d: Buffer) => {
      firstStdoutAt ??= Date.now();
      out.push(d);
    });
    follower.stderr.on('data', (d: Buffer) => err.push(d));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => follower.kill('SIGKILL'), 30_000);
      follower.once('close', (c) => (clearTimeout(timer), resolve(c)));
    });

    const final = (await apiA.jobs.getJob({ jobId: job!.id })).job!;
    const [stdout, stderr] = [Buffer.concat(out).toString(), Buffer.concat(err).toString()];
    const aheadMs = firstStdoutAt === undefined ? undefined : final.endedAt!.getTime() - firstStdoutAt;
    t.log(
      `the follower on A got ${stdout.length} bytes of stdout, ${stderr.length} of stderr, exit code ${code}; ` +
        `its first stdout byte came ${aheadMs ?? '(never)'} ms before the job ended (it ran ${final.endedAt!.getTime() - final.startedAt!.getTime()} ms)`,
    );
    t.is(final.nodeId, node, 'the job ran on the agent of replica B');
    t.is(final.exitCode, 3);
    t.is(code, 3, 'gridctl exits with the job\'s exit code');
    t.is(stdout, Array.from({ length: 20 }, (_, i) => `out ${i + 1}\n`).join(''), 'the follower on A got all of stdout, no gap, no duplicate');
    t.is(stderr, [5, 10, 15, 20].map((i) => `err ${i}\n`).join(''), 'and all of stderr');
    t.true(aheadMs !== undefined && aheadMs >= 1000, 'the output arrived live, not only at the end');
  } finally {
    await agent.stop();
  }
});
