// The fault test's rules (test/chaos/checks.ts) on hand-made rows: what a
// correct run leaves must pass, so the harness raises no false alarm, and each
// kind of damage must be named.
import test from 'ava';
import { judge, type AttemptRecord, type CancelAnswer, type JobRecord, type Observed, type Told } from '../chaos/checks.js';

function job(id: string, fields: Partial<JobRecord> = {}): JobRecord {
  return { id, request_id: `r-${id}`, state: 'SUCCEEDED', end_reason: 'SUCCEEDED', attempt: 1, max_attempts: 5, withdrawn_attempts: 0, node_id: 'n1', exit_code: 0, message: '', ...fields };
}

function history(id: string, ...outcomes: (string | null)[]): AttemptRecord[] {
  return outcomes.map((outcome, i) => ({ job_id: id, attempt: i + 1, outcome }));
}

function run(jobs: JobRecord[], attempts: AttemptRecord[], options: { cancels?: CancelAnswer[]; unanswered?: string[]; notAccepted?: string[] } = {}) {
  const stdout = new Map(jobs.filter((j) => j.state === 'SUCCEEDED').map((j) => [j.id, `${j.id} ${j.attempt}\n`]));
  const observed: Observed = { jobs, attempts, stdout };
  const skip = new Set([...(options.unanswered ?? []), ...(options.notAccepted ?? [])]);
  const told: Told = {
    accepted: new Map(jobs.filter((j) => !skip.has(j.id)).map((j) => [j.request_id!, j.id])),
    unanswered: new Set((options.unanswered ?? []).map((id) => `r-${id}`)),
    cancels: options.cancels ?? [],
  };
  return { observed, told, verdict: judge(observed, told) };
}

test('a run with retries, losses, cancels of every kind and an unanswered submit that was stored is all well', (t) => {
  const jobs = [
    job('plain'),
    job('retried', { attempt: 3 }),
    job('lost-out', { state: 'FAILED', end_reason: 'NODE_LOST', attempt: 5, exit_code: null }),
    job('cancelled-queued', { state: 'CANCELLED', end_reason: 'CANCELLED', attempt: 0, node_id: null, exit_code: null }),
    job('cancelled-running', { state: 'CANCELLED', end_reason: 'CANCELLED', exit_code: 143 }),
    job('cancelled-then-lost', { state: 'CANCELLED', end_reason: 'CANCELLED', attempt: 2, exit_code: null }),
    job('ended-first'),
    job('unanswered'),
    // Attempt 1 never reached its node (withdrawn: no history row), 2 was lost, 3 ran.
    job('withdrawn', { attempt: 3, withdrawn_attempts: 1 }),
    job('handed-back', { attempt: 2, withdrawn_attempts: 1 }),
  ];
  const attempts = [
    { job_id: 'withdrawn', attempt: 2, outcome: 'NODE_LOST' },
    { job_id: 'withdrawn', attempt: 3, outcome: 'SUCCEEDED' },
    ...history('handed-back', 'HANDED_BACK', 'SUCCEEDED'),
    ...history('plain', 'SUCCEEDED'),
    ...history('retried', 'NODE_LOST', 'NODE_LOST', 'SUCCEEDED'),
    ...history('lost-out', 'NODE_LOST', 'NODE_LOST', 'NODE_LOST', 'NODE_LOST', 'NODE_LOST'),
    ...history('cancelled-running', 'CANCELLED'),
    ...history('cancelled-then-lost', 'NODE_LOST', 'NODE_LOST'),
    ...history('ended-first', 'SUCCEEDED'),
    ...history('unanswered', 'SUCCEEDED'),
  ];
  const cancels: CancelAnswer[] = [
    { jobId: 'cancelled-queued', answer: { state: 'CANCELLED', endReason: 'CANCELLED' }, errors: [] },
    { jobId: 'cancelled-running', answer: { state: 'CANCELLING', endReason: '' }, errors: ['UNAVAILABLE'] },
    { jobId: 'cancelled-then-lost', answer: { state: 'CANCELLING', endReason: '' }, errors: [] },
    { jobId: 'ended-first', answer: { state: 'SUCCEEDED', endReason: 'SUCCEEDED' }, errors: [] },
    { jobId: 'plain', errors: ['UNAVAILABLE'] },
  ];
  const { verdict } = run(jobs, attempts, { cancels, unanswered: ['unanswered'] });
  t.deepEqual(verdict.violations, []);
  t.is(verdict.committedUnanswered, 1);
});

test('a cancel answered CANCELLING that ends otherwise, and a job no submit was answered with, are named', (t) => {
  const jobs = [job('ran-on', { attempt: 1 }), job('stopped', { state: 'FAILED', end_reason: 'FAILED', exit_code: 143 }), job('stray')];
  const attempts = [...history('ran-on', 'SUCCEEDED'), ...history('stopped', 'FAILED'), ...history('stray', 'SUCCEEDED')];
  const cancels: CancelAnswer[] = [
    { jobId: 'ran-on', answer: { state: 'CANCELLING', endReason: '' }, errors: [] },
    { jobId: 'stopped', answer: { state: 'CANCELLING', endReason: '' }, errors: [] },
  ];
  const { verdict } = run(jobs, attempts, { cancels, notAccepted: ['stray'] });
  t.is(verdict.violations.length, 3);
  t.regex(verdict.violations.join('\n'), /job ran-on on node n1 ended SUCCEEDED\/SUCCEEDED .* answered CANCELLING/);
  t.regex(verdict.violations.join('\n'), /job stopped on node n1 ended FAILED\/FAILED .* answered CANCELLING/);
  t.regex(verdict.violations.join('\n'), /job stray .* no submit was answered with it/);
});

test('a stuck job, a broken history, a wrong state, doubled output and a missing job are each named', (t) => {
  const jobs = [
    job('stuck', { state: 'ASSIGNED', end_reason: null }),
    job('gap', { attempt: 3 }),
    job('superseded', { attempt: 2 }),
    job('mismatch', { state: 'FAILED', end_reason: 'SUCCEEDED' }),
    job('doubled'),
    job('early-lost', { state: 'FAILED', end_reason: 'NODE_LOST', attempt: 2 }),
  ];
  const attempts = [
    ...history('stuck', null),
    { job_id: 'gap', attempt: 1, outcome: 'NODE_LOST' },
    { job_id: 'gap', attempt: 3, outcome: 'SUCCEEDED' },
    ...history('superseded', 'SUCCEEDED', 'SUCCEEDED'),
    ...history('mismatch', 'SUCCEEDED'),
    ...history('doubled', 'SUCCEEDED'),
    ...history('early-lost', 'NODE_LOST', 'NODE_LOST'),
  ];
  const { observed, told } = run(jobs, attempts);
  observed.stdout.set('doubled', 'doubled 1\ndoubled 1\n');
  told.accepted.set('r-missing', 'missing');
  const text = judge(observed, told).violations.join('\n');
  t.regex(text, /job stuck never ended: ASSIGNED/);
  t.regex(text, /job gap is at attempt 3 \(0 not counted\) but its history has attempts \[1, 3\]/);
  t.regex(text, /job superseded attempt 1 was followed by another, yet its outcome is SUCCEEDED/);
  t.regex(text, /job mismatch is FAILED but its end reason is SUCCEEDED/);
  t.regex(text, /job doubled SUCCEEDED with stdout "doubled 1\\ndoubled 1\\n"/);
  t.regex(text, /job early-lost ended NODE_LOST after 2 of its 5 attempts/);
  t.regex(text, /job missing \(request r-missing\) was accepted but is not in the database/);
});
