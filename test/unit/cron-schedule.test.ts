import test from 'ava';
import { CATCH_UP_MS, dueTicks, nameProblem, overlapDecision, scheduleProblem, tickAtOrAfter, tickRequestId } from '../../control-plane/cron-schedule.js';

const at = (iso: string) => new Date(iso);

test('a schedule is five fields, or six with seconds; anything else is refused with what is wrong', (t) => {
  t.is(scheduleProblem('*/5 * * * *'), undefined);
  t.is(scheduleProblem('* * * * * *'), undefined);
  t.is(scheduleProblem('0 9 * * MON-FRI'), undefined);
  t.is(scheduleProblem('@hourly'), undefined);
  t.regex(scheduleProblem('every minute')!, /^schedule "every minute" is not a cron expression: /);
  t.regex(scheduleProblem('61 * * * *')!, /not a cron expression/);
  t.regex(scheduleProblem('0 0 30 2 *')!, /never fires/);
});

test('a name is short, lower-case and plain', (t) => {
  t.is(nameProblem('nightly-report.v2'), undefined);
  t.regex(nameProblem('Nightly')!, /must be 1-64 characters of a-z/);
  t.truthy(nameProblem(''));
  t.truthy(nameProblem('a'.repeat(65)));
  t.truthy(nameProblem('-x'));
});

test('ticks are UTC; the first at or after a time includes that time', (t) => {
  t.deepEqual(tickAtOrAfter('0 9 * * *', at('2026-12-04T09:00:00Z')), at('2026-12-04T09:00:00Z'));
  t.deepEqual(tickAtOrAfter('0 9 * * *', at('2026-12-04T09:00:00.001Z')), at('2026-12-05T09:00:00Z'));
});

test('due ticks run from the stored next tick to now; the next is the first after now', (t) => {
  t.deepEqual(dueTicks('* * * * * *', at('2026-12-04T00:00:01Z'), at('2026-12-04T00:00:00.500Z')), { due: [], missed: 0, next: at('2026-12-04T00:00:01Z') });
  t.deepEqual(dueTicks('* * * * * *', at('2026-12-04T00:00:01Z'), at('2026-12-04T00:00:03.200Z')), {
    due: [at('2026-12-04T00:00:01Z'), at('2026-12-04T00:00:02Z'), at('2026-12-04T00:00:03Z')],
    missed: 0,
    next: at('2026-12-04T00:00:04Z'),
  });
});

test('ticks older than the catch-up window are missed, not fired', (t) => {
  const now = at('2026-12-04T10:00:30Z');
  const d = dueTicks('*/10 * * * * *', at('2026-12-04T09:00:00Z'), now);
  t.is(d.due.length, 6 + 1, 'the minute before now, both ends in');
  t.true(d.due.every((x) => now.getTime() - x.getTime() <= CATCH_UP_MS));
  t.is(d.missed, 6 * 60 - 3, 'the hour before the window');
  t.deepEqual(d.next, at('2026-12-04T10:00:40Z'));
  const daily = dueTicks('0 9 * * *', at('2026-12-01T09:00:00Z'), at('2026-12-04T10:00:00Z'));
  t.deepEqual([daily.due, daily.missed, daily.next], [[], 4, at('2026-12-05T09:00:00Z')]);
});

test('overlap: allow gives every tick a job; skip none while the last runs; cancel-previous stops it and starts the latest', (t) => {
  const ticks = [at('2026-12-04T00:00:01Z'), at('2026-12-04T00:00:02Z')];
  t.deepEqual(overlapDecision('ALLOW', ticks, true), { submit: ticks, cancelPrevious: false });
  t.deepEqual(overlapDecision('SKIP', ticks, true), { submit: [], cancelPrevious: false });
  t.deepEqual(overlapDecision('SKIP', ticks, false), { submit: [ticks[1]], cancelPrevious: false });
  t.deepEqual(overlapDecision('CANCEL_PREVIOUS', ticks, true), { submit: [ticks[1]], cancelPrevious: true });
  t.deepEqual(overlapDecision('CANCEL_PREVIOUS', ticks, false), { submit: [ticks[1]], cancelPrevious: false });
  t.deepEqual(overlapDecision('ALLOW', [], true), { submit: [], cancelPrevious: false });
});

test('a tick\'s request id names the schedule, its creation and the tick: the same for every replica', (t) => {
  t.is(tickRequestId('nightly', at('2026-12-01T00:00:00Z'), at('2026-12-04T09:00:00Z')), 'cron:nightly:1796083200000:1796374800000');
});
