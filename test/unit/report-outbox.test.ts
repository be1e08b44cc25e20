// ReportOutbox: reports stay pending until acked and are resent, in order, with
// fresh sequence numbers on every new stream.
import test from 'ava';
import { AsyncQueue } from '../../common/async-queue.js';
import type { ConnectRequest } from '../../common/gen/grid/v1/agent.js';
import { EndReason } from '../../common/gen/grid/v1/job.js';
import { ReportOutbox, type Report } from '../../agent/report-outbox.js';

function started(jobId: string): Report {
  return { $case: 'jobStarted', value: { attempt: { jobId, attempt: 1 }, containerId: `c-${jobId}`, startedAt: undefined } };
}

function finished(jobId: string): Report {
  return {
    $case: 'jobFinished',
    value: {
      attempt: { jobId, attempt: 1 },
      exitCode: 0,
      reason: EndReason.END_REASON_SUCCEEDED,
      message: '',
      stdoutBytes: 0n,
      stderrBytes: 0n,
      startedAt: undefined,
      finishedAt: undefined,
    },
  };
}

/** Ends the queue and returns everything that was pushed to it, as [seq, job id]. */
async function drain(queue: AsyncQueue<ConnectRequest>): Promise<Array<[bigint, string]>> {
  queue.end();
  const out: Array<[bigint, string]> = [];
  for await (const req of queue) {
    const m = req.message;
    if (m?.$case !== 'jobStarted' && m?.$case !== 'jobFinished' && m?.$case !== 'jobOutput') {
      throw new Error(`unexpected message ${m?.$case}`);
    }
    out.push([req.seq, `${m.$case}:${m.value.attempt?.jobId}`]);
  }
  return out;
}

test('reports sent while detached are buffered, then sent on attach in order with seq 1..n', async (t) => {
  const outbox = new ReportOutbox();
  outbox.send(started('a'));
  outbox.send(started('b'));
  outbox.send(finished('a'));
  t.is(outbox.pending, 3);

  const q = new AsyncQueue<ConnectRequest>();
  t.is(q.size, 0);
  outbox.attach(q);
  t.is(q.size, 3);
  t.deepEqual(await drain(q), [
    [1n, 'jobStarted:a'],
    [2n, 'jobStarted:b'],
    [3n, 'jobFinished:a'],
  ]);
  t.is(outbox.pending, 3, 'sending is not acknowledging');
});

test('reports sent while attached go out at once and continue the sequence', async (t) => {
  const outbox = new ReportOutbox();
  outbox.send(started('a'));
  const q = new AsyncQueue<ConnectRequest>();
  outbox.attach(q);
  outbox.send(started('b'));
  t.is(q.size, 2);
  t.deepEqual(await drain(q), [
    [1n, 'jobStarted:a'],
    [2n, 'jobStarted:b'],
  ]);
});

test('the seq on the message is a bigint', async (t) => {
  const outbox = new ReportOutbox();
  const q = new AsyncQueue<ConnectRequest>();
  outbox.attach(q);
  outbox.send(started('a'));
  const [[seq]] = await drain(q) as [[bigint, string]];
  t.is(typeof seq, 'bigint');
  t.is(seq, 1n);
});

test('ack(seq) removes exactly that report', async (t) => {
  const outbox = new ReportOutbox();
  const q = new AsyncQueue<ConnectRequest>();
  outbox.attach(q);
  outbox.send(started('a'));
  outbox.send(started('b'));
  outbox.send(started('c'));
  outbox.ack(2n);
  t.is(outbox.pending, 2);
  outbox.ack(2n);
  t.is(outbox.pending, 2, 'a repeated ack changes nothing');
  outbox.ack(99n);
  t.is(outbox.pending, 2, 'an unknown seq changes nothing');

  // Which two remain shows on the next stream.
  outbox.detach();
  const q2 = new AsyncQueue<ConnectRequest>();
  outbox.attach(q2);
  t.deepEqual(await drain(q2), [
    [1n, 'jobStarted:a'],
    [2n, 'jobStarted:c'],
  ]);
});

test('acks arriving while detached settle nothing', (t) => {
  const outbox = new ReportOutbox();
  const q = new AsyncQueue<ConnectRequest>();
  outbox.attach(q);
  outbox.send(started('a'));
  outbox.detach();
  outbox.ack(1n);
  t.is(outbox.pending, 1);
});

test('after detach and attach to a new stream, unacked reports are resent in order with seqs from 1', async (t) => {
  const outbox = new ReportOutbox();
  const q1 = new AsyncQueue<ConnectRequest>();
  outbox.attach(q1);
  outbox.send(started('a'));
  outbox.send(started('b'));
  outbox.send(finished('a'));
  outbox.send(finished('b'));
  outbox.ack(1n);
  outbox.ack(3n);
  outbox.detach();
  outbox.send(started('c'));
  t.is(q1.size, 4, 'nothing more goes to the old stream after detach');

  const q2 = new AsyncQueue<ConnectRequest>();
  outbox.attach(q2);
  t.deepEqual(await drain(q2), [
    [1n, 'jobStarted:b'],
    [2n, 'jobFinished:b'],
    [3n, 'jobStarted:c'],
  ]);

  // Acks now refer to the new stream's numbering.
  outbox.ack(2n);
  t.is(outbox.pending, 2);
  outbox.detach();
  const q3 = new AsyncQueue<ConnectRequest>();
  outbox.attach(q3);
  t.deepEqual(await drain(q3), [
    [1n, 'jobStarted:b'],
    [2n, 'jobStarted:c'],
  ]);
});

test('drained() resolves at once when nothing is pending', async (t) => {
  const outbox = new ReportOutbox();
  await outbox.drained();
  t.is(outbox.pending, 0);
});

test('drained() resolves only once every report has been acked', async (t) => {
  const outbox = new ReportOutbox();
  const q = new AsyncQueue<ConnectRequest>();
  outbox.attach(q);
  outbox.send(started('a'));
  outbox.send(started('b'));
  let done = false;
  const drained = outbox.drained().then(() => {
    done = true;
  });

  outbox.ack(1n);
  await new Promise((resolve) => setImmediate(resolve));
  t.false(done, 'one report is still pending');
  t.is(outbox.pending, 1);

  outbox.ack(2n);
  await drained;
  t.true(done);
  t.is(outbox.pending, 0);
});

test('pending counts reports until they are acked', (t) => {
  const outbox = new ReportOutbox();
  t.is(outbox.pending, 0);
  outbox.send(started('a'));
  outbox.send(started('b'));
  t.is(outbox.pending, 2);
  const q = new AsyncQueue<ConnectRequest>();
  outbox.attach(q);
  t.is(outbox.pending, 2);
  outbox.ack(1n);
  t.is(outbox.pending, 1);
  outbox.ack(2n);
  t.is(outbox.pending, 0);
});
