// An agent whose connection broke reconnects before the control plane has seen
// its old stream end (in a stall, or after a control plane died with the
// node's row still looking live): the same agent process (Hello.agent_instance)
// takes its node over at once, while a different process with the same node id
// is still refused. Raw AgentService.Connect streams over a real socket.
import test from 'ava';
import { ClientError, Status } from 'nice-grpc';
import { ConnectRequest, type ConnectResponse } from '../../common/gen/grid/v1/agent.js';
import { connectRawAgent as connect } from '../helpers/raw-agent.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { clients, commandSpec, freePort, sleep, startAgent, startControlPlane, waitForJob, waitForNodes } from '../helpers/grid.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => db?.drop());

const welcomed = (r: ConnectResponse | ClientError) => !(r instanceof ClientError) && r.message?.$case === 'welcome';

test.serial('the same agent process reconnecting while its old stream is still open replaces it; another process is refused', async (t) => {
  const cp = await startControlPlane(db.url);
  try {
    const a = connect(cp.address, 'flaky-net', 'process-1');
    t.true(welcomed(await a.first));
    // A different process claiming the node: refused, as before.
    const twin = connect(cp.address, 'flaky-net', 'process-2');
    const refused = await twin.first;
    t.true(refused instanceof ClientError && refused.code === Status.ALREADY_EXISTS, String(refused));
    // The first process again, on a new connection, the old stream still open here.
    const again = connect(cp.address, 'flaky-net', 'process-1');
    t.true(welcomed(await again.first), 'the reconnect is welcomed, not refused');
    await a.ended; // the old stream is closed by the control plane
    t.pass();
    again.close();
    await again.ended;
  } finally {
    await cp.stop();
  }
});

test.serial('after a control plane dies, its agents are welcomed by the next one at once, though their rows still look live', async (t) => {
  const listen = `127.0.0.1:${await freePort()}`;
  let cp = await startControlPlane(db.url, ['--listen', listen, '--heartbeat-timeout', '30s']);
  const first = connect(cp.address, 'survivor', 'process-9');
  t.true(welcomed(await first.first));
  cp.child.kill('SIGKILL');
  await cp.stop();
  await first.ended;
  cp = await startControlPlane(db.url, ['--listen', listen, '--heartbeat-timeout', '30s']);
  try {
    const back = connect(cp.address, 'survivor', 'process-9');
    t.true(welcomed(await back.first), 'welcomed at once, not refused for the 30 s the old row looks live');
    const stranger = connect(cp.address, 'survivor', 'process-10');
    const refused = await stranger.first;
    t.true(refused instanceof ClientError && refused.code === Status.ALREADY_EXISTS, String(refused));
    back.close();
    await back.ended;
  } finally {
    await cp.stop();
  }
  await sleep(0);
});

test.serial('a control plane frozen long enough for its agents\' keepalive to give up loses no node: its own stall is not their silence', async (t) => {
  const cp = await startControlPlane(db.url);
  const node = `frozen-cp-${process.pid}`;
  const agent = startAgent(cp.address, node, ['--slots', '1']);
  const api = clients(cp.address);
  try {
    await waitForNodes(api, [node]);
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['sleep', '30']), requestId: '' });
    await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs');
    // A stall (as a burst of work or a GC pause makes one), long past the heartbeat
    // timeout (3 s) and the agent's keepalive (2 s ping, 1 s timeout).
    cp.child.kill('SIGSTOP');
    await sleep(5000);
    cp.child.kill('SIGCONT');
    await waitForNodes(api, [node]);
    await sleep(3000);
    const lost = await db.sql`SELECT 1 FROM job_attempts WHERE job_id = ${job!.id} AND outcome = 'NODE_LOST'`;
    t.is(lost.length, 0, `the node was judged lost:\n${cp.output().split('\n').filter((l) => /node lost|stalled/.test(l)).join('\n')}`);
    const now = (await api.jobs.getJob({ jobId: job!.id })).job!;
    t.deepEqual([JobState[now.state], now.attempt], [JobState[JobState.JOB_STATE_RUNNING], 1]);
    await api.jobs.cancelJob({ jobId: job!.id, grace: undefined });
    await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_CANCELLED, 'the job is cancelled');
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
  }
});

