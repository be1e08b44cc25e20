import test from 'ava';
import { percentile, summarize } from '../../bench/stats.js';

test('nearest-rank percentiles', (t) => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  t.is(percentile(hundred, 50), 50);
  t.is(percentile(hundred, 99), 99);
  t.is(percentile(hundred, 100), 100);
  t.is(percentile([7], 99), 7);
  t.deepEqual(summarize([5, 1, 4, 2, 3]), { samples: 5, p50: 3, p90: 5, p99: 5, max: 5 });
  t.throws(() => percentile([], 50), { message: 'no samples' });
});
