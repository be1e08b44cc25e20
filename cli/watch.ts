// --watch for list, nodes and status: the same output again every interval
// until Ctrl-C. On a terminal each frame replaces the last (the screen is
// cleared, as watch(1) does); piped, a frame is printed only when it differs
// from the one before, so a log holds each change once. A control plane that
// stops answering is waited for, saying so, not given up on.
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, isRetryable, isSlowAnswer } from './client.js';

export interface WatchTarget {
  write(text: string): void;
  isTTY?: boolean;
}

export const WATCH_INTERVAL_MS = 2000;

export async function watchOutput(
  render: () => Promise<string>,
  options: { server: string; intervalMs?: number; target?: WatchTarget },
): Promise<number> {
  const target = options.target ?? process.stdout;
  const interval = options.intervalMs ?? WATCH_INTERVAL_MS;
  let last: string | undefined;
  const stop = new AbortController();
  const onInterrupt = () => stop.abort();
  process.once('SIGINT', onInterrupt);
  try {
    while (!stop.signal.aborted) {
      let frame: string;
      try {
        frame = await render();
      } catch (err) {
        // Down, or too slow to answer (callOptions' deadline): shown, and asked again.
        if (!isRetryable(err) && !isSlowAnswer(err)) throw err;
        frame = `gridctl: ${describeError(err, options.server)} (trying again every ${interval / 1000}s)\n`;
      }
      if (target.isTTY) target.write(`\x1b[H\x1b[2J${new Date().toLocaleTimeString()}  every ${interval / 1000}s, Ctrl-C to stop\n\n${frame}`);
      else if (frame !== last) target.write(last === undefined ? frame : `\n${frame}`);
      last = frame;
      await sleep(interval, undefined, { signal: stop.signal }).catch(() => undefined);
    }
    return 0;
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}
