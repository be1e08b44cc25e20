// Masks a job's secret env values in its output before the output leaves the
// node, as "*" of the same length: byte offsets stay those of what the process
// wrote, so resuming and de-duplicating by offset still line up. A value split
// across two writes is caught by holding back, per stream, the end of a write
// that could be the start of a secret (usually nothing) until more comes or
// the stream ends.
import { LogStream } from '../common/gen/grid/v1/job.js';
import type { OutputSink } from './runtime-driver.js';

export interface SecretMasker {
  sink: OutputSink;
  /** Sends what is held back (masked): the streams have ended. */
  flush(): void;
}

export function maskSecrets(values: string[], onOutput: OutputSink): SecretMasker {
  const secrets = [...new Set(values.filter((v) => v.length > 0))].map((v) => Buffer.from(v)).sort((a, b) => b.length - a.length);
  if (secrets.length === 0) return { sink: onOutput, flush() {} };
  const held = new Map<LogStream, Buffer>();

  const sink: OutputSink = (stream, data) => {
    const text = Buffer.concat([held.get(stream) ?? Buffer.alloc(0), data]);
    // Every occurrence of every secret in what was written, then masked at once:
    // masking one secret first could break up an overlapping other and leave part of it.
    const spans: [number, number][] = [];
    for (const secret of secrets) {
      for (let at = text.indexOf(secret); at >= 0; at = text.indexOf(secret, at + 1)) spans.push([at, at + secret.length]);
    }
    for (const [from, to] of spans) text.fill('*', from, to);
    const keep = heldBack(text, secrets);
    held.set(stream, Buffer.from(text.subarray(text.length - keep)));
    if (text.length > keep) onOutput(stream, text.subarray(0, text.length - keep));
  };

  return {
    sink,
    flush() {
      for (const [stream, rest] of held) if (rest.length > 0) onOutput(stream, rest);
      held.clear();
    },
  };
}

/**
 * The length of the longest end of `text` that is a proper start of some
 * secret: only the places in the last (length − 1) bytes where a secret's
 * first byte occurs are compared, without copying.
 */
function heldBack(text: Buffer, secrets: Buffer[]): number {
  let best = 0;
  for (const secret of secrets) {
    for (let at = text.indexOf(secret[0]!, Math.max(0, text.length - secret.length + 1)); at >= 0 && text.length - at > best; at = text.indexOf(secret[0]!, at + 1)) {
      if (text.compare(secret, 0, text.length - at, at) === 0) {
        best = text.length - at;
        break;
      }
    }
  }
  return best;
}
