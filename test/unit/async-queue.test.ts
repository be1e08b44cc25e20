// AsyncQueue: the push-driven async iterable behind outgoing gRPC streams.
import test from 'ava';
import { AsyncQueue } from '../../common/async-queue.js';

async function collect<T>(q: AsyncQueue<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of q) out.push(item);
  return out;
}

test('items pushed before and after iteration starts all arrive in order', async (t) => {
  const q = new AsyncQueue<number>();
  q.push(1);
  q.push(2);
  const received = collect(q);
  await new Promise((resolve) => setImmediate(resolve));
  q.push(3);
  await new Promise((resolve) => setImmediate(resolve));
  q.push(4);
  q.push(5);
  q.end();
  t.deepEqual(await received, [1, 2, 3, 4, 5]);
});

test('end() finishes the iteration after the items already queued', async (t) => {
  const q = new AsyncQueue<string>();
  q.push('a');
  q.push('b');
  q.end();
  t.true(q.isEnded);
  t.is(q.size, 2);
  t.deepEqual(await collect(q), ['a', 'b']);
  t.is(q.size, 0);
});

test('end() wakes an iteration that is waiting for an item', async (t) => {
  const q = new AsyncQueue<string>();
  const received = collect(q);
  await new Promise((resolve) => setImmediate(resolve));
  q.end();
  t.deepEqual(await received, []);
});

test('end(error) makes a waiting iteration throw that error', async (t) => {
  const q = new AsyncQueue<string>();
  const received = collect(q);
  await new Promise((resolve) => setImmediate(resolve));
  const boom = new Error('stream broke');
  q.end(boom);
  const err = await t.throwsAsync(received);
  t.is(err, boom);
});

test('end(error) drops queued items and makes a later iteration throw', async (t) => {
  const q = new AsyncQueue<string>();
  q.push('a');
  q.end(new Error('stream broke'));
  t.is(q.size, 0);
  await t.throwsAsync(collect(q), { message: 'stream broke' });
});

test('push after end returns false and the item is not delivered', async (t) => {
  const q = new AsyncQueue<number>();
  t.true(q.push(1));
  q.end();
  t.false(q.push(2));
  t.is(q.size, 1);
  t.deepEqual(await collect(q), [1]);
});

test('a second end() changes nothing: neither the error nor the items', async (t) => {
  const q = new AsyncQueue<number>();
  q.push(1);
  q.end();
  q.end(new Error('late'));
  t.deepEqual(await collect(q), [1]);
});

test('size counts items waiting to be taken', (t) => {
  const q = new AsyncQueue<number>();
  t.is(q.size, 0);
  q.push(1);
  q.push(2);
  t.is(q.size, 2);
  t.false(q.isEnded);
});
