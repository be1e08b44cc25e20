// Batches a task's output into chunks: flushed when a stream has `maxChunkBytes`
// waiting or `flushIntervalMs` after the first unsent byte — never a message per
// line. Each chunk carries its stream's byte offset, so the control plane and
// followers can de-duplicate and resume exactly.
import { LogStream, type LogChunk } from '../common/gen/grid/v1/job.js';

export interface OutputBatcherOptions {
  flushIntervalMs: number;
  maxChunkBytes: number;
  /** Bytes kept per stream; the rest is counted and dropped, so memory stays bounded. */
  capBytes: number;
  /** Receives chunks in order; called synchronously from write() or the timer. */
  emit: (chunks: LogChunk[]) => void;
}

interface Pending {
  stream: LogStream;
  /** Bytes the process wrote to this stream, kept or dropped. */
  written: number;
  parts: Buffer[];
  bytes: number;
  /** Offset of the first pending byte. */
  offset: number;
  time: Date | undefined;
}

export class OutputBatcher {
  private readonly pending: Pending[] = [
    { stream: LogStream.LOG_STREAM_STDOUT, written: 0, parts: [], bytes: 0, offset: 0, time: undefined },
    { stream: LogStream.LOG_STREAM_STDERR, written: 0, parts: [], bytes: 0, offset: 0, time: undefined },
  ];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: OutputBatcherOptions) {}

  write(stream: LogStream, data: Buffer): void {
    if (data.length === 0) return;
    const p = this.pending[stream === LogStream.LOG_STREAM_STDOUT ? 0 : 1]!;
    const room = Math.max(0, this.options.capBytes - p.written);
    p.written += data.length;
    if (room === 0) return;
    if (data.length > room) data = data.subarray(0, room);
    p.time ??= new Date();
    p.parts.push(data);
    p.bytes += data.length;
    if (p.bytes >= this.options.maxChunkBytes) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.options.flushIntervalMs);
  }

  /** Sends everything pending now (both streams, in one emit). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const chunks: LogChunk[] = [];
    for (const p of this.pending) {
      if (p.bytes === 0) continue;
      const all = Buffer.concat(p.parts, p.bytes);
      for (let start = 0; start < all.length; start += this.options.maxChunkBytes) {
        const data = all.subarray(start, start + this.options.maxChunkBytes);
        chunks.push({ stream: p.stream, offset: BigInt(p.offset + start), data, time: p.time, attempt: 0 });
      }
      p.offset += p.bytes;
      p.parts = [];
      p.bytes = 0;
      p.time = undefined;
    }
    if (chunks.length > 0) this.options.emit(chunks);
  }

  /** Bytes the process wrote per stream, including what the cap dropped. */
  get written(): { stdout: number; stderr: number } {
    const [out, err] = this.pending;
    return { stdout: out!.written, stderr: err!.written };
  }

  /** Bytes kept so far per stream. */
  get offsets(): { stdout: number; stderr: number } {
    const [out, err] = this.pending;
    return { stdout: out!.offset + out!.bytes, stderr: err!.offset + err!.bytes };
  }
}
