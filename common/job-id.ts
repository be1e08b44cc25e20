// What a job id (a UUIDv7, made at submit) tells. Its first 48 bits are the
// submit time in milliseconds; its last 12 hex digits are random, and are the
// short id people type a few characters of (the first ones are shared by every
// job of the same millisecond).
export const SHORT_ID_LENGTH = 12;
/** The fewest characters a prefix may have: fewer would match a good share of any history. */
export const MIN_PREFIX = 4;

export function shortIdOf(jobId: string): string {
  return jobId.slice(-SHORT_ID_LENGTH);
}

/** When the job was submitted: its id's embedded time, in ms since the epoch. */
export function submittedAtOf(jobId: string): number {
  return parseInt(jobId.replace(/-/g, '').slice(0, 12), 16);
}

/** The least job id of a millisecond: "submitted at or after" is a range of ids. */
export function firstIdAt(time: Date): string {
  const hex = Math.max(0, Math.min(time.getTime(), 2 ** 48 - 1)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
}
