// What to do when what a node holds and what Postgres says disagree: on every
// (re)connect (the agent's hello) and continuously after it (its first heartbeat
// after each read of Postgres, see node-reconciler.ts). Pure, so every case is
// tested without servers.
import { attemptKeyOf as keyOf, type AttemptRef } from '../common/attempt.js';
import { JobState } from '../common/gen/grid/v1/job.js';

/** An attempt Postgres says the node should be running. */
export interface ActiveAttempt extends AttemptRef {
  state: JobState;
}

/** An attempt this control plane counts against the node's capacity. */
export interface CountedAttempt extends AttemptRef {
  /** When it was counted (performance.now()). */
  since: number;
  /** Whether this session has sent the node a cancel for it. */
  cancelSent: boolean;
}

export interface NodeView {
  /** The node's active attempts as Postgres had them, read at `takenAt`. */
  active: ActiveAttempt[];
  /**
   * What the agent says it holds (running, or with a report not yet
   * acknowledged). On a connect, its hello. Continuously, a heartbeat that
   * arrived after the read of `active` had completed: it travels on the same
   * ordered stream as the agent's reports, so it came after the start report of
   * any attempt the read shows started on this stream, and the agent holds such
   * an attempt until its end is acknowledged. (An end committed after the read
   * makes a `lose` of it a no-op: losing is a compare-and-set on the current state.)
   */
  held: AttemptRef[];
  /** What this session counts against the node. */
  counted: CountedAttempt[];
  /**
   * Attempts whose end the agent reported on this session: it holds each until
   * the acknowledgement reaches it, so a heartbeat that crossed that ack still
   * lists it. Not stale; nothing to kill.
   */
  reportedEnded?: AttemptRef[];
  /**
   * Attempts this session stopped counting at or after `takenAt`: their end (or
   * loss) was committed after the read, so an ASSIGNED one among them was
   * sent, and ran; not one to send again.
   */
  releasedSince?: AttemptRef[];
  /** When the read of `active` was sent (performance.now()): an attempt counted since may be missing from it. */
  takenAt: number;
}

export interface Reconciliation {
  /** Current attempts the agent holds: they count against its capacity. */
  keep: ActiveAttempt[];
  /**
   * Assigned but unknown to the agent, and not sent on this session: the claim's
   * answer was lost (or it was made before this stream); send it. One sent on
   * this session is never resent: the stream is ordered and reliable, and the
   * heartbeat may simply have left the agent before the assignment arrived.
   */
  resend: ActiveAttempt[];
  /** Running (or cancelling) but unknown to the agent: its container is gone; the attempt is lost. */
  lose: ActiveAttempt[];
  /** Held by the agent but no longer current: kill the container (fencing). */
  kill: AttemptRef[];
  /** Cancelling, held by the agent, and no cancel sent on this session yet: send it. */
  cancel: ActiveAttempt[];
  /** Counted here but no longer active (ended or moved on elsewhere): free its capacity. */
  release: CountedAttempt[];
}

export function reconcile(view: NodeView): Reconciliation {
  const held = new Set(view.held.map(keyOf));
  const active = new Set(view.active.map(keyOf));
  const counted = new Map(view.counted.map((c) => [keyOf(c), c]));
  const released = new Set((view.releasedSince ?? []).map(keyOf));
  const result: Reconciliation = { keep: [], resend: [], lose: [], kill: [], cancel: [], release: [] };
  for (const a of view.active) {
    if (held.has(keyOf(a))) {
      result.keep.push(a);
      if (a.state === JobState.JOB_STATE_CANCELLING && !counted.get(keyOf(a))?.cancelSent) result.cancel.push(a);
    } else if (a.state === JobState.JOB_STATE_ASSIGNED) {
      if (!counted.has(keyOf(a)) && !released.has(keyOf(a))) result.resend.push(a);
    } else result.lose.push(a);
  }
  // Counted since the read: a claim newer than what Postgres showed, not a stale one.
  const newer = (a: AttemptRef) => (counted.get(keyOf(a))?.since ?? -Infinity) >= view.takenAt;
  const ended = new Set((view.reportedEnded ?? []).map(keyOf));
  for (const h of view.held) if (!active.has(keyOf(h)) && !newer(h) && !ended.has(keyOf(h))) result.kill.push(h);
  for (const c of view.counted) if (!active.has(keyOf(c)) && !newer(c)) result.release.push(c);
  return result;
}
