// gridctl's exit code for a finished job.
import test from 'ava';
import { EXIT_GRID_ERROR, exitCodeFor } from '../../cli/exit-codes.js';
import { EndReason, JobState, type Job } from '../../common/gen/grid/v1/job.js';

function job(state: JobState, endReason: EndReason, exitCode?: number): Job {
  return {
    id: 'j-1',
    state,
    endReason,
    spec: undefined,
    attempt: 1,
    maxAttempts: 2,
    attemptsCounted: 1,
    submitter: '',
  retriesUsed: 0,
  notBefore: undefined,
  cronName: '',
  cronTick: undefined,
    nodeId: 'n-1',
    exitCode,
    message: '',
    submittedAt: undefined,
    assignedAt: undefined,
    startedAt: undefined,
    endedAt: undefined,
    output: undefined,
    outputFiles: [],
    outputFilesError: '',
    waitingReason: '',
  };
}

const F = JobState.JOB_STATE_FAILED;

test('a job that succeeded exits 0', (t) => {
  t.is(exitCodeFor(job(JobState.JOB_STATE_SUCCEEDED, EndReason.END_REASON_SUCCEEDED, 0)), 0);
  t.is(exitCodeFor(job(JobState.JOB_STATE_SUCCEEDED, EndReason.END_REASON_SUCCEEDED)), 0);
});

test('a job that failed exits with its own exit code', (t) => {
  t.is(exitCodeFor(job(F, EndReason.END_REASON_FAILED, 3)), 3);
  t.is(exitCodeFor(job(F, EndReason.END_REASON_FAILED, 255)), 255);
});

test('a failed job without an exit code exits 1', (t) => {
  t.is(exitCodeFor(job(F, EndReason.END_REASON_FAILED)), 1);
});

test('each way of ending without an exit code has its own exit code', (t) => {
  t.is(exitCodeFor(job(JobState.JOB_STATE_CANCELLED, EndReason.END_REASON_CANCELLED)), 130);
  t.is(exitCodeFor(job(F, EndReason.END_REASON_TIMED_OUT)), 124);
  t.is(exitCodeFor(job(F, EndReason.END_REASON_QUEUE_TIMEOUT)), 123);
  t.is(exitCodeFor(job(F, EndReason.END_REASON_NODE_LOST)), 122);
  t.is(exitCodeFor(job(F, EndReason.END_REASON_IMAGE_UNAVAILABLE)), 121);
  t.is(exitCodeFor(job(F, EndReason.END_REASON_START_FAILED)), 126);
  t.is(exitCodeFor(job(F, EndReason.END_REASON_OOM_KILLED)), 137);
});

test('the reason decides the code even when the process left an exit code', (t) => {
  t.is(exitCodeFor(job(F, EndReason.END_REASON_OOM_KILLED, 0)), 137);
  t.is(exitCodeFor(job(F, EndReason.END_REASON_TIMED_OUT, 143)), 124);
  t.is(exitCodeFor(job(JobState.JOB_STATE_CANCELLED, EndReason.END_REASON_CANCELLED, 143)), 130);
});

test('gridctl\'s own error code is 125', (t) => {
  t.is(EXIT_GRID_ERROR, 125);
});

test('the codes for ways of ending without an exit code are distinct from each other and from 0, 1 and 125', (t) => {
  const reasons = [
    EndReason.END_REASON_CANCELLED,
    EndReason.END_REASON_TIMED_OUT,
    EndReason.END_REASON_QUEUE_TIMEOUT,
    EndReason.END_REASON_NODE_LOST,
    EndReason.END_REASON_IMAGE_UNAVAILABLE,
    EndReason.END_REASON_START_FAILED,
    EndReason.END_REASON_OOM_KILLED,
  ];
  const codes = reasons.map((r) => exitCodeFor(job(F, r)));
  t.is(new Set(codes).size, reasons.length, `codes: ${codes.join(', ')}`);
  for (const code of codes) {
    t.not(code, 0);
    t.not(code, 1);
    t.not(code, 125);
  }
});
