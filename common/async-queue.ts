// A push-driven async iterable: the outgoing side of a gRPC stream that other
// code writes to (assignments to an agent, events to a watcher, reports to the
// control plane). Unbounded by design: callers that can flood it bound themselves.
export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | undefined;
  private ended = false;
  private failure: unknown;

  push(item: T): boolean {
    if (this.ended) return false;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
    return true;
  }

  /** Ends the iteration after the items already queued (or at once with an error). */
  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    if (error !== undefined) this.items = [];
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  /** Takes every item queued now (for a consumer that handles them as one batch). */
  takeQueued(max = Infinity): T[] {
    return this.items.splice(0, max);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  get size(): number {
    return this.items.length;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.shift()!;
        continue;
      }
      if (this.ended) {
        if (this.failure !== undefined) throw this.failure;
        return;
      }
      const next = await new Promise<IteratorResult<T>>((resolve) => (this.waiting = resolve));
      if (next.done) {
        if (this.failure !== undefined) throw this.failure;
        if (this.items.length === 0) return;
        continue;
      }
      yield next.value;
    }
  }
}
