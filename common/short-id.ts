// A job's short id: the last 12 hex digits of its UUIDv7, which are random.
// Its first characters tell jobs apart (a UUIDv7's first ones are a timestamp,
// shared by every job of the same millisecond), so people type a few of them.
export const SHORT_ID_LENGTH = 12;
/** The fewest characters a prefix may have: fewer would match a good share of any history. */
export const MIN_PREFIX = 4;

export function shortIdOf(jobId: string): string {
  return jobId.slice(-SHORT_ID_LENGTH);
}
