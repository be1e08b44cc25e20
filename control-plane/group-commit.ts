// Group commit: many concurrent callers' work applied in one statement and one
// commit. While a flush is in flight, what arrives waits and goes into the next
// one, so under load each flush carries everything that came during the last
// one, and an idle caller waits for nothing but the next turn of the event loop.
export interface GroupCommit<I, O> {
  /** Resolves with this item's result once the flush holding it has committed. */
  add(item: I): Promise<O>;
  /** Resolves once nothing is waiting or in flight. */
  drain(): Promise<void>;
}

interface Waiting<I, O> {
  item: I;
  resolve(result: O): void;
  reject(err: unknown): void;
}

export function createGroupCommit<I, O>(options: {
  /** Applies the items in one commit; returns one result per item, in order. */
  run(items: I[]): Promise<O[]>;
  /** At most this many items per flush. */
  maxItems: number;
  /** Flushes in flight at once. */
  concurrency: number;
  /**
   * Whether a failure of a flush of many items should be retried item by item,
   * so that one bad item fails alone (a constraint, a value Postgres refuses)
   * rather than failing everyone's. Transient failures (the database is down)
   * are passed to every caller as they are.
   */
  isolate(err: unknown): boolean;
}): GroupCommit<I, O> {
  let waiting: Waiting<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;
  let idle: (() => void)[] = [];

  async function apply(batch: Waiting<I, O>[]): Promise<void> {
    try {
      const results = await options.run(batch.map((w) => w.item));
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (err) {
      if (batch.length > 1 && options.isolate(err)) {
        for (const w of batch) await apply([w]);
      } else {
        for (const w of batch) w.reject(err);
      }
    }
  }

  function flush(): void {
    scheduled = false;
    while (waiting.length > 0 && inFlight < options.concurrency) {
      const batch = waiting.slice(0, options.maxItems);
      waiting = waiting.slice(batch.length);
      inFlight++;
      void apply(batch).finally(() => {
        inFlight--;
        if (waiting.length > 0) flush();
        else if (inFlight === 0) for (const resolve of idle.splice(0)) resolve();
      });
    }
  }

  return {
    add(item) {
      return new Promise<O>((resolve, reject) => {
        waiting.push({ item, resolve, reject });
        if (!scheduled && inFlight < options.concurrency) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    drain() {
      if (waiting.length === 0 && inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => idle.push(resolve));
    },
  };
}
