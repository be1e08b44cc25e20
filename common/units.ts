// Human units for durations and sizes, so that a person reads "512 MiB" and
// "1m30s" instead of raw numbers; and the int64 edge: int64 fields decode as
// bigint (so no value a client sends can fail decoding) and become numbers here.
import type { Duration } from './gen/google/protobuf/duration.js';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "1h30m", "90s", "500ms", "0" into milliseconds; a bare number is seconds. */
export function parseDurationMs(text: string): number {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(trimmed); m; m = re.exec(trimmed)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    end = re.lastIndex;
  }
  if (end === 0 || end !== trimmed.length) {
    throw new Error(`"${text}" is not a duration; use e.g. 30s, 5m, 1h30m or 500ms`);
  }
  return Math.round(total);
}

export function formatDurationMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  // Round once, up front, so 59.96 s reads "1m" and never "60.0s" or "1m60s".
  const tenths = Math.round(ms / 100);
  if (tenths < 600) return `${tenths % 10 === 0 ? tenths / 10 : (tenths / 10).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', rest ? `${rest}s` : ''].join('');
}

export function durationToMs(d: Duration | undefined): number {
  return d ? Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6) : 0;
}

export function msToDuration(ms: number): Duration {
  const seconds = Math.trunc(ms / 1000);
  return { seconds: BigInt(seconds), nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kb: 1024, kib: 1024,
  m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
};

/** Parses "512m", "2GiB", "1048576" into bytes (binary units, as Docker does). */
export function parseBytes(text: string): number {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new Error(`"${text}" is not a size; use e.g. 256m, 2g or a number of bytes`);
  }
  return Math.round(Number(m[1]) * unit);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let value = Math.abs(bytes);
  let i = 0;
  // Compare the rounded value, so 1048575 B reads "1 MiB" and not "1024.0 KiB".
  while (Math.round(value * 10) / 10 >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  const sign = bytes < 0 ? '-' : '';
  const rounded = Math.round(value * 10) / 10;
  return `${sign}${Number.isInteger(rounded) ? rounded : rounded.toFixed(1)} ${units[i]}`;
}

/**
 * An int64 from the wire as a number, or undefined when it does not fit in one
 * exactly; callers turn that into INVALID_ARGUMENT rather than lose precision.
 */
export function safeNumber(value: bigint): number | undefined {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}
