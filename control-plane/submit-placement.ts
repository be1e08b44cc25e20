// Placement at submit: a job that a live node here can take now need not wait
// in the queue for a dispatch pass (its insert, a NOTIFY, a read of the queue's
// head and a claim: four round trips). The submit's own insert stores it
// ASSIGNED to the node (sql/insert-jobs.ts), if nothing a connected node could
// run is queued as that statement reads it, so no job that waits for such a
// node is passed. The room it takes is held
// on the node before the insert, as a claim's would be after it: a dispatch
// pass meanwhile sees it taken, and so does another placement (a node with
// only placements in flight is offered). A node with a claim in flight is not
// offered: that claim's room is not held until it answers. The
// job-transition owner delivers what was stored ASSIGNED. While any job is
// queued that some connected node can hold, every submit is queued: the insert
// only knows the queue's depth (less the jobs marked unfit, note-waiting.ts),
// and the claim alone decides what may pass what.
// The reconciler frees no counted room while such an insert is in flight
// (NodeSession.claimsSettledBefore), since its read may not show the job yet.
import type { Task } from '../common/gen/grid/v1/agent.js';
import type { JobSpec } from '../common/gen/grid/v1/job.js';
import type { NodeRegistry } from './node-registry.js';
import type { NodeSession } from './node-session.js';
import { placeJobs, type PlacementStrategy } from './scheduler.js';

export interface SubmitPlacement {
  /** Job id → node id, for the insert. */
  readonly nodeOf: ReadonlyMap<string, string>;
  readonly sessions: readonly NodeSession[];
  /** Lets go of every hold (the insert answered, or failed); each session's claim is settled. */
  release(): void;
}

/** Places what fits the live nodes' free room now, holding it; undefined when nothing fits. */
export function placeOnArrival(
  registry: NodeRegistry,
  jobs: { id: string; task: Task; spec: JobSpec }[],
  strategy?: PlacementStrategy,
): SubmitPlacement | undefined {
  const live = registry.schedulable().filter((s) => !s.roomUndecided && s.freeCapacity().slots > 0);
  if (live.length === 0) return undefined;
  const offers = live.map((s) => ({ nodeId: s.nodeId, free: s.freeCapacity(), size: s.size(), labels: s.labels }));
  // A job not due yet waits in the queue (the claim starts it when it is due).
  const due = jobs.filter((j) => !(j.spec.notBefore && j.spec.notBefore.getTime() > Date.now()));
  const { placed } = placeJobs(
    due.map((j) => ({
      id: j.id,
      cpus: j.task.cpus,
      memory_bytes: Number(j.task.memoryBytes),
      constraints: j.spec.constraints,
      affinities: j.spec.affinities,
    })),
    offers,
    strategy,
  );
  if (placed.length === 0) return undefined;
  const byNode = new Map(live.map((s) => [s.nodeId, s]));
  const tasks = new Map(jobs.map((j) => [j.id, j.task]));
  const sessions = [...new Set(placed.map((p) => byNode.get(p.nodeId)!))];
  // A claim in flight for the node: the reconciler must not take the job that
  // Postgres may already show ASSIGNED, and the agent not yet have, for a lost one.
  for (const s of sessions) s.claimStarted(true);
  for (const p of placed) byNode.get(p.nodeId)!.hold({ jobId: p.id, attempt: 1 }, tasks.get(p.id)!);
  let released = false;
  return {
    nodeOf: new Map(placed.map((p) => [p.id, p.nodeId])),
    sessions,
    release() {
      if (released) return;
      released = true;
      for (const p of placed) byNode.get(p.nodeId)!.release({ jobId: p.id, attempt: 1 });
      for (const s of sessions) s.claimSettled(true);
    },
  };
}
