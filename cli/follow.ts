// Follows a job to its end: its state changes and, if asked, its output, written
// to this process's own stdout and stderr. A broken connection is resumed from
// the last byte offset received, so the output has no gap and no duplicate.
import { LogStream, type ImagePullProgress, type Job, type LogChunk } from '../common/gen/grid/v1/job.js';
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

export async function followJob(clients: GridClients, jobId: string, options: FollowOptions): Promise<Job> {
  const next = { ...(options.from ?? { stdout: 0, stderr: 0 }) };
  let attempt = 0;
  let outageStarted: number | undefined;
  let delay = 100;
  // Until the control plane has answered once, an unreachable one is a plain error
  // (as for every other command), not an outage to wait out.
  let answered = options.reachable ?? false;
  for (;;) {
    try {
      const events = clients.jobs.watchJob(
        {
          jobId,
          includeLogs: options.includeLogs,
          includeProgress: options.onPullProgress !== undefined,
          stdoutOffset: BigInt(next.stdout),
          stderrOffset: BigInt(next.stderr),
          attempt,
        },
      );
      for await (const { event } of events) {
        answered = true;
        outageStarted = undefined;
        delay = 100;
        if (!event) continue;
        if (event.$case === 'log') {
          write(event.value, next, options);
          continue;
        }
        if (event.$case === 'imagePull') {
          options.onPullProgress?.(event.value);
          continue;
        }
        const job = event.value;
        if (job.attempt !== attempt) {
          // A new attempt's output starts again at 0 (the first snapshot only tells which attempt `from` meant).
          if (attempt !== 0) {
            next.stdout = 0;
            next.stderr = 0;
          }
          attempt = job.attempt;
        }
        options.onState?.(job);
        if (event.$case === 'ended') return job;
      }
    } catch (err) {
      if (!isRetryable(err) || !answered) throw err;
      outageStarted ??= Date.now();
      if (Date.now() - outageStarted > MAX_OUTAGE_MS) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 2000);
  }
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
