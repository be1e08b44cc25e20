// What to do when an agent (re)connects and says which attempts it holds, given
// what Postgres says the node should be running. Pure, so every case is tested
// without servers.
import { JobState } from '../common/gen/grid/v1/job.js';

export interface ActiveAttempt {
  jobId: string;
  attempt: number;
  state: JobState;
}

export interface HeldAttempt {
  jobId: string;
  attempt: number;
}

export interface Reconciliation {
  /** Current attempts the agent holds: they count against its capacity. */
  keep: ActiveAttempt[];
  /** Assigned but unknown to the agent: the assignment was lost in flight; send it again. */
  resend: ActiveAttempt[];
  /** Running (or cancelling) but unknown to the agent: its container is gone; the attempt is lost. */
  lose: ActiveAttempt[];
  /** Held by the agent but no longer current: kill the container (fencing). */
  kill: HeldAttempt[];
}

export function reconcile(active: ActiveAttempt[], held: HeldAttempt[]): Reconciliation {
  const heldKeys = new Set(held.map((h) => `${h.jobId}/${h.attempt}`));
  const activeKeys = new Set(active.map((a) => `${a.jobId}/${a.attempt}`));
  const result: Reconciliation = { keep: [], resend: [], lose: [], kill: [] };
  for (const a of active) {
    if (heldKeys.has(`${a.jobId}/${a.attempt}`)) result.keep.push(a);
    else if (a.state === JobState.JOB_STATE_ASSIGNED) result.resend.push(a);
    else result.lose.push(a);
  }
  for (const h of held) if (!activeKeys.has(`${h.jobId}/${h.attempt}`)) result.kill.push(h);
  return result;
}
