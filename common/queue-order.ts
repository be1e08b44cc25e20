// The order in which queued jobs are taken, pure: by priority with ageing.
// A job of priority p is placed in the queue as if submitted p ageing steps
// earlier, so higher priorities run first, equal ones stay in submit order,
// and a low-priority job is passed only by jobs submitted less than
// (their priority - its priority) steps after it: it never starves. One
// static key per job (jobs.queue_key, indexed) keeps the claim an index range
// scan, with no sweep rewriting priorities as jobs wait.

/** What one level of priority is worth in waiting time. */
export const AGEING_STEP_MS = 30_000;
export const MIN_PRIORITY = -100;
export const MAX_PRIORITY = 100;

/** The job's place in the queue: earlier is taken first (ties: submit order). */
export function queueKey(submittedAt: Date, priority: number): Date {
  return new Date(submittedAt.getTime() - priority * AGEING_STEP_MS);
}
