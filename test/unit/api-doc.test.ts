// docs/api.md's lifecycle tables are the state machine of common/job-state.ts,
// written out for client authors: every allowed move is in the table, nothing
// else is, and every end reason leads to the state the table says.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { ALL_STATES, EndReason, canTransition, reasonToDb, stateToDb, terminalStateFor } from '../../common/job-state.js';

const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

/** The first two cells of each row of the table between the markers. */
function table(name: string): [string, string][] {
  const body = new RegExp(`<!-- ${name}: begin -->([\\s\\S]*?)<!-- ${name}: end -->`).exec(doc)?.[1];
  if (!body) throw new Error(`docs/api.md has no ${name} table`);
  return body
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|\s*(from|end_reason|-)/.test(l))
    .map((l) => l.split('|').slice(1, 3).map((c) => c.trim()) as [string, string]);
}

test('the transitions table lists exactly the moves the state machine allows', (t) => {
  const documented = table('transitions').map(([from, to]) => `${from} → ${to}`).sort();
  const allowed = ALL_STATES.flatMap((from) => ALL_STATES.filter((to) => canTransition(from, to)).map((to) => `${stateToDb(from)} → ${stateToDb(to)}`)).sort();
  t.deepEqual(documented, allowed);
});

test('the end reasons table gives every reason the state it ends a job in', (t) => {
  const reasons = Object.values(EndReason).filter(
    (r): r is EndReason => typeof r === 'number' && r !== EndReason.END_REASON_UNSPECIFIED && r !== EndReason.UNRECOGNIZED,
  );
  t.deepEqual(
    table('end-reasons').sort(),
    reasons.map((r): [string, string] => [reasonToDb(r), stateToDb(terminalStateFor(r))]).sort(),
  );
});
