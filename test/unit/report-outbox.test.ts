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

function startedAt(jobId: string, at: Date): Report {
  return { $case: 'jobStarted', value: { attempt: { jobId, attempt: 1 }, containerId: `c-${jobId}`, startedAt: at } };
}

function finished(jobId: string): Report {
  return {
    $case: 'jobFinished',
    value: {
      attempt: { jobId, attempt: 1 },
      exitCode: 0,
      reason: EndReason.END_REASON_SUCCEEDED,
      message: '',
      handedBack: false,
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
  outbox.send(finished('c'));
  t.is(outbox.pending, 3);

  const q = new AsyncQueue<ConnectRequest>();
  t.is(q.size, 0);
  outbox.attach(q);
  t.is(q.size, 3);
  t.deepEqual(await drain(q), [
    [1n, 'jobStarted:a'],
    [2n, 'jobStarted:b'],
    [3n, 'jobFinished:c'],
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

// An attempt that starts and ends within one report window is reported once.

test('a start and an end within the window go out at once, as one jobFinished that carries the start time', async (t) => {
  const outbox = new ReportOutbox({ memoryLimitBytes: Infinity, windowMs: 50 });
  const q = new AsyncQueue<ConnectRequest>();
  outbox.attach(q);
  const at = new Date('2026-12-02T00:00:00Z');
  const startAcked = outbox.send(startedAt('a', at));
  t.is(q.size, 0, 'a start waits for the window');
  const endAcked = outbox.send(finished('a'));
  // An end is the last the attempt will say, and someone waits for it: it does not wait for the window.
  t.is(q.size, 1, 'the end goes out at once, with what waited before it');
  t.is(outbox.pending, 1);
  outbox.ack(1n);
  await Promise.all([startAcked, endAcked]);
  t.is(outbox.pending, 0, 'acking the end settles the start it replaced');
  t.deepEqual(await drain(q), [[1n, 'jobFinished:a']]);
});

test('the merged jobFinished keeps its own start time and takes the start report\'s when it has none', async (t) => {
  const outbox = new ReportOutbox();
  const at = new Date('2026-12-02T00:00:00Z');
  outbox.send(startedAt('a', at));
  outbox.send(finished('a'));
  const own = new Date('2026-12-02T00:00:01Z');
  outbox.send(startedAt('b', at));
  const b = finished('b');
  if (b.$case === 'jobFinished') b.value.startedAt = own;
  outbox.send(b);
  const q = new AsyncQueue<ConnectRequest>();
  outbox.attach(q);
  q.end();
  const sent: ConnectRequest[] = [];
  for await (const req of q) sent.push(req);
  t.deepEqual(
    sent.map((r) => [r.message?.$case, r.message?.$case === 'jobFinished' ? r.message.value.startedAt?.toISOString() : undefined]),
    [
      ['jobFinished', at.toISOString()],
      ['jobFinished', own.toISOString()],
    ],
  );
});

test('reports of an attempt that ended while no stream was up go out as its end alone, after its output', async (t) => {
  const outbox = new ReportOutbox();
  outbox.send(started('a'));
  outbox.send(started('b'));
  outbox.send({ $case: 'jobOutput', value: { attempt: { jobId: 'a', attempt: 1 }, chunks: [] } });
  outbox.send(finished('a'));
  t.is(outbox.pending, 3);
  const q = new AsyncQueue<ConnectRequest>();
  outbox.attach(q);
  t.deepEqual(await drain(q), [
    [1n, 'jobStarted:b'],
    [2n, 'jobOutput:a'],
    [3n, 'jobFinished:a'],
  ]);
});

test('a start already on the stream is not replaced: both go out', async (t) => {
  const outbox = new ReportOutbox();
  const q = new AsyncQueue<ConnectRequest>();
  outbox.attach(q);
  outbox.send(started('a'));
  outbox.send(finished('a'));
  t.deepEqual(await drain(q), [
    [1n, 'jobStarted:a'],
    [2n, 'jobFinished:a'],
  ]);
});

test('a start sent on a stream that broke, unacknowledged, is replaced by an end that comes before the next stream', async (t) => {
  const outbox = new ReportOutbox();
  outbox.attach(new AsyncQueue<ConnectRequest>());
  const startAcked = outbox.send(started('a'));
  outbox.detach();
  outbox.send(finished('a'));
  const q = new AsyncQueue<ConnectRequest>();
  outbox.attach(q);
  t.deepEqual(await drain(q), [[1n, 'jobFinished:a']]);
  outbox.ack(1n);
  await startAcked;
  t.is(outbox.pending, 0);
});
