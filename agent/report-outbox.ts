// Reports to the control plane (started, output, finished) survive a broken
// stream and an outage: each stays pending until acknowledged, and everything
// pending is sent again, in order, on the next stream. The control plane treats
// resends as duplicates, so at-least-once here is exactly-once in Postgres.
// Memory is bounded: past `memoryLimitBytes`, output and file reports wait in a spill file.
// Reports go out after a short window (`windowMs`; an end at once, taking what
// waits with it), and an attempt that starts and ends within it, or while no stream is up, is reported once: its
// jobFinished (which carries the start time) replaces a jobStarted not yet sent.
// The control plane accepts that (ASSIGNED → ended is a transition of
// common/job-state.ts), and it saves a message, an ack and a row update per job.
import { closeSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConnectRequest } from '../common/gen/grid/v1/agent.js';
import type { AsyncQueue } from '../common/async-queue.js';
import { attemptKeyOf } from '../common/attempt.js';

export type Report = Extract<
  NonNullable<ConnectRequest['message']>,
  { $case: 'jobStarted' | 'jobOutput' | 'jobOutputFiles' | 'jobFinished' }
>;

/** Live news about an attempt: sent only on a stream that is up, never kept or resent. */
export type News = Extract<NonNullable<ConnectRequest['message']>, { $case: 'jobImagePull' }>;

export interface ReportOutboxOptions {
  memoryLimitBytes: number;
  /** Where output reports beyond the memory limit wait; none means no spilling. */
  spillFile?: string;
  /** How long a report waits for others to go out with it; 0 sends each at once. */
  windowMs?: number;
}

interface Entry {
  report: Report | undefined;
  spilled: { offset: number; length: number } | undefined;
  bytes: number;
  attempt: string;
  /** Seq on the current stream, once sent on it. */
  seq: number | undefined;
  /** Settles the report's promise (and those of the reports it replaced). */
  acked: () => void;
}

const REPORT_OVERHEAD_BYTES = 128;

