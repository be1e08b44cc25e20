// What an agent's report must be before it goes near SQL. Pure. A report that
// fails is refused alone (acknowledged as refused, so its agent drops it): left
// unanswered it would be sent again on every stream, ahead of all the node's
// other reports, and fail the same way each time (a NUL byte, a stream number
// or a date Postgres refuses).
import type { ConnectRequest, JobFinished, JobOutputFiles } from '../common/gen/grid/v1/agent.js';
import { EndReason, LogStream, type LogChunk } from '../common/gen/grid/v1/job.js';
import type { AttemptRef } from '../common/attempt.js';
import { failedPrecondition } from '../common/errors.js';
import type { NodeReport } from './job-transitions.js';

/** A report as queued on its stream: its seq (for the ack) and what it says. */
export type Queued = { seq: bigint } & ({ kind: 'report'; report: NodeReport } | { kind: 'files'; attempt: AttemptRef; files: JobOutputFiles });

export type Parsed = Queued | { seq: bigint; kind: 'invalid'; why: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_ATTEMPT = 2 ** 31 - 1;
/** Report messages are kept to this many characters. */
export const MAX_MESSAGE_CHARS = 4096;
// Dates Postgres and every client can hold, with room either side of now.
const EARLIEST = Date.UTC(2000, 0, 1);
const LATEST = Date.UTC(2200, 0, 1);

class Invalid extends Error {}

/**
 * Checks a report (any message but hello, heartbeat and pull news). Throws a
 * FAILED_PRECONDITION only for a message that has no place on the stream;
 * anything else wrong is `invalid`, refused alone.
 */
export function parseReport(request: ConnectRequest): Parsed {
  const m = request.message!;
  const seq = request.seq;
  try {
    switch (m.$case) {
      case 'jobStarted':
        return { seq, kind: 'report', report: { kind: 'started', report: { attempt: attemptOf(m.value.attempt), startedAt: dateOf('started_at', m.value.startedAt) ?? new Date() } } };
      case 'jobOutput':
        return { seq, kind: 'report', report: { kind: 'output', report: { attempt: attemptOf(m.value.attempt), chunks: m.value.chunks.map(chunkOf) } } };
      case 'jobFinished':
        return { seq, kind: 'report', report: finishedOf(m.value) };
      case 'jobOutputFiles':
        count('offset', m.value.offset);
        return { seq, kind: 'files', attempt: attemptOf(m.value.attempt), files: { ...m.value, error: textOf(m.value.error) } };
      default:
        throw failedPrecondition(`unexpected message ${m.$case} on AgentService.Connect`);
    }
  } catch (err) {
    if (err instanceof Invalid) return { seq, kind: 'invalid', why: err.message };
    throw err;
  }
}

function attemptOf(ref: AttemptRef | undefined): AttemptRef {
  if (!ref) throw new Invalid('a report without an attempt');
  if (!UUID.test(ref.jobId)) throw new Invalid(`job id "${ref.jobId.slice(0, 64)}" is not a job id`);
  if (!Number.isInteger(ref.attempt) || ref.attempt < 1 || ref.attempt > MAX_ATTEMPT) throw new Invalid(`attempt ${ref.attempt} is not an attempt number`);
  return { jobId: ref.jobId.toLowerCase(), attempt: ref.attempt };
}

function chunkOf(chunk: LogChunk): LogChunk {
  if (chunk.stream !== LogStream.LOG_STREAM_STDOUT && chunk.stream !== LogStream.LOG_STREAM_STDERR) throw new Invalid(`output stream ${chunk.stream} is neither stdout nor stderr`);
  count('offset', chunk.offset);
  return { ...chunk, time: dateOf('time', chunk.time) };
}

function finishedOf(f: JobFinished): NodeReport {
  const attempt = attemptOf(f.attempt);
  const output = { stdoutBytes: count('stdout_bytes', f.stdoutBytes), stderrBytes: count('stderr_bytes', f.stderrBytes) };
  // Stopped by its node to give the job back: no reason of the job's own.
  if (f.handedBack) return { kind: 'handedBack', report: { attempt, endedAt: dateOf('finished_at', f.finishedAt) ?? new Date(), output } };
  if (f.reason === EndReason.END_REASON_UNSPECIFIED || EndReason[f.reason] === undefined) {
    throw new Invalid(`job_finished for ${attempt.jobId} has no end reason (${f.reason})`);
  }
  return {
    kind: 'finished',
    report: {
      attempt,
      reason: f.reason,
      exitCode: f.exitCode,
      message: textOf(f.message),
      startedAt: dateOf('started_at', f.startedAt),
      endedAt: dateOf('finished_at', f.finishedAt) ?? new Date(),
      output,
    },
  };
}

/** A byte count or offset: 0 up to what a double holds exactly. */
function count(field: string, value: bigint): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Invalid(`${field} ${value} is out of range`);
  return Number(value);
}

function dateOf(field: string, value: Date | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const t = value.getTime();
  if (!Number.isFinite(t) || t < EARLIEST || t > LATEST) throw new Invalid(`${field} is not a usable time`);
  return value;
}

/** Text Postgres can store (no NUL) and of a bounded length: kept, not refused. */
function textOf(text: string): string {
  const clean = text.includes('\0') ? text.replaceAll('\0', '\uFFFD') : text;
  return clean.length > MAX_MESSAGE_CHARS ? `${clean.slice(0, MAX_MESSAGE_CHARS)}…` : clean;
}
