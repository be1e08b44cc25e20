import test from 'ava';
import { createDatabaseHealth } from '../../control-plane/database-health.js';

test('a replica judges nodes only after one grace of quick answers: from its start, and again after a failure or a slow answer', (t) => {
  let now = 0;
  const health = createDatabaseHealth({ graceMs: 2000, slowMs: 1000, now: () => now });
  t.false(health.mayJudge(), 'not right after its start');
  now = 2000;
  t.true(health.mayJudge());
  health.observe(false, 5);
  now = 10_000;
  t.false(health.mayJudge(), 'a failure, and no answer since: still not');
  health.observe(true, 5);
  t.false(health.mayJudge(), 'the database just came back');
  now = 11_999;
  t.false(health.mayJudge());
  now = 12_000;
  t.true(health.mayJudge(), 'one grace after it came back');
  health.observe(true, 4000);
  t.false(health.mayJudge(), 'a hung query that answered at last counts as trouble');
  health.observe(true, 5);
  now = 14_000;
  t.true(health.mayJudge());
});
