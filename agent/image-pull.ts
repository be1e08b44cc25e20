// Pulls a task's image: progress as it goes, a limit on how long a pull may go
// without news, and a stop when the attempt is cancelled. Docker answers 200 and
// reports a failed pull inside the stream, and docker-modem's followProgress
// takes a closed stream for a finished one: success is only believed once the
// image is really on the engine.
import type Docker from 'dockerode';
import { formatDurationMs } from '../common/units.js';
import { PullTally, type DockerPullMessage, type PullSummary } from './pull-progress.js';
import { TaskAbortedError } from './runtime-driver.js';

/** The parts of dockerode a pull uses (a fake in unit tests). */
export type PullEngine = Pick<Docker, 'pull' | 'getImage'> & { modem: Pick<Docker['modem'], 'followProgress'> };

export interface PullOptions {
  /** Aborted when the attempt is cancelled: the pull stops with TaskAbortedError. */
  signal: AbortSignal;
  /** A pull with no news for this long is given up; 0: no limit. */
  stallMs: number;
  onProgress: (summary: PullSummary, done: boolean) => void;
}

export async function pullImage(engine: PullEngine, image: string, options: PullOptions): Promise<void> {
  const stall = stallWatch(options.stallMs);
  const signal = AbortSignal.any([options.signal, stall.signal]);
  const tally = new PullTally();
  try {
    const stream = (await engine.pull(image, { abortSignal: signal })) as NodeJS.ReadableStream;
    await followPull(engine.modem, stream, signal, (message) => {
      stall.poke();
      if (tally.add(message)) options.onProgress(tally.summary, false);
    });
    if (tally.error) throw new Error(tally.error);
    try {
      await engine.getImage(image).inspect();
    } catch (err) {
      throw new Error(`the pull ended but the image is not on the node (${(err as Error).message})`, { cause: err });
    }
    options.onProgress(tally.summary, true);
  } catch (err) {
    if (options.signal.aborted) throw new TaskAbortedError(`cancelled while pulling ${image}`);
    if (stall.signal.aborted) throw new Error(`no progress for ${formatDurationMs(options.stallMs)}`, { cause: err });
    throw err;
  } finally {
    stall.clear();
  }
}

/**
 * Feeds each message of a pull stream to `onMessage` until it ends. An abort
 * destroys the stream and rejects at once; nothing is delivered after it.
 */
export function followPull(
  modem: Pick<Docker['modem'], 'followProgress'>,
  stream: NodeJS.ReadableStream,
  signal: AbortSignal,
  onMessage: (message: DockerPullMessage) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      (stream as unknown as { destroy(): void }).destroy();
      reject(new Error('pull aborted'));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    modem.followProgress(
      stream,
      (err: Error | null) => {
        signal.removeEventListener('abort', onAbort);
        // The close that follows our own destroy(): already settled by the abort.
        if (signal.aborted) return;
        if (err) reject(err);
        else resolve();
      },
      (message: DockerPullMessage) => {
        if (!signal.aborted) onMessage(message);
      },
    );
  });
}

/** An AbortSignal that fires after `ms` without a poke; never when ms is 0. */
function stallWatch(ms: number): { signal: AbortSignal; poke(): void; clear(): void } {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    if (ms > 0 && !controller.signal.aborted) timer = setTimeout(() => controller.abort(), ms);
  };
  arm();
  return { signal: controller.signal, poke: arm, clear: () => clearTimeout(timer) };
}
