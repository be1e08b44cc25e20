// The job state machine: every (from, to) pair is checked against a list of
// allowed transitions written out here by hand, not derived from the module's table.
import test from 'ava';
import {
  ALL_STATES,
  EndReason,
  JobState,
  backstopTargetOf,
  cancelTargetOf,
  claimTargetOf,
  expireTargetOf,
  handBackTargetOf,
  lostTargetOf,
  finishTargetOf,
  startTargetOf,
  withdrawTargetOf,
  type Move,
  canTransition,
  endReasonFor,
  isTerminal,
  reasonForExit,
  reasonFromDb,
  reasonToDb,
  sourcesOf,
  stateFromDb,
  stateToDb,
  terminalStateFor,
} from '../../common/job-state.js';

type Name = 'QUEUED' | 'ASSIGNED' | 'RUNNING' | 'CANCELLING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

const STATE: Record<Name, JobState> = {
  QUEUED: JobState.JOB_STATE_QUEUED,
  ASSIGNED: JobState.JOB_STATE_ASSIGNED,
  RUNNING: JobState.JOB_STATE_RUNNING,
  CANCELLING: JobState.JOB_STATE_CANCELLING,
  SUCCEEDED: JobState.JOB_STATE_SUCCEEDED,
  FAILED: JobState.JOB_STATE_FAILED,
  CANCELLED: JobState.JOB_STATE_CANCELLED,
};

