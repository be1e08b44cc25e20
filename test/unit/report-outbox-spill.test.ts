import test from 'ava';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsyncQueue } from '../../common/async-queue.js';
import type { ConnectRequest } from '../../common/gen/grid/v1/agent.js';
import { LogStream } from '../../common/gen/grid/v1/job.js';
import { ReportOutbox, type Report } from '../../agent/report-outbox.js';

const output = (i: number, bytes: number): Report => ({
  $case: 'jobOutput',
  value: {
    attempt: { jobId: 'job', attempt: 1 },
    chunks: [{ stream: LogStream.LOG_STREAM_STDOUT, offset: BigInt(i * bytes), data: Buffer.alloc(bytes, i % 256), time: new Date(0), attempt: 1 }],
  },
});

async function drain(queue: AsyncQueue<ConnectRequest>): Promise<ConnectRequest[]> {
  queue.end();
  const items: ConnectRequest[] = [];
  for await (const item of queue) items.push(item);
  return items;
}

test('past the memory bound, output reports wait in the spill file and come back intact, in order', async (t) => {
  const spillFile = join(mkdtempSync(join(tmpdir(), 'outbox-')), 'outbox.spill');
  const outbox = new ReportOutbox({ memoryLimitBytes: 10_000, spillFile });
  const sent = Array.from({ length: 20 }, (_, i) => output(i, 1000));
  for (const r of sent) void outbox.send(r);
  t.true(outbox.bytesInMemory <= 10_000, `held ${outbox.bytesInMemory} bytes in memory`);
  t.true(outbox.spilledReports >= 10);
  t.true(statSync(spillFile).size > 10_000);

  const stream = new AsyncQueue<ConnectRequest>();
  outbox.attach(stream);
  const received = await drain(stream);
  t.is(received.length, 20);
  t.deepEqual(received.map((r) => r.seq), sent.map((_, i) => BigInt(i + 1)));
  for (const [i, r] of received.entries()) {
    const chunk = (r.message as Extract<Report, { $case: 'jobOutput' }>).value.chunks[0]!;
    t.is(chunk.offset, BigInt(i * 1000));
    t.deepEqual(Buffer.from(chunk.data), Buffer.alloc(1000, i));
  }
  for (const r of received) outbox.ack(r.seq);
  t.is(outbox.pending, 0);
  t.true(!existsSync(spillFile) || statSync(spillFile).size === 0, 'the spill file is emptied once everything is acked');
});

test('a report resolves its promise only when acknowledged', async (t) => {
  const outbox = new ReportOutbox();
  const stream = new AsyncQueue<ConnectRequest>();
  outbox.attach(stream);
  let acked = false;
  const done = outbox.send(output(0, 10)).then(() => (acked = true));
  await Promise.resolve();
  t.false(acked);
  t.deepEqual([...outbox.pendingAttempts()], ['job/1']);
  outbox.ack(1n);
  await done;
  t.true(acked);
  t.deepEqual([...outbox.pendingAttempts()], []);
});
