// The one owner of an attempt's life on this node: start the container (or take
// up one found after an agent restart), stream its output, enforce its timeout,
// stop it on cancel (or to hand it back, when its node drains), report how it
// ended, and remove it once that report is acknowledged (until then Docker keeps
// its output for a replay). Nothing else on the agent touches a running task.
import type { Logger } from 'pino';
import { CancelCause, type AttemptRef, type Task } from '../common/gen/grid/v1/agent.js';
import { EndReason, LogStream } from '../common/gen/grid/v1/job.js';
import { reasonForExit } from '../common/job-state.js';
import { durationToMs } from '../common/units.js';
import type { HandBackLedger } from './hand-back-ledger.js';
import type { AgentMetrics } from './metrics.js';
import { OutputBatcher } from './output-batcher.js';
import { pacePullProgress } from './pull-progress.js';
import type { News, Report } from './report-outbox.js';
import { TaskAbortedError, TaskStartError, type FoundTask, type RunningTask, type RuntimeDriver, type StartHooks } from './runtime-driver.js';

export interface TaskRunnerDeps {
  driver: RuntimeDriver;
  nodeId: string;
  /** Queues a report; resolves when the control plane acknowledged it. */
  report: (report: Report) => Promise<void>;
  /** Sends live news (pull progress) if a stream is up; never resent. */
  notify: (news: News) => void;
  /** Least time between two pull progress messages of one attempt. */
  pullProgressIntervalMs: number;
  log: Logger;
  flushIntervalMs: number;
  maxChunkBytes: number;
  /** Grace given when the run timeout stops a task that names none. */
  timeoutGraceMs: number;
  /** Attempts being handed back, known to the next agent process too. */
  handBacks: HandBackLedger;
  metrics?: AgentMetrics;
}

const FILES_PIECE_BYTES = 1024 * 1024;

/** An archive of an empty directory is only the two 512-byte end blocks. */
function hasFiles(archive: Buffer): boolean {
  return archive.length > 1024;
}

export interface TaskRunner {
  readonly ref: AttemptRef;
  /** Between the stop signal and SIGKILL when the task is stopped for a hand-back. */
  readonly stopGraceMs: number;
  cancel(graceMs: number, cause: CancelCause): void;
  /** Resolves when the final report is acknowledged and the container removed. */
  readonly done: Promise<void>;
}

/** What to run: a new assignment, or a container found after an agent restart. */
export type TaskSource = { kind: 'new'; task: Task } | { kind: 'found'; found: FoundTask };

