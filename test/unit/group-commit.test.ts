// createGroupCommit: concurrent items share flushes, each gets its own result,
// and one bad item fails alone.
import test from 'ava';
import { createGroupCommit } from '../../control-plane/group-commit.js';

test('items added in one turn share one flush; items added during a flush go into the next', async (t) => {
  const flushes: number[][] = [];
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  const commit = createGroupCommit<number, number>({
    maxItems: 100,
    concurrency: 1,
    isolate: () => true,
    async run(items) {
      flushes.push(items);
      await gate;
      return items.map((i) => i * 10);
    },
  });
  const first = [1, 2, 3].map((i) => commit.add(i));
  await new Promise((r) => setImmediate(r));
  const second = [4, 5].map((i) => commit.add(i));
  release();
  gate = Promise.resolve();
  t.deepEqual(await Promise.all([...first, ...second]), [10, 20, 30, 40, 50]);
  t.deepEqual(flushes, [[1, 2, 3], [4, 5]]);
  await commit.drain();
});

test('a flush never takes more than maxItems; the rest follow', async (t) => {
  const sizes: number[] = [];
  const commit = createGroupCommit<number, number>({
    maxItems: 4,
    concurrency: 2,
    isolate: () => true,
    async run(items) {
      sizes.push(items.length);
      return items;
    },
  });
  const all = await Promise.all(Array.from({ length: 10 }, (_, i) => commit.add(i)));
  t.deepEqual(all, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.deepEqual(sizes, [4, 4, 2]);
});

test('a failing item is retried alone so the others commit; a transient failure reaches everyone', async (t) => {
  let down = false;
  const commit = createGroupCommit<number, number>({
    maxItems: 100,
    concurrency: 1,
    isolate: (err) => (err as Error).message !== 'database down',
    async run(items) {
      if (down) throw new Error('database down');
      if (items.includes(13)) throw new Error('13 is refused');
      return items;
    },
  });
  const results = await Promise.allSettled([1, 13, 2].map((i) => commit.add(i)));
  t.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  t.regex(String((results[1] as PromiseRejectedResult).reason), /13 is refused/);
  down = true;
  const outage = await Promise.allSettled([1, 2].map((i) => commit.add(i)));
  t.deepEqual(outage.map((r) => r.status), ['rejected', 'rejected']);
});
