import test from 'ava';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { reconcile } from '../../control-plane/reconcile.js';
import { silentSessions } from '../../control-plane/silence.js';

const A = JobState.JOB_STATE_ASSIGNED;
const R = JobState.JOB_STATE_RUNNING;
const C = JobState.JOB_STATE_CANCELLING;

test('an agent holding exactly its current attempts keeps them all', (t) => {
  const plan = reconcile(
    [{ jobId: 'j1', attempt: 1, state: R }, { jobId: 'j2', attempt: 3, state: A }],
    [{ jobId: 'j1', attempt: 1 }, { jobId: 'j2', attempt: 3 }],
  );
  t.deepEqual(plan.keep.map((a) => a.jobId), ['j1', 'j2']);
  t.deepEqual([plan.resend, plan.lose, plan.kill], [[], [], []]);
});

test('an assignment the agent never got is sent again; a running attempt it no longer has is lost', (t) => {
  const plan = reconcile([{ jobId: 'queued-to-me', attempt: 1, state: A }, { jobId: 'vanished', attempt: 2, state: R }, { jobId: 'stopping', attempt: 1, state: C }], []);
  t.deepEqual(plan.resend.map((a) => a.jobId), ['queued-to-me']);
  t.deepEqual(plan.lose.map((a) => a.jobId), ['vanished', 'stopping']);
  t.deepEqual(plan.keep, []);
});

test('an attempt the agent holds that is not current is killed, even if the same job has a newer attempt here', (t) => {
  const plan = reconcile([{ jobId: 'j1', attempt: 2, state: A }], [{ jobId: 'j1', attempt: 1 }, { jobId: 'gone', attempt: 4 }]);
  t.deepEqual(plan.kill, [{ jobId: 'j1', attempt: 1 }, { jobId: 'gone', attempt: 4 }]);
  t.deepEqual(plan.resend.map((a) => [a.jobId, a.attempt]), [['j1', 2]]);
});

test('silence: only ready, unjudged sessions past the timeout are silent', (t) => {
  const now = 10_000;
  const s = (id: string, lastSeen: number, ready = true, judged = false) => ({ id, lastSeenAt: new Date(lastSeen), ready, judged });
  const sessions = [s('fresh', 9_000), s('edge', 7_000), s('silent', 6_999), s('not-ready', 0, false), s('judged', 0, true, true)];
  t.deepEqual(silentSessions(sessions, now, 3000).map((x) => x.id), ['silent']);
});
