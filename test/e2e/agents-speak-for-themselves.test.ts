// A node may report only on the attempts assigned to it. An impostor stream
// (another node id, plaintext here; over TLS another certificate) that sends a
// finished report, with output, for an attempt running on a real agent must
// change nothing: the job keeps running, its logs stay the real ones, and the
// report is refused. (Before the fix, the job became SUCCEEDED with the forged
// output while its real container kept running.)
import test from 'ava';
import { ConnectRequest, type ConnectResponse } from '../../common/gen/grid/v1/agent.js';
import { EndReason, JobState, LogStream } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { connectRawAgent } from '../helpers/raw-agent.js';
import { clients, commandSpec, sleep, storedLogs, startAgent, startControlPlane, waitForJob, waitForNodes } from '../helpers/grid.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => db?.drop());

test('a report about another node\'s attempt is refused and changes nothing', async (t) => {
  const cp = await startControlPlane(db.url);
  const agent = startAgent(cp.address, 'honest-node');
  const api = clients(cp.address);
  let impostor: ReturnType<typeof connectRawAgent> | undefined;
  try {
    await waitForNodes(api, ['honest-node']);
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['sh', '-c', 'echo real output; sleep 30']), requestId: '' });
    const running = await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs on the honest node');
    t.is(running.nodeId, 'honest-node');
    const logsOf = () => storedLogs(api, running.id);
    // The real output first, so that what is stored afterwards is all the impostor's doing.
    for (const until = Date.now() + 10_000; (await logsOf()) === '' && Date.now() < until; ) await sleep(50);
    // Knowing only what ListJobs shows (the job id and attempt), as a stranger would.
    impostor = connectRawAgent(cp.address, 'impostor-node', 'impostor-1');
    t.is(((await impostor.first) as ConnectResponse).message?.$case, 'welcome');
    const attempt = { jobId: running.id, attempt: running.attempt };
    const now = new Date();
    impostor!.send(ConnectRequest.fromPartial({ seq: 1n, message: { $case: 'jobStarted', value: { attempt, containerId: 'forged', startedAt: now } } }));
    impostor!.send(
      ConnectRequest.fromPartial({
        seq: 2n,
        message: { $case: 'jobOutput', value: { attempt, chunks: [{ stream: LogStream.LOG_STREAM_STDOUT, offset: 0n, data: Buffer.from('FORGED\n'), time: now }] } },
      }),
    );
    impostor!.send(
      ConnectRequest.fromPartial({
        seq: 3n,
        message: { $case: 'jobFinished', value: { attempt, exitCode: 0, reason: EndReason.END_REASON_SUCCEEDED, message: 'forged', startedAt: now, finishedAt: now } },
      }),
    );
    // Every report is acknowledged as refused (ok: false)...
    const deadline = Date.now() + 10_000;
    const acks = () => impostor!.later.filter((m) => m.message?.$case === 'ack');
    while (acks().length < 3 && Date.now() < deadline) await sleep(50);
    t.deepEqual(
      acks().map((m) => (m.message?.$case === 'ack' ? [String(m.message.value.seq), m.message.value.accepted] : [])),
      [['1', false], ['2', false], ['3', false]],
    );
    // ...and the job is as the honest node reported it.
    const after = (await api.jobs.getJob({ jobId: running.id })).job!;
    t.is(after.state, JobState.JOB_STATE_RUNNING);
    t.is(after.nodeId, 'honest-node');
    t.is(await logsOf(), 'real output\n');
    t.regex(cp.output(), /refused a report about an attempt that is not this node's/);
    await api.jobs.cancelJob({ jobId: running.id, grace: { seconds: 0n, nanos: 0 } });
  } finally {
    impostor?.close();
    api.close();
    await agent.stop();
    await cp.stop();
  }
});
