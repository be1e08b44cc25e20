// Backpressure on submits: while jobs are being dispatched, the queue is kept
// to about what dispatch takes in `targetDelayMs`, so that a job submitted
// under overload waits about that long for a node, not minutes behind a queue
// that only grows. A submit that would go past it is held (its caller waits)
// until the queue has drained below it. While nothing is dispatched (no node,
// or no free slot for a while) nothing is held: the queue then fills up to
// --max-queued, whose RESOURCE_EXHAUSTED is the limit of last resort. Pure: the
// caller feeds it claims and queue depths.
export interface SubmitPacer {
  /** This replica claimed `count` jobs now. */
  claimed(count: number, now: number): void;
  /** Whether a submit should wait, with `queued` jobs in the queue now. */
  shouldHold(queued: number, now: number): boolean;
  /** The queue depth above which submits wait, now (Infinity: none). */
  highWater(now: number): number;
}

export function createSubmitPacer(options: {
  /** How long a job should wait in the queue at most under overload. */
  targetDelayMs: number;
  /** Never hold below this many queued jobs (a burst of a few is always taken at once). */
  minHighWater: number;
  /** The window the dispatch rate is measured over. */
  windowMs: number;
}): SubmitPacer {
  // Claims per slice of the window, as [time of the slice, count].
  const slices: [number, number][] = [];
  const slice = options.windowMs / 10;

  function rate(now: number): number {
    while (slices.length > 0 && slices[0]![0] <= now - options.windowMs) slices.shift();
    const claimed = slices.reduce((n, [, c]) => n + c, 0);
    return claimed / options.windowMs;
  }

  function highWater(now: number): number {
    const perMs = rate(now);
    if (perMs === 0) return Infinity;
    return Math.max(options.minHighWater, perMs * options.targetDelayMs);
  }

  return {
    claimed(count, now) {
      if (count <= 0) return;
      const last = slices.at(-1);
      if (last && now - last[0] < slice) last[1] += count;
      else slices.push([now, count]);
    },
    shouldHold: (queued, now) => queued >= highWater(now),
    highWater,
  };
}
