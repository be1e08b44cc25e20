// parseReport: what an agent's report must be before it reaches SQL; a bad one
// is refused alone instead of failing a statement on every resend.
import test from 'ava';
import { ConnectRequest } from '../../common/gen/grid/v1/agent.js';
import { EndReason, LogStream } from '../../common/gen/grid/v1/job.js';
import { isTransientDatabaseError } from '../../common/errors.js';
import { MAX_MESSAGE_CHARS, parseReport } from '../../control-plane/report-validation.js';

const attempt = { jobId: '0190a3c2-0000-7000-8000-000000000001', attempt: 1 };
const finished = (fields: Record<string, unknown>) =>
  ConnectRequest.fromPartial({ seq: 7n, message: { $case: 'jobFinished', value: { attempt, reason: EndReason.END_REASON_SUCCEEDED, exitCode: 0, message: '', ...fields } } });
const output = (chunk: Record<string, unknown>) =>
  ConnectRequest.fromPartial({ seq: 8n, message: { $case: 'jobOutput', value: { attempt, chunks: [{ stream: LogStream.LOG_STREAM_STDOUT, offset: 0n, data: Buffer.from('x'), attempt: 1, ...chunk }] } } });

test('a well-formed finish passes, its job id lower-cased', (t) => {
  const r = parseReport(finished({ attempt: { ...attempt, jobId: attempt.jobId.toUpperCase() } }));
  t.is(r.kind, 'report');
  if (r.kind === 'report' && r.report.kind === 'finished') t.is(r.report.report.attempt.jobId, attempt.jobId);
});

test('a finish that hands the attempt back is a hand-back, whatever reason it carries', (t) => {
  const r = parseReport(finished({ handedBack: true, reason: EndReason.END_REASON_UNSPECIFIED, exitCode: undefined, stdoutBytes: 6n }));
  if (r.kind !== 'report') return t.fail(r.kind);
  t.is(r.report.kind, 'handedBack');
  if (r.report.kind === 'handedBack') {
    t.deepEqual(r.report.report.attempt, attempt);
    t.deepEqual(r.report.report.output, { stdoutBytes: 6, stderrBytes: 0 });
  }
});

test('a NUL in a message is replaced and a long one cut, not refused: Postgres can store what is kept', (t) => {
  const r = parseReport(finished({ message: `bad\0byte${'x'.repeat(2 * MAX_MESSAGE_CHARS)}` }));
  if (r.kind !== 'report' || r.report.kind !== 'finished') return t.fail(r.kind);
  t.false(r.report.report.message.includes('\0'));
  t.true(r.report.report.message.startsWith('bad\uFFFDbyte'));
  t.true(r.report.report.message.length <= MAX_MESSAGE_CHARS + 1);
});

test('what Postgres would refuse is refused alone, with the reason: stream, offsets, times, attempt, end reason', (t) => {
  const cases: [ConnectRequest, RegExp][] = [
    [output({ stream: 70000 }), /output stream 70000 is neither stdout nor stderr/],
    [output({ offset: -1n }), /offset -1 is out of range/],
    [output({ offset: 2n ** 60n }), /offset \d+ is out of range/],
    [output({ time: new Date(Date.UTC(275760, 0, 1)) }), /time is not a usable time/],
    [finished({ finishedAt: new Date(Number.NaN) }), /finished_at is not a usable time/],
    [finished({ stdoutBytes: 2n ** 63n - 1n }), /stdout_bytes \d+ is out of range/],
    [finished({ attempt: { ...attempt, attempt: 0 } }), /attempt 0 is not an attempt number/],
    [finished({ attempt: { jobId: 'not-a-job', attempt: 1 } }), /job id "not-a-job" is not a job id/],
    [finished({ reason: EndReason.END_REASON_UNSPECIFIED }), /has no end reason/],
  ];
  for (const [request, why] of cases) {
    const r = parseReport(request);
    t.is(r.kind, 'invalid', String(why));
    if (r.kind === 'invalid') {
      t.regex(r.why, why);
      t.is(r.seq, request.seq, 'refused by its own seq');
    }
  }
});

test('a deadlock or serialization failure is worth retrying, as an unreachable database is; a constraint is not', (t) => {
  const pg = (code: string) => Object.assign(new Error(code), { code });
  t.true(isTransientDatabaseError(pg('40P01')));
  t.true(isTransientDatabaseError(pg('40001')));
  t.true(isTransientDatabaseError(pg('CONNECTION_CLOSED')));
  t.true(isTransientDatabaseError(new Error('wrapped', { cause: pg('40P01') })));
  t.false(isTransientDatabaseError(pg('23505')));
});