export function startTaskRunner(deps: TaskRunnerDeps, ref: AttemptRef, source: TaskSource): TaskRunner {
  const log = deps.log.child({ job_id: ref.jobId, attempt: ref.attempt });
  const attempt = { jobId: ref.jobId, attempt: ref.attempt };
  let running: RunningTask | undefined;
  /** The container's process has ended (by itself or stopped): nothing is left to hand back. */
  let processEnded = false;
  let stopping: { cause: CancelCause; signalled: Promise<boolean> } | undefined;
  let requestedStop: { graceMs: number; cause: CancelCause } | undefined;
  // An earlier agent process was handing this attempt back when it stopped: finish that.
  const handBackNoted = source.kind === 'found' && deps.handBacks.has(attempt);
  if (handBackNoted) requestedStop = { graceMs: 0, cause: CancelCause.CANCEL_CAUSE_HANDED_BACK };
  const stopSignal = source.kind === 'new' ? source.task.stopSignal || 'SIGTERM' : source.found.stopSignal;
  const stopGraceMs =
    source.kind === 'new'
      ? source.task.stopGrace ? durationToMs(source.task.stopGrace) : deps.timeoutGraceMs
      : source.found.stopGraceMs;

  const batcher = new OutputBatcher({
    flushIntervalMs: deps.flushIntervalMs,
    maxChunkBytes: deps.maxChunkBytes,
    capBytes:
      source.kind === 'new' && source.task.outputCapBytes > 0n ? Number(source.task.outputCapBytes)
        : source.kind === 'found' ? source.found.outputCapBytes : Infinity,
    emit: (chunks) => {
      for (const c of chunks) deps.metrics?.logBytesSent.inc({ stream: c.stream === LogStream.LOG_STREAM_STDERR ? 'stderr' : 'stdout' }, c.data.length);
      void deps.report({ $case: 'jobOutput', value: { attempt, chunks } });
    },
  });

  // Stops a start still preparing (pulling its image) when a stop comes first.
  const preparing = new AbortController();

  function stop(requestedGraceMs: number, cause: CancelCause): void {
    // A hand-back stops the task as the task asks to be stopped: nothing about it was refused.
    const graceMs = cause === CancelCause.CANCEL_CAUSE_HANDED_BACK ? stopGraceMs : requestedGraceMs;
    // Noted only while the process still runs: a job that already ended has a real outcome to
    // report, which a successor reading the ledger must not replace with a hand-back.
    if (cause === CancelCause.CANCEL_CAUSE_HANDED_BACK && !stopping && !processEnded) deps.handBacks.note(attempt);
    if (!running) {
      requestedStop ??= { graceMs, cause };
      preparing.abort();
      return;
    }
    if (stopping) return;
    log.info({ grace_ms: graceMs, signal: stopSignal, cause: CancelCause[cause] }, 'stopping container');
    stopping = {
      cause,
      signalled: running.stop(graceMs, stopSignal).catch((err) => (log.warn({ err }, 'cannot stop container'), false)),
    };
  }

  const writtenBytes = () => ({ stdoutBytes: BigInt(batcher.written.stdout), stderrBytes: BigInt(batcher.written.stderr) });

  const done = (async () => {
    const onOutput = (s: LogStream, d: Buffer) => batcher.write(s, d);
    const image = source.kind === 'new' ? source.task.image : '';
    const pullProgress = pacePullProgress({ intervalMs: deps.pullProgressIntervalMs, settleMs: 50 }, (summary, done) =>
      deps.notify({
        $case: 'jobImagePull',
        value: {
          attempt,
          progress: {
            attempt: attempt.attempt,
            image,
            layersTotal: summary.layersTotal,
            layersDone: summary.layersDone,
            downloadedBytes: BigInt(summary.downloadedBytes),
            totalBytes: BigInt(summary.totalBytes),
            done,
            time: new Date(),
          },
        },
      }),
    );
    const hooks: StartHooks = {
      signal: preparing.signal,
      onPullProgress: (summary, done) => (done ? pullProgress.finish(summary) : pullProgress.update(summary)),
    };
    try {
      const endStart = source.kind === 'new' ? deps.metrics?.containerStartSeconds.startTimer() : undefined;
      running =
        source.kind === 'new'
          ? await deps.driver.start({ ...attempt, nodeId: deps.nodeId }, source.task, onOutput, hooks)
          : await deps.driver.reattach(source.found, onOutput);
      endStart?.();
    } catch (err) {
      pullProgress.stop();
      // Stopped before it ran, by the stop or not: the stop decides how it ends.
      const aborted = err instanceof TaskAbortedError || requestedStop !== undefined;
      const reason = aborted && requestedStop
        ? reasonForStop(requestedStop.cause)
        : err instanceof TaskStartError ? err.reason : EndReason.END_REASON_START_FAILED;
      if (aborted) log.info({ reason: EndReason[reason] }, 'stopped before the task started');
      // A job that cannot start (no such image, a bad command) is the job's story, told in its end
      // report: one line with the reason. A stack only for the unexpected, or when asked (debug).
      else if (err instanceof TaskStartError && !log.isLevelEnabled('debug')) log.info({ reason: EndReason[reason], why: err.message }, 'task did not start');
      else log.warn({ err }, 'task did not start');
      const handedBack = aborted && requestedStop?.cause === CancelCause.CANCEL_CAUSE_HANDED_BACK;
      await deps.report({
        $case: 'jobFinished',
        value: {
          attempt,
          reason: handedBack ? EndReason.END_REASON_UNSPECIFIED : reason,
          message: handedBack ? 'handed back before it started' : (err as Error).message,
          finishedAt: new Date(), exitCode: undefined, startedAt: undefined, stdoutBytes: 0n, stderrBytes: 0n, handedBack,
        },
      });
      deps.handBacks.forget(attempt);
      if (source.kind === 'found') await deps.driver.remove(source.found);
      return;
    }
    log.info({ container: running.id, reattached: source.kind === 'found' }, 'task started');
    void deps.report({ $case: 'jobStarted', value: { attempt, containerId: running.id, startedAt: running.startedAt } });
    if (requestedStop) stop(requestedStop.graceMs, requestedStop.cause);
    const timeoutMs = source.kind === 'new' ? durationToMs(source.task.timeout) : source.found.timeoutMs;
    // After a restart the timeout still counts from the container's real start.
    const remainingMs = timeoutMs - (Date.now() - running.startedAt.getTime());
    const timer = timeoutMs > 0 ? setTimeout(() => stop(stopGraceMs, CancelCause.CANCEL_CAUSE_TIMED_OUT), Math.max(0, remainingMs)) : undefined;

    let finished: Extract<Report, { $case: 'jobFinished' }>['value'];
    try {
      const exit = await running.exited;
      processEnded = true;
      batcher.flush();
      // A stop only decides the reason if it signalled the process; one that
      // came after the process exited by itself leaves the real outcome standing.
      const signalled = stopping ? await stopping.signalled : false;
      const handedBack = handBackNoted || (signalled && stopping!.cause === CancelCause.CANCEL_CAUSE_HANDED_BACK);
      const reason = handedBack ? EndReason.END_REASON_UNSPECIFIED : signalled ? reasonForStop(stopping!.cause) : reasonForExit(exit.exitCode, exit.oomKilled);
      finished = {
        attempt,
        exitCode: exit.exitCode,
        reason,
        message: handedBack ? 'stopped to hand the job back' : describe(reason, exit.exitCode, timeoutMs),
        startedAt: exit.startedAt,
        finishedAt: exit.finishedAt,
        ...writtenBytes(),
        handedBack,
      };
    } catch (err) {
      batcher.flush();
      log.error({ err }, 'lost track of the container');
      finished = {
        attempt,
        exitCode: undefined,
        reason: EndReason.END_REASON_FAILED,
        message: `the node lost track of the container: ${(err as Error).message}`,
        startedAt: running.startedAt,
        finishedAt: new Date(),
        ...writtenBytes(),
        handedBack: false,
      };
    } finally {
      clearTimeout(timer);
    }
    const filesCap = source.kind === 'new' ? Number(source.task.outputFilesCapBytes) : source.found.outputFilesCapBytes;
    // A handed-back job runs again elsewhere: its files are that run's to give.
    if (filesCap > 0 && !finished.handedBack) await sendOutputFiles(running, filesCap);
    if (finished.handedBack) log.info({ exit_code: finished.exitCode }, 'task stopped and handed back');
    else log.info({ exit_code: finished.exitCode, reason: EndReason[finished.reason] }, 'task finished');
    await deps.report({ $case: 'jobFinished', value: finished });
    // Whatever was reported, the control plane has it now (a hand-back noted for an
    // attempt that ended otherwise, a cancel or a lost container, goes too).
    deps.handBacks.forget(attempt);
    await deps.driver.remove(running);
  })();

  /** The /grid/out archive in pieces, ahead of the final report; past the cap, only an error. */
  async function sendOutputFiles(task: RunningTask, capBytes: number): Promise<void> {
    const piece = (offset: number, data: Buffer, last: boolean, error = '') =>
      void deps.report({ $case: 'jobOutputFiles', value: { attempt, offset: BigInt(offset), data, last, error } });
    try {
      const archive = await deps.driver.collectOutputs(task);
      if (!archive) return;
      // Held in memory up to the cap (bounded), so an oversized archive sends nothing but the error.
      const parts: Buffer[] = [];
      let total = 0;
      for await (const chunk of archive) {
        total += chunk.length;
        if (total > capBytes) {
          piece(0, Buffer.alloc(0), true, `the files under /grid/out are more than this server's limit of ${capBytes} bytes; none were kept`);
          return;
        }
        parts.push(chunk);
      }
      const all = Buffer.concat(parts);
      if (!hasFiles(all)) return;
      for (let offset = 0; offset < all.length; offset += FILES_PIECE_BYTES) {
        const end = Math.min(all.length, offset + FILES_PIECE_BYTES);
        piece(offset, all.subarray(offset, end), end === all.length);
      }
    } catch (err) {
      log.warn({ err }, 'cannot collect output files');
      piece(0, Buffer.alloc(0), true, `the output files could not be collected: ${(err as Error).message}`);
    }
  }

  return { ref: attempt, stopGraceMs, cancel: stop, done };
}

function reasonForStop(cause: CancelCause): EndReason {
  return cause === CancelCause.CANCEL_CAUSE_TIMED_OUT ? EndReason.END_REASON_TIMED_OUT : EndReason.END_REASON_CANCELLED;
}

function describe(reason: EndReason, exitCode: number, timeoutMs: number): string {
  switch (reason) {
    case EndReason.END_REASON_SUCCEEDED:
      return '';
    case EndReason.END_REASON_FAILED:
      return `exited with code ${exitCode}`;
    case EndReason.END_REASON_OOM_KILLED:
      return `killed for using more memory than its limit (exit code ${exitCode})`;
    case EndReason.END_REASON_TIMED_OUT:
      return `stopped after its timeout of ${timeoutMs / 1000}s`;
    case EndReason.END_REASON_CANCELLED:
      return 'cancelled';
    default:
      return '';
  }
}
