// createSubmitPacer: submits wait only while dispatch runs and the queue is
// longer than what dispatch takes in the target delay.
import test from 'ava';
import { createSubmitPacer } from '../../control-plane/submit-pacing.js';

const pacer = () => createSubmitPacer({ targetDelayMs: 1000, minHighWater: 100, windowMs: 5000 });

test('with nothing dispatched, nothing is held, however long the queue', (t) => {
  const p = pacer();
  t.false(p.shouldHold(1_000_000, 0));
  t.is(p.highWater(0), Infinity);
});

test('while dispatch runs, the queue is held to about a second of it, never below the floor', (t) => {
  const p = pacer();
  for (let ms = 0; ms < 5000; ms += 100) p.claimed(100, ms); // 1,000 jobs/s
  t.is(Math.round(p.highWater(4999)), 1000);
  t.false(p.shouldHold(999, 4999));
  t.true(p.shouldHold(1000, 4999));
  const slow = pacer();
  slow.claimed(5, 0); // 1 job/s: the floor applies
  t.is(slow.highWater(10), 100);
});

test('once dispatch stops for a whole window, held submits are let through', (t) => {
  const p = pacer();
  p.claimed(5000, 0);
  t.true(p.shouldHold(5000, 1000));
  t.false(p.shouldHold(5000, 5001), 'no claim in the last window: no node takes work, so do not hold');
});