export class ReportOutbox {
  private entries: Entry[] = [];
  private stream: AsyncQueue<ConnectRequest> | undefined;
  private nextSeq = 1;
  private memoryBytes = 0;
  private spillFd: number | undefined;
  private spillEnd = 0;
  private waiters: (() => void)[] = [];
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ReportOutboxOptions = { memoryLimitBytes: Infinity }) {}

  /** Sends everything pending on a new stream, in order. */
  attach(stream: AsyncQueue<ConnectRequest>): void {
    this.stream = stream;
    this.nextSeq = 1;
    for (const entry of this.entries) this.transmit(entry);
  }

  detach(): void {
    this.stream = undefined;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const entry of this.entries) entry.seq = undefined;
  }

  /** Queues a report; resolves once the control plane has acknowledged it. */
  send(report: Report): Promise<void> {
    let acked!: () => void;
    const settled = new Promise<void>((resolve) => (acked = resolve));
    const bytes = sizeOf(report);
    const entry: Entry = { report, spilled: undefined, bytes, attempt: attemptOf(report), seq: undefined, acked };
    const spillable = report.$case === 'jobOutput' || report.$case === 'jobOutputFiles';
    if (spillable && this.memoryBytes + bytes > this.options.memoryLimitBytes && this.options.spillFile) {
      entry.spilled = this.spill(report);
      entry.report = undefined;
    } else {
      this.memoryBytes += bytes;
    }
    if (report.$case === 'jobFinished') this.replaceStart(entry, report.value);
    this.entries.push(entry);
    if (!this.stream) return settled;
    // An end goes out at once, with all that waited before it: it is the attempt's
    // last word, and a follower (gridctl run) waits for it to exit.
    if (!this.options.windowMs) this.transmit(entry);
    else if (report.$case === 'jobFinished') {
      clearTimeout(this.flushTimer);
      this.flush();
    } else this.flushTimer ??= setTimeout(() => this.flush(), this.options.windowMs).unref();
    return settled;
  }

  /** An ack settles its report whether accepted or refused: a refusal is final too. */
  ack(seq: bigint): void {
    const i = this.entries.findIndex((e) => e.seq !== undefined && BigInt(e.seq) === seq);
    if (i < 0) return;
    const [entry] = this.entries.splice(i, 1);
    if (entry!.report) this.memoryBytes -= entry!.bytes;
    entry!.acked();
    if (this.entries.length === 0) {
      this.resetSpill();
      for (const resolve of this.waiters.splice(0)) resolve();
    }
  }

  get pending(): number {
    return this.entries.length;
  }

  /** Bytes of reports held in memory (spilled ones excluded). */
  get bytesInMemory(): number {
    return this.memoryBytes;
  }

  get spilledReports(): number {
    return this.entries.filter((e) => e.spilled).length;
  }

  /** "jobId/attempt" of every attempt with a report still unacknowledged. */
  pendingAttempts(): Set<string> {
    return new Set(this.entries.map((e) => e.attempt));
  }

  /** Resolves when every report so far has been acknowledged. */
  drained(): Promise<void> {
    if (this.entries.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Sends what waits for the window, in order. */
  private flush(): void {
    this.flushTimer = undefined;
    if (!this.stream) return;
    for (const entry of this.entries) if (entry.seq === undefined) this.transmit(entry);
  }

  /**
   * An attempt's jobStarted that is not on the current stream yet is dropped:
   * its jobFinished says the same (with the start time, filled in if missing)
   * and settles both once acknowledged.
   */
  private replaceStart(finished: Entry, report: Extract<Report, { $case: 'jobFinished' }>['value']): void {
    const i = this.entries.findIndex((e) => e.seq === undefined && e.attempt === finished.attempt && e.report?.$case === 'jobStarted');
    if (i < 0) return;
    const [start] = this.entries.splice(i, 1);
    this.memoryBytes -= start!.bytes;
    if (start!.report?.$case === 'jobStarted') report.startedAt ??= start!.report.value.startedAt;
    const ackFinished = finished.acked;
    finished.acked = () => {
      start!.acked();
      ackFinished();
    };
  }

  private transmit(entry: Entry): void {
    entry.seq = this.nextSeq++;
    const message = entry.report ?? this.unspill(entry.spilled!);
    this.stream!.push({ seq: BigInt(entry.seq), message });
  }

  private spill(report: Report): { offset: number; length: number } {
    if (this.spillFd === undefined) {
      mkdirSync(dirname(this.options.spillFile!), { recursive: true });
      this.spillFd = openSync(this.options.spillFile!, 'w+');
      this.spillEnd = 0;
    }
    const bytes = ConnectRequest.encode({ seq: 0n, message: report }).finish();
    writeSync(this.spillFd, bytes, 0, bytes.length, this.spillEnd);
    const at = { offset: this.spillEnd, length: bytes.length };
    this.spillEnd += bytes.length;
    return at;
  }

  private unspill(at: { offset: number; length: number }): Report {
    const bytes = Buffer.alloc(at.length);
    readSync(this.spillFd!, bytes, 0, at.length, at.offset);
    return ConnectRequest.decode(bytes).message as Report;
  }

  private resetSpill(): void {
    if (this.spillFd === undefined) return;
    ftruncateSync(this.spillFd, 0);
    closeSync(this.spillFd);
    this.spillFd = undefined;
    this.spillEnd = 0;
  }
}

function attemptOf(report: Report): string {
  return attemptKeyOf(report.value.attempt!);
}

function sizeOf(report: Report): number {
  if (report.$case === 'jobOutputFiles') return report.value.data.length + REPORT_OVERHEAD_BYTES;
  if (report.$case !== 'jobOutput') return REPORT_OVERHEAD_BYTES;
  return report.value.chunks.reduce((n, c) => n + c.data.length + 32, REPORT_OVERHEAD_BYTES);
}
