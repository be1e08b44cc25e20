// Writing output as a person asked for it: raw bytes by default (binary-safe),
// or line by line with the time each line was read on the node (--timestamps);
// and the last N lines of each stream (--tail). Pure apart from the stream written to.
import { LogStream, type LogChunk } from '../common/gen/grid/v1/job.js';

export class LineWriter {
  private atLineStart = true;
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly timestamps = false,
  ) {}

  write(data: Uint8Array, time: Date | undefined): void {
    if (!this.timestamps) {
      this.out.write(data);
      return;
    }
    const stamp = `${(time ?? new Date()).toISOString()} `;
    let start = 0;
    for (let i = 0; i < data.length; i++) {
      if (this.atLineStart) {
        this.out.write(stamp);
        this.atLineStart = false;
      }
      if (data[i] === 0x0a) {
        this.out.write(data.subarray(start, i + 1));
        start = i + 1;
        this.atLineStart = true;
      }
    }
    if (start < data.length) this.out.write(data.subarray(start));
  }

}

/** The chunks that hold the last `lines` lines of each stream, the first one cut to its line start. */
export function tailChunks(chunks: LogChunk[], lines: number): LogChunk[] {
  const result: LogChunk[] = [];
  for (const stream of [LogStream.LOG_STREAM_STDOUT, LogStream.LOG_STREAM_STDERR]) {
    const mine = chunks.filter((c) => c.stream === stream);
    let seen = 0;
    let from = mine.length;
    let cut = 0;
    // Walk back until `lines` newlines are behind us (a final line without one counts too).
    outer: for (let i = mine.length - 1; i >= 0; i--) {
      const data = mine[i]!.data;
      for (let j = data.length - 1; j >= 0; j--) {
        const lastByte = i === mine.length - 1 && j === data.length - 1;
        if (data[j] === 0x0a && !lastByte) {
          if (++seen >= lines) {
            from = i;
            cut = j + 1;
            break outer;
          }
        }
      }
      from = i;
      cut = 0;
    }
    if (lines <= 0) continue;
    for (let i = from; i < mine.length; i++) {
      const c = mine[i]!;
      result.push(i === from && cut > 0 ? { ...c, offset: c.offset + BigInt(cut), data: c.data.subarray(cut) } : c);
    }
  }
  return result;
}
