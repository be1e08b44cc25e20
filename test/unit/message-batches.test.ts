// Batches on the agent stream: what is queued by the time the last write went
// out leaves as one message; nothing waits to fill one.
import test from 'ava';
import { AsyncQueue } from '../../common/async-queue.js';
import type { ConnectRequest, ConnectResponse } from '../../common/gen/grid/v1/agent.js';
import { requestBatches, responseBatches, unbatchRequest, unbatchResponse } from '../../common/message-batches.js';

const ack = (seq: bigint): ConnectResponse => ({ message: { $case: 'ack', value: { seq, accepted: true } } });
const describe = (r: ConnectResponse): string =>
  r.message?.$case === 'batch' ? `batch(${r.message.value.messages.map(describe).join(',')})` : r.message?.$case === 'ack' ? `ack${r.message.value.seq}` : String(r.message?.$case);

async function take(gen: AsyncGenerator<ConnectResponse>, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(describe((await gen.next()).value as ConnectResponse));
  return out;
}

test('a lone message goes as it is; messages queued together go as one batch, in order', async (t) => {
  const q = new AsyncQueue<ConnectResponse>();
  const out = responseBatches(q, true);
  q.push(ack(1n));
  t.deepEqual(await take(out, 1), ['ack1']);
  q.push(ack(2n));
  q.push(ack(3n));
  q.push(ack(4n));
  t.deepEqual(await take(out, 1), ['batch(ack2,ack3,ack4)']);
  q.end();
  t.true((await out.next()).done);
});

test('to a peer that takes no batches every message goes alone', async (t) => {
  const q = new AsyncQueue<ConnectResponse>();
  const out = responseBatches(q, false);
  q.push(ack(1n));
  q.push(ack(2n));
  t.deepEqual(await take(out, 2), ['ack1', 'ack2']);
});

test('a batch stops short of about a megabyte; a larger message goes alone', async (t) => {
  const q = new AsyncQueue<ConnectRequest>();
  let enabled = false;
  const out = requestBatches(q, () => enabled);
  const output = (seq: bigint, bytes: number): ConnectRequest => ({
    seq,
    message: { $case: 'jobOutput', value: { attempt: { jobId: 'j', attempt: 1 }, chunks: [{ stream: 1, offset: 0n, data: Buffer.alloc(bytes), time: undefined, attempt: 1 }] } },
  });
  const seqs = (r: ConnectRequest) => (r.message?.$case === 'batch' ? r.message.value.messages.map((m) => Number(m.seq)) : [Number(r.seq)]);
  q.push(output(1n, 10));
  t.deepEqual(seqs((await out.next()).value as ConnectRequest), [1], 'not batched before the welcome says so');
  enabled = true;
  q.push(output(2n, 600 * 1024));
  q.push(output(3n, 600 * 1024));
  q.push(output(4n, 2 * 1024 * 1024));
  q.push(output(5n, 10));
  q.push(output(6n, 10));
  const got: number[][] = [];
  for (let i = 0; i < 4; i++) got.push(seqs((await out.next()).value as ConnectRequest));
  t.deepEqual(got, [[2], [3], [4], [5, 6]]);
});

test('a received batch stands for its messages; a batch inside one is refused', (t) => {
  const inner: ConnectRequest = { seq: 3n, message: { $case: 'heartbeat', value: { attempts: [], freeSlots: 1, draining: false } } };
  t.deepEqual(unbatchRequest(inner), [inner]);
  t.deepEqual(unbatchRequest({ seq: 0n, message: { $case: 'batch', value: { messages: [inner, inner] } } }), [inner, inner]);
  t.is(unbatchRequest({ seq: 0n, message: { $case: 'batch', value: { messages: [{ seq: 0n, message: { $case: 'batch', value: { messages: [] } } }] } } }), undefined);
  t.deepEqual(unbatchResponse(ack(1n)), [ack(1n)]);
  t.is(unbatchResponse({ message: { $case: 'batch', value: { messages: [{ message: { $case: 'batch', value: { messages: [] } } }] } } }), undefined);
});
