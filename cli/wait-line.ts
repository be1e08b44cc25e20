// The live line a terminal shows while a job waits to run: a spinner, what it
// waits in (queued, assigned), for how long, and why. It gives way to the
// pull progress line and to the job's output, and leaves one plain line
// behind saying how long the wait was, if it was long enough to notice.
import { JobState } from '../common/gen/grid/v1/job.js';
import { dim } from './style.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TICK_MS = 100;
/** A wait shorter than this leaves no line behind. */
const NOTICEABLE_MS = 1000;

export interface WaitLine {
  /** The job's state and (queued) reason now. */
  update(state: JobState, reason: string): void;
  /** Clears the line for good (the job runs, ended, or something else needs the line). */
  stop(): void;
}

export function startWaitLine(target: { write(text: string): void; columns?: number }): WaitLine {
  const since = performance.now();
  let state = JobState.JOB_STATE_QUEUED;
  let reason = '';
  let frame = 0;
  let stopped = false;
  const render = () => {
    const secs = Math.floor((performance.now() - since) / 1000);
    let text = `grid: ${FRAMES[frame++ % FRAMES.length]} ${state === JobState.JOB_STATE_ASSIGNED ? 'assigned, starting' : 'queued'} for ${secs}s${reason ? `: ${reason}` : ''}`;
    const width = (target.columns || 80) - 1;
    if (text.length > width) text = text.slice(0, Math.max(0, width - 1)) + '…';
    target.write(`\r\x1b[K${dim(text)}`);
  };
  const timer = setInterval(render, TICK_MS);
  timer.unref();
  render();
  return {
    update(next, why) {
      state = next;
      if (why) reason = why;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      const waited = performance.now() - since;
      target.write('\r\x1b[K');
      if (waited >= NOTICEABLE_MS) target.write(`${dim(`grid: waited ${(waited / 1000).toFixed(1)}s to start${reason ? ` (${reason})` : ''}`)}\n`);
    },
  };
}
