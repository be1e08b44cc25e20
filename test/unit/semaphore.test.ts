// createSemaphore: never more holders than the limit, waiters admitted in order.
import test from 'ava';
import { createSemaphore } from '../../common/semaphore.js';

test('at most `limit` hold at once; the rest are admitted in order as holders release', async (t) => {
  const gate = createSemaphore(2);
  let holding = 0;
  let most = 0;
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 6 }, async (_, i) => {
      const release = await gate.acquire();
      order.push(i);
      holding++;
      most = Math.max(most, holding);
      await new Promise((r) => setTimeout(r, 5));
      holding--;
      release();
      release(); // a second release is a no-op
    }),
  );
  t.is(most, 2);
  t.deepEqual(order, [0, 1, 2, 3, 4, 5]);
  // Everything was released: the gate admits `limit` again at once.
  const [a, b] = await Promise.all([gate.acquire(), gate.acquire()]);
  a();
  b();
});
