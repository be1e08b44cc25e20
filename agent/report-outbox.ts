// Reports to the control plane (started, output, finished) survive a broken
// stream: each stays pending until acknowledged, and everything pending is sent
// again, in order, on the next stream. The control plane treats resends as
// duplicates, so at-least-once delivery here is exactly-once in Postgres.
import type { ConnectRequest } from '../common/gen/grid/v1/agent.js';
import type { AsyncQueue } from '../common/async-queue.js';

export type Report = Extract<
  NonNullable<ConnectRequest['message']>,
  { $case: 'jobStarted' | 'jobOutput' | 'jobFinished' }
>;

interface Entry {
  report: Report;
  /** Seq on the current stream, once sent on it. */
  seq: number | undefined;
}

export class ReportOutbox {
  private entries: Entry[] = [];
  private stream: AsyncQueue<ConnectRequest> | undefined;
  private nextSeq = 1;
  private waiters: (() => void)[] = [];

  /** Sends everything pending on a new stream, in order. */
  attach(stream: AsyncQueue<ConnectRequest>): void {
    this.stream = stream;
    this.nextSeq = 1;
    for (const entry of this.entries) this.transmit(entry);
  }

  detach(): void {
    this.stream = undefined;
    for (const entry of this.entries) entry.seq = undefined;
  }

  send(report: Report): void {
    const entry: Entry = { report, seq: undefined };
    this.entries.push(entry);
    if (this.stream) this.transmit(entry);
  }

  /** An ack settles its report whether accepted or refused: a refusal is final too. */
  ack(seq: bigint): void {
    const i = this.entries.findIndex((e) => e.seq !== undefined && BigInt(e.seq) === seq);
    if (i >= 0) this.entries.splice(i, 1);
    if (this.entries.length === 0) for (const resolve of this.waiters.splice(0)) resolve();
  }

  get pending(): number {
    return this.entries.length;
  }

  /** Resolves when every report so far has been acknowledged. */
  drained(): Promise<void> {
    if (this.entries.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private transmit(entry: Entry): void {
    entry.seq = this.nextSeq++;
    this.stream!.push({ seq: BigInt(entry.seq), message: entry.report });
  }
}
