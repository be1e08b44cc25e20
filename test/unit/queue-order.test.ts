// Priority with ageing: higher first, equal in submit order, and a lower one
// passed only by jobs submitted within (difference x step) after it.
import test from 'ava';
import { AGEING_STEP_MS, queueKey } from '../../common/queue-order.js';

const at = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000);
const order = (jobs: { name: string; submitted: number; priority: number }[]) =>
  [...jobs].sort((a, b) => queueKey(at(a.submitted), a.priority).getTime() - queueKey(at(b.submitted), b.priority).getTime() || a.submitted - b.submitted).map((j) => j.name);

test('a higher priority submitted behind 50 queued jobs comes first; equal priorities keep submit order', (t) => {
  const queued = Array.from({ length: 50 }, (_, i) => ({ name: `low-${i}`, submitted: i, priority: 0 }));
  const ranked = order([...queued, { name: 'urgent', submitted: 50, priority: 10 }]);
  t.is(ranked[0], 'urgent');
  t.deepEqual(ranked.slice(1), queued.map((j) => j.name));
});

test('ageing: a low-priority job is passed only by jobs submitted less than the difference in steps after it', (t) => {
  const step = AGEING_STEP_MS / 1000;
  const old = { name: 'old', submitted: 0, priority: 0 };
  t.deepEqual(order([old, { name: 'soon-after', submitted: 2 * step - 1, priority: 2 }]), ['soon-after', 'old']);
  t.deepEqual(order([old, { name: 'much-later', submitted: 2 * step + 1, priority: 2 }]), ['old', 'much-later']);
  t.deepEqual(order([{ name: 'negative', submitted: 0, priority: -1 }, { name: 'later', submitted: step - 1, priority: 0 }]), ['later', 'negative']);
});
