import test from 'ava';
import { percentile, spread, summarize } from '../../bench/stats.js';
import { atLeast, atMost, verdict } from '../../bench/targets.js';

test('nearest-rank percentiles', (t) => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  t.is(percentile(hundred, 50), 50);
  t.is(percentile(hundred, 99), 99);
  t.is(percentile(hundred, 100), 100);
  t.is(percentile([7], 99), 7);
  t.deepEqual(summarize([5, 1, 4, 2, 3]), { samples: 5, p50: 3, p90: 5, p99: 5, max: 5 });
  t.throws(() => percentile([], 50), { message: 'no samples' });
});

test('min / median / max of runs', (t) => {
  t.deepEqual(spread([608, 551, 645]), { runs: 3, min: 551, median: 608, max: 645 });
  t.deepEqual(spread([2, 1]), { runs: 2, min: 1, median: 1, max: 2 });
});

test('a figure against its target: met, or by how much it misses', (t) => {
  t.is(verdict(5000, atLeast(5000, '')), 'met');
  t.is(verdict(608, atLeast(5000, '')), 'missed: 8.2× short');
  t.is(verdict(0, atLeast(5000, '')), 'missed');
  t.is(verdict(0.1, atMost(0.1, '')), 'met');
  t.is(verdict(2.2, atMost(0.1, '')), 'missed: 22.0× over');
});