const NAMES: Name[] = ['QUEUED', 'ASSIGNED', 'RUNNING', 'CANCELLING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];

/** The allowed transitions, written out literally. Anything not listed is refused. */
const ALLOWED: ReadonlyArray<readonly [Name, Name]> = [
  ['QUEUED', 'ASSIGNED'],
  ['QUEUED', 'CANCELLED'],
  ['QUEUED', 'FAILED'],
  ['ASSIGNED', 'RUNNING'],
  ['ASSIGNED', 'QUEUED'],
  ['ASSIGNED', 'CANCELLING'],
  ['ASSIGNED', 'SUCCEEDED'],
  ['ASSIGNED', 'FAILED'],
  ['RUNNING', 'QUEUED'],
  ['RUNNING', 'CANCELLING'],
  ['RUNNING', 'SUCCEEDED'],
  ['RUNNING', 'FAILED'],
  ['CANCELLING', 'CANCELLED'],
];

function isAllowed(from: Name, to: Name): boolean {
  return ALLOWED.some(([f, t]) => f === from && t === to);
}

test('canTransition allows exactly the listed transitions among all 7x7 state pairs', (t) => {
  let checked = 0;
  for (const from of NAMES) {
    for (const to of NAMES) {
      t.is(canTransition(STATE[from], STATE[to]), isAllowed(from, to), `${from} -> ${to}`);
      checked++;
    }
  }
  t.is(checked, 49);
});

test('canTransition refuses every self-transition', (t) => {
  for (const s of NAMES) t.false(canTransition(STATE[s], STATE[s]), `${s} -> ${s}`);
});

test('canTransition refuses any move out of a terminal state', (t) => {
  for (const from of ['SUCCEEDED', 'FAILED', 'CANCELLED'] as const) {
    for (const to of NAMES) t.false(canTransition(STATE[from], STATE[to]), `${from} -> ${to}`);
  }
});

test('canTransition refuses moves from or to UNSPECIFIED', (t) => {
  t.false(canTransition(JobState.JOB_STATE_UNSPECIFIED, JobState.JOB_STATE_QUEUED));
  t.false(canTransition(JobState.JOB_STATE_QUEUED, JobState.JOB_STATE_UNSPECIFIED));
});

test('sourcesOf gives the states a job may leave for each target', (t) => {
  const expected: Record<Name, Name[]> = {
    QUEUED: ['ASSIGNED', 'RUNNING'],
    ASSIGNED: ['QUEUED'],
    RUNNING: ['ASSIGNED'],
    CANCELLING: ['ASSIGNED', 'RUNNING'],
    SUCCEEDED: ['ASSIGNED', 'RUNNING'],
    FAILED: ['QUEUED', 'ASSIGNED', 'RUNNING'],
    CANCELLED: ['QUEUED', 'CANCELLING'],
  };
  for (const to of NAMES) {
    const actual = sourcesOf(STATE[to]).map((s) => JobState[s]).sort();
    const want = expected[to].map((n) => `JOB_STATE_${n}`).sort();
    t.deepEqual(actual, want, `sources of ${to}`);
  }
});

test('terminalStateFor maps success to SUCCEEDED, cancellation to CANCELLED, every other reason to FAILED', (t) => {
  t.is(terminalStateFor(EndReason.END_REASON_SUCCEEDED), JobState.JOB_STATE_SUCCEEDED);
  t.is(terminalStateFor(EndReason.END_REASON_CANCELLED), JobState.JOB_STATE_CANCELLED);
  const failing = [
    EndReason.END_REASON_FAILED,
    EndReason.END_REASON_TIMED_OUT,
    EndReason.END_REASON_QUEUE_TIMEOUT,
    EndReason.END_REASON_OOM_KILLED,
    EndReason.END_REASON_NODE_LOST,
    EndReason.END_REASON_IMAGE_UNAVAILABLE,
    EndReason.END_REASON_START_FAILED,
  ];
  for (const reason of failing) t.is(terminalStateFor(reason), JobState.JOB_STATE_FAILED, EndReason[reason]);
});

test('terminalStateFor throws for UNSPECIFIED and UNRECOGNIZED reasons', (t) => {
  t.throws(() => terminalStateFor(EndReason.END_REASON_UNSPECIFIED), { message: /not a reason a job can end with/ });
  t.throws(() => terminalStateFor(EndReason.UNRECOGNIZED), { message: /not a reason a job can end with/ });
});

test('reasonForExit: exit 0 succeeds, non-zero fails, oom wins even with exit 0', (t) => {
  t.is(reasonForExit(0, false), EndReason.END_REASON_SUCCEEDED);
  t.is(reasonForExit(3, false), EndReason.END_REASON_FAILED);
  t.is(reasonForExit(137, false), EndReason.END_REASON_FAILED);
  t.is(reasonForExit(0, true), EndReason.END_REASON_OOM_KILLED);
  t.is(reasonForExit(137, true), EndReason.END_REASON_OOM_KILLED);
});

test('stateToDb writes the state name without its prefix', (t) => {
  t.is(stateToDb(JobState.JOB_STATE_QUEUED), 'QUEUED');
  t.is(stateToDb(JobState.JOB_STATE_CANCELLING), 'CANCELLING');
  t.is(stateToDb(JobState.JOB_STATE_CANCELLED), 'CANCELLED');
});

test('stateFromDb reads back every state stateToDb writes', (t) => {
  for (const name of NAMES) {
    t.is(stateToDb(STATE[name]), name);
    t.is(stateFromDb(name), STATE[name], name);
  }
});

test('stateFromDb throws for unknown text', (t) => {
  t.throws(() => stateFromDb('RUNNNING'), { message: /unknown job state in database: RUNNNING/ });
  t.throws(() => stateFromDb('queued'), { message: /unknown job state/ });
  t.throws(() => stateFromDb(''), { message: /unknown job state/ });
});

test('reasonToDb and reasonFromDb round-trip every end reason', (t) => {
  const reasons: Array<[EndReason, string]> = [
    [EndReason.END_REASON_SUCCEEDED, 'SUCCEEDED'],
    [EndReason.END_REASON_FAILED, 'FAILED'],
    [EndReason.END_REASON_CANCELLED, 'CANCELLED'],
    [EndReason.END_REASON_TIMED_OUT, 'TIMED_OUT'],
    [EndReason.END_REASON_QUEUE_TIMEOUT, 'QUEUE_TIMEOUT'],
    [EndReason.END_REASON_OOM_KILLED, 'OOM_KILLED'],
    [EndReason.END_REASON_NODE_LOST, 'NODE_LOST'],
    [EndReason.END_REASON_IMAGE_UNAVAILABLE, 'IMAGE_UNAVAILABLE'],
    [EndReason.END_REASON_START_FAILED, 'START_FAILED'],
  ];
  for (const [reason, text] of reasons) {
    t.is(reasonToDb(reason), text);
    t.is(reasonFromDb(text), reason, text);
  }
});

test('reasonFromDb reads NULL as UNSPECIFIED', (t) => {
  t.is(reasonFromDb(null), EndReason.END_REASON_UNSPECIFIED);
});

test('reasonFromDb throws for unknown text', (t) => {
  t.throws(() => reasonFromDb('EXPLODED'), { message: /unknown end reason in database: EXPLODED/ });
  t.throws(() => reasonFromDb('timed_out'), { message: /unknown end reason/ });
});

test('isTerminal is true only for SUCCEEDED, FAILED and CANCELLED', (t) => {
  const terminal: Name[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];
  for (const name of NAMES) t.is(isTerminal(STATE[name]), terminal.includes(name), name);
  t.false(isTerminal(JobState.JOB_STATE_UNSPECIFIED));
});

test('endReasonFor: a committed cancel decides the end whatever the node reports; otherwise the report stands', (t) => {
  const reasons = Object.values(EndReason).filter((r): r is EndReason => typeof r === 'number' && r > 0);
  for (const reported of reasons) {
    t.is(endReasonFor(JobState.JOB_STATE_CANCELLING, reported), EndReason.END_REASON_CANCELLED, EndReason[reported]);
    for (const from of [JobState.JOB_STATE_ASSIGNED, JobState.JOB_STATE_RUNNING]) t.is(endReasonFor(from, reported), reported);
  }
});

test('cancelTargetOf: a queued job ends CANCELLED, one on a node becomes CANCELLING, anything else has nothing to cancel', (t) => {
  t.is(cancelTargetOf(JobState.JOB_STATE_QUEUED), JobState.JOB_STATE_CANCELLED);
  t.is(cancelTargetOf(JobState.JOB_STATE_ASSIGNED), JobState.JOB_STATE_CANCELLING);
  t.is(cancelTargetOf(JobState.JOB_STATE_RUNNING), JobState.JOB_STATE_CANCELLING);
  for (const s of [JobState.JOB_STATE_CANCELLING, JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED]) {
    t.is(cancelTargetOf(s), undefined, JobState[s]);
  }
});

test('every transition target function moves only along the transition table (or keeps the state)', (t) => {
  const targets: [string, (from: JobState) => Move | undefined][] = [
    ['claim', claimTargetOf],
    ['start', startTargetOf],
    ['lost with attempts left', (f) => lostTargetOf(f, true)],
    ['lost on the last attempt', (f) => lostTargetOf(f, false)],
    ['withdrawn', withdrawTargetOf],
    ['handed back', handBackTargetOf],
    ['backstop', backstopTargetOf],
    ['expire', expireTargetOf],
    ...[true, false].flatMap((left) =>
      [EndReason.END_REASON_SUCCEEDED, EndReason.END_REASON_FAILED, EndReason.END_REASON_TIMED_OUT, EndReason.END_REASON_OOM_KILLED, EndReason.END_REASON_IMAGE_UNAVAILABLE].map(
        (r): [string, (from: JobState) => Move | undefined] => [`finish ${EndReason[r]} (retries left: ${left})`, (f) => finishTargetOf(f, r, left)],
      ),
    ),
  ];
  for (const [name, targetOf] of targets) {
    for (const from of ALL_STATES) {
      const move = targetOf(from);
      if (!move) continue;
      t.true(move.state === from || canTransition(from, move.state), `${name}: ${JobState[from]} → ${JobState[move.state]}`);
      // A move into a terminal state carries its reason, and only such a move does.
      t.is(move.reason !== undefined, isTerminal(move.state), `${name}: ${JobState[from]} reason`);
      if (move.reason !== undefined) t.is(terminalStateFor(move.reason), move.state, `${name}: ${JobState[from]} reason matches its state`);
    }
  }
});

test('the transition targets: who claims, starts, loses, hands back, backstops and expires what', (t) => {
  const { JOB_STATE_QUEUED: Q, JOB_STATE_ASSIGNED: A, JOB_STATE_RUNNING: R, JOB_STATE_CANCELLING: C, JOB_STATE_CANCELLED: X, JOB_STATE_FAILED: F, JOB_STATE_SUCCEEDED: S } = JobState;
  const states = (targetOf: (from: JobState) => Move | undefined) =>
    ALL_STATES.flatMap((from) => { const m = targetOf(from); return m ? [[from, m.state, m.reason ?? null]] : []; });
  t.deepEqual(states(claimTargetOf), [[Q, A, null]]);
  t.deepEqual(states(startTargetOf), [[A, R, null], [R, R, null], [C, C, null]]);
  t.deepEqual(states((f) => lostTargetOf(f, true)), [[A, Q, null], [R, Q, null], [C, X, EndReason.END_REASON_CANCELLED]]);
  t.deepEqual(states(withdrawTargetOf), [[A, Q, null], [C, X, EndReason.END_REASON_CANCELLED]], 'a running job is never withdrawn');
  t.deepEqual(states(handBackTargetOf), [[A, Q, null], [R, Q, null], [C, X, EndReason.END_REASON_CANCELLED]], 'a cancel committed first still decides');
  t.deepEqual(states((f) => lostTargetOf(f, false)), [
    [A, F, EndReason.END_REASON_NODE_LOST], [R, F, EndReason.END_REASON_NODE_LOST], [C, X, EndReason.END_REASON_CANCELLED],
  ]);
  t.deepEqual(states(backstopTargetOf), [
    [A, F, EndReason.END_REASON_TIMED_OUT], [R, F, EndReason.END_REASON_TIMED_OUT], [C, X, EndReason.END_REASON_CANCELLED],
  ]);
  t.deepEqual(states(expireTargetOf), [[Q, F, EndReason.END_REASON_QUEUE_TIMEOUT]]);
  for (const terminal of [S, F, X]) t.is(startTargetOf(terminal), undefined);
});

test('finishTargetOf: a failure, timeout or OOM with retries left is queued again; any other end, or none left, ends the job; a cancel decides', (t) => {
  const { JOB_STATE_QUEUED: Q, JOB_STATE_ASSIGNED: A, JOB_STATE_RUNNING: R, JOB_STATE_CANCELLING: C, JOB_STATE_CANCELLED: X, JOB_STATE_FAILED: F, JOB_STATE_SUCCEEDED: S } = JobState;
  for (const reason of [EndReason.END_REASON_FAILED, EndReason.END_REASON_TIMED_OUT, EndReason.END_REASON_OOM_KILLED]) {
    t.deepEqual(finishTargetOf(R, reason, true), { state: Q }, EndReason[reason]);
    t.deepEqual(finishTargetOf(A, reason, true), { state: Q }, `${EndReason[reason]} before its start report`);
    t.deepEqual(finishTargetOf(R, reason, false), { state: F, reason }, `${EndReason[reason]}, none left`);
  }
  for (const reason of [EndReason.END_REASON_IMAGE_UNAVAILABLE, EndReason.END_REASON_START_FAILED, EndReason.END_REASON_NODE_LOST]) {
    t.deepEqual(finishTargetOf(R, reason, true), { state: F, reason }, `${EndReason[reason]} is not retried`);
  }
  t.deepEqual(finishTargetOf(R, EndReason.END_REASON_SUCCEEDED, true), { state: S, reason: EndReason.END_REASON_SUCCEEDED });
  t.deepEqual(finishTargetOf(C, EndReason.END_REASON_FAILED, true), { state: X, reason: EndReason.END_REASON_CANCELLED }, 'a cancelled job is not retried');
  for (const from of [Q, S, F, X]) t.is(finishTargetOf(from, EndReason.END_REASON_FAILED, true), undefined);
});
