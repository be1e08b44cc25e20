// Follows a job to its end: its state changes and, if asked, its output, written
// to this process's own stdout and stderr. A broken connection is resumed from
// the last byte offset received, so the output has no gap and no duplicate.
// `run` submits and follows on one stream (RunJob); once the job's id is known
// every reconnect is a WatchJob.
import { LogStream, type ImagePullProgress, type Job, type LogChunk, type SubmitJobRequest, type WatchJobResponse } from '../common/gen/grid/v1/job.js';
import { isRetryable, type GridClients } from './client.js';

export interface FollowOptions {
  includeLogs: boolean;
  stdout: boolean;
  stderr: boolean;
  onState?: (job: Job) => void;
  onChunk?: (chunk: LogChunk) => void;
  /** Asks for progress before the job runs (image pulls) too. */
  onPullProgress?: (progress: ImagePullProgress) => void;
  /** Byte offsets already shown (of the job's current attempt): follow from there. */
  from?: { stdout: number; stderr: number };
  /** The control plane already answered this command (a submit): an outage from the start is waited out too. */
  reachable?: boolean;
}

/** A follower gives up after the control plane was unreachable this long. */
const MAX_OUTAGE_MS = 5 * 60_000;
/** RunJob is retried this often while the job's id is not known yet (the request id makes it the same job). */
const SUBMIT_TRIES = 5;

/** Where a follow stands: which job (once known), its attempt, and the output offsets shown. */
interface Position {
  jobId: string | undefined;
  attempt: number;
  next: { stdout: number; stderr: number };
}

export function followJob(clients: GridClients, jobId: string, options: FollowOptions): Promise<Job> {
  return follow(clients, { jobId, attempt: 0, next: { ...(options.from ?? { stdout: 0, stderr: 0 }) } }, options);
}

/** Submits and follows on one stream; `onSubmitted` hears of the job once it is stored. */
export function runAndFollow(clients: GridClients, submit: SubmitJobRequest, options: FollowOptions & { onSubmitted: (job: Job) => void }): Promise<Job> {
  return follow(clients, { jobId: undefined, attempt: 0, next: { stdout: 0, stderr: 0 } }, options, submit);
}

async function follow(clients: GridClients, at: Position, options: FollowOptions & { onSubmitted?: (job: Job) => void }, submit?: SubmitJobRequest): Promise<Job> {
  let outageStarted: number | undefined;
  let delay = 100;
  let submitTries = 0;
  // Until the control plane has answered once, an unreachable one is a plain error
  // (as for every other command), not an outage to wait out.
  let answered = options.reachable ?? false;
  for (;;) {
    try {
      const events =
        at.jobId === undefined
          ? clients.jobs.runJob({ submit, includeLogs: options.includeLogs, includeProgress: options.onPullProgress !== undefined })
          : clients.jobs.watchJob({
              jobId: at.jobId,
              includeLogs: options.includeLogs,
              includeProgress: options.onPullProgress !== undefined,
              stdoutOffset: BigInt(at.next.stdout),
              stderrOffset: BigInt(at.next.stderr),
              attempt: at.attempt,
            });
      for await (const response of events) {
        answered = true;
        outageStarted = undefined;
        delay = 100;
        const ended = take(response, at, options);
        if (ended) return ended;
      }
    } catch (err) {
      if (at.jobId === undefined) {
        // Not stored as far as this process knows: a submit error, or a retry of the same request.
        if (!isRetryable(err) || ++submitTries >= SUBMIT_TRIES) throw err;
      } else {
        if (!isRetryable(err) || !answered) throw err;
        outageStarted ??= Date.now();
        if (Date.now() - outageStarted > MAX_OUTAGE_MS) throw err;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 2000);
  }
}

/** One event of a watch; the job when it was the final one. */
function take({ event }: WatchJobResponse, at: Position, options: FollowOptions & { onSubmitted?: (job: Job) => void }): Job | undefined {
  if (!event) return undefined;
  if (event.$case === 'log') {
    write(event.value, at.next, options);
    return undefined;
  }
  if (event.$case === 'imagePull') {
    options.onPullProgress?.(event.value);
    return undefined;
  }
  const job = event.value;
  if (at.jobId === undefined) {
    at.jobId = job.id;
    options.onSubmitted?.(job);
  }
  if (job.attempt !== at.attempt) {
    // A new attempt's output starts again at 0 (the first snapshot only tells which attempt `from` meant).
    if (at.attempt !== 0) {
      at.next.stdout = 0;
      at.next.stderr = 0;
    }
    at.attempt = job.attempt;
  }
  options.onState?.(job);
  return event.$case === 'ended' ? job : undefined;
}

function write(chunk: LogChunk, next: { stdout: number; stderr: number }, options: FollowOptions): void {
  const isOut = chunk.stream === LogStream.LOG_STREAM_STDOUT;
  const from = isOut ? next.stdout : next.stderr;
  const offset = Number(chunk.offset);
  const end = offset + chunk.data.length;
  if (end <= from) return;
  const data = offset < from ? chunk.data.subarray(from - offset) : chunk.data;
  if (isOut) next.stdout = end;
  else next.stderr = end;
  options.onChunk?.({ ...chunk, offset: BigInt(Math.max(offset, from)), data });
  if (isOut ? options.stdout : options.stderr) (isOut ? process.stdout : process.stderr).write(data);
}