test.serial('a malformed report is refused alone (acked, not accepted) and the stream goes on; a bad hello gets INVALID_ARGUMENT', async (t) => {
  const cp = await startControlPlane(db.url);
  try {
    const s = connect(cp.address, 'sloppy-agent', 'process-3');
    t.true(welcomed(await s.first));
    // A finish whose output count no database column holds: it used to fail its statement on every resend.
    s.send(ConnectRequest.fromPartial({ seq: 5n, message: { $case: 'jobFinished', value: { attempt: { jobId: '0190a3c2-0000-7000-8000-000000000001', attempt: 1 }, reason: 1, stdoutBytes: 2n ** 62n } } }));
    for (let i = 0; i < 100 && !s.later.some((r) => r.message?.$case === 'ack'); i++) await sleep(20);
    const ack = s.later.find((r) => r.message?.$case === 'ack');
    t.deepEqual(ack?.message?.$case === 'ack' ? [ack.message.value.seq, ack.message.value.accepted] : undefined, [5n, false]);
    s.send({ seq: 0n, message: { $case: 'heartbeat', value: { attempts: [], freeSlots: 1, draining: false } } });
    await sleep(200);
    t.false(cp.output().includes('agent stream failed'), 'the stream was not ended');
    s.close();
    await s.ended;
    // A 9 MB name made ListNodes fail for everyone (issue 12): refused at the door.
    const bad = connect(cp.address, 'long-name', 'process-4', 'x'.repeat(10_000));
    const refused = await bad.first;
    t.true(refused instanceof ClientError && refused.code === Status.INVALID_ARGUMENT && /hello\.name is 10000 characters: at most 256/.test(refused.details), String(refused));
    await bad.ended;
  } finally {
    await cp.stop();
  }
});

test.serial('a batch of reports is handled as its reports one by one; an agent that takes no batches is answered one message at a time; a batch in a batch is refused', async (t) => {
  const cp = await startControlPlane(db.url);
  try {
    const s = connect(cp.address, 'batching-agent', 'process-5');
    t.true(welcomed(await s.first));
    const welcome = await s.first;
    t.true(!(welcome instanceof ClientError) && welcome.message?.$case === 'welcome' && welcome.message.value.acceptsBatches, 'the welcome says batches are taken');
    // Two reports no database column holds, in one batch: each is refused alone, in order.
    const malformed = (seq: bigint) =>
      ConnectRequest.fromPartial({ seq, message: { $case: 'jobFinished', value: { attempt: { jobId: '0190a3c2-0000-7000-8000-000000000002', attempt: 1 }, reason: 1, stdoutBytes: 2n ** 62n } } });
    s.send({ seq: 0n, message: { $case: 'batch', value: { messages: [malformed(6n), malformed(7n)] } } });
    for (let i = 0; i < 100 && s.later.filter((r) => r.message?.$case === 'ack').length < 2; i++) await sleep(20);
    t.deepEqual(
      s.later.map((r) => (r.message?.$case === 'ack' ? `ack ${r.message.value.seq} ${r.message.value.accepted}` : r.message?.$case)),
      ['ack 6 false', 'ack 7 false'],
      'two acks, not one batch: this agent said it takes none',
    );
    s.send({ seq: 0n, message: { $case: 'batch', value: { messages: [{ seq: 0n, message: { $case: 'batch', value: { messages: [] } } }] } } });
    await s.ended;
    t.is(s.failure()?.code, Status.FAILED_PRECONDITION);
    t.regex(s.failure()?.details ?? '', /a batch may not hold another batch/);
  } finally {
    await cp.stop();
  }
});
