// Retries on failure (spec.retries), pure: how long a job waits before its
// next attempt. Exponential back-off with jitter: the k-th retry waits between
// half of and the whole of base × 2^(k-1), capped at MAX_RETRY_DELAY_MS, so
// many jobs that failed together (a dependency down) do not all come back in
// the same instant. The finish statement (control-plane/sql/finish-attempts.ts)
// draws the delay in SQL, within the bounds retryDelayBounds states.
export const DEFAULT_RETRY_BACKOFF_MS = 1000;
export const MAX_RETRY_DELAY_MS = 10 * 60_000;
export const MAX_RETRIES = 100;

/** The least and most the retry after `retriesUsed` earlier ones waits, in ms. */
export function retryDelayBounds(backoffMs: number, retriesUsed: number): { min: number; max: number } {
  const max = Math.min(backoffMs * 2 ** retriesUsed, MAX_RETRY_DELAY_MS);
  return { min: max / 2, max };
}
