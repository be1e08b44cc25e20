import test from 'ava';
import { JobState } from '../../common/gen/grid/v1/job.js';
import type { AttemptRef } from '../../common/gen/grid/v1/agent.js';
import { reconcile, type ActiveAttempt, type CountedAttempt } from '../../control-plane/reconcile.js';
import { silentSessions } from '../../control-plane/silence.js';

const A = JobState.JOB_STATE_ASSIGNED;
const R = JobState.JOB_STATE_RUNNING;
const C = JobState.JOB_STATE_CANCELLING;

/** A (re)connect: nothing counted yet, Postgres read after the hello. */
const onConnect = (active: ActiveAttempt[], held: AttemptRef[]) => reconcile({ active, held, counted: [], takenAt: 0 });
const counted = (jobId: string, attempt: number, since: number, cancelSent = false): CountedAttempt => ({ jobId, attempt, since, cancelSent });

test('an agent holding exactly its current attempts keeps them all', (t) => {
  const plan = onConnect(
    [{ jobId: 'j1', attempt: 1, state: R }, { jobId: 'j2', attempt: 3, state: A }],
    [{ jobId: 'j1', attempt: 1 }, { jobId: 'j2', attempt: 3 }],
  );
  t.deepEqual(plan.keep.map((a) => a.jobId), ['j1', 'j2']);
  t.deepEqual([plan.resend, plan.lose, plan.kill, plan.cancel, plan.release], [[], [], [], [], []]);
});

test('an assignment the agent never got is sent again; a running attempt it no longer has is lost', (t) => {
  const plan = onConnect([{ jobId: 'queued-to-me', attempt: 1, state: A }, { jobId: 'vanished', attempt: 2, state: R }, { jobId: 'stopping', attempt: 1, state: C }], []);
  t.deepEqual(plan.resend.map((a) => a.jobId), ['queued-to-me']);
  t.deepEqual(plan.lose.map((a) => a.jobId), ['vanished', 'stopping']);
  t.deepEqual(plan.keep, []);
});

test('an attempt the agent holds that is not current is killed, even if the same job has a newer attempt here', (t) => {
  const plan = onConnect([{ jobId: 'j1', attempt: 2, state: A }], [{ jobId: 'j1', attempt: 1 }, { jobId: 'gone', attempt: 4 }]);
  t.deepEqual(plan.kill, [{ jobId: 'j1', attempt: 1 }, { jobId: 'gone', attempt: 4 }]);
  t.deepEqual(plan.resend.map((a) => [a.jobId, a.attempt]), [['j1', 2]]);
});

test('a cancelling attempt the agent holds gets its cancel, once per session', (t) => {
  const active = [{ jobId: 'j1', attempt: 1, state: C }];
  const held = [{ jobId: 'j1', attempt: 1 }];
  t.deepEqual(onConnect(active, held).cancel.map((a) => a.jobId), ['j1']);
  t.deepEqual(reconcile({ active, held, counted: [counted('j1', 1, 0, true)], takenAt: 10 }).cancel, []);
  t.deepEqual(reconcile({ active, held, counted: [counted('j1', 1, 0, false)], takenAt: 10 }).cancel.map((a) => a.jobId), ['j1']);
});

test('continuously: a claim whose answer was lost (in Postgres, neither counted nor held) is sent again', (t) => {
  const plan = reconcile({ active: [{ jobId: 'lost-claim', attempt: 1, state: A }], held: [], counted: [], takenAt: 1000 });
  t.deepEqual(plan.resend.map((a) => a.jobId), ['lost-claim']);
});

test('continuously: an assignment that ended and was released since the read is not sent again', (t) => {
  // Read while still ASSIGNED; then it ran, ended, and was released before the heartbeat: it was sent, not lost.
  const plan = reconcile({ active: [{ jobId: 'done', attempt: 1, state: A }], held: [], counted: [], releasedSince: [{ jobId: 'done', attempt: 1 }], takenAt: 1000 });
  t.deepEqual([plan.resend, plan.lose, plan.kill, plan.release], [[], [], [], []]);
});

test('continuously: an attempt counted after the read is neither killed nor released, though Postgres did not show it yet', (t) => {
  const plan = reconcile({ active: [], held: [{ jobId: 'fresh', attempt: 1 }], counted: [counted('fresh', 1, 1000)], takenAt: 1000 });
  t.deepEqual([plan.kill, plan.release], [[], []]);
});

test('continuously: an attempt ended or moved on elsewhere (say, by another replica\'s backstop) is killed on the node and its capacity freed', (t) => {
  const plan = reconcile({
    active: [{ jobId: 'j1', attempt: 2, state: A }],
    held: [{ jobId: 'j1', attempt: 1 }, { jobId: 'ended', attempt: 1 }],
    counted: [counted('j1', 1, 10), counted('ended', 1, 10)],
    takenAt: 1000,
  });
  t.deepEqual(plan.kill, [{ jobId: 'j1', attempt: 1 }, { jobId: 'ended', attempt: 1 }]);
  t.deepEqual(plan.release.map((c) => c.jobId), ['j1', 'ended']);
  t.deepEqual(plan.resend.map((a) => [a.jobId, a.attempt]), [['j1', 2]]);
});

test('silence: only ready, unjudged sessions past the timeout are silent', (t) => {
  const now = 10_000;
  const s = (id: string, lastSeen: number, ready = true, judged = false) => ({ id, lastSeenAt: new Date(lastSeen), ready, judged });
  const sessions = [s('fresh', 9_000), s('edge', 7_000), s('silent', 6_999), s('not-ready', 0, false), s('judged', 0, true, true)];
  t.deepEqual(silentSessions(sessions, now, 3000).map((x) => x.id), ['silent']);
});

test('continuously: an assignment sent on this session that the heartbeat does not list yet is in flight, not lost: never sent twice', (t) => {
  // The heartbeat left the agent before the assignment arrived (the bench saw 58 such jobs sent twice).
  const plan = reconcile({ active: [{ jobId: 'in-flight', attempt: 1, state: A }], held: [], counted: [counted('in-flight', 1, 10)], takenAt: 1000 });
  t.deepEqual([plan.resend, plan.lose, plan.kill, plan.release], [[], [], [], []]);
});

test('continuously: an attempt whose end the agent reported here, listed by a heartbeat that crossed its ack, is not killed', (t) => {
  const plan = reconcile({
    active: [],
    held: [{ jobId: 'just-ended', attempt: 1 }, { jobId: 'stale', attempt: 1 }],
    counted: [],
    reportedEnded: [{ jobId: 'just-ended', attempt: 1 }],
    takenAt: 1000,
  });
  t.deepEqual(plan.kill, [{ jobId: 'stale', attempt: 1 }]);
});
