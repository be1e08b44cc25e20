// The scheduling choice, pure: which queued job goes to which node. Spreading
// (emptiest node first) keeps hosts evenly loaded and lets a burst use every
// node at once instead of filling one before touching the next.
import type { FreeCapacity } from './node-session.js';

export interface NodeOffer {
  nodeId: string;
  /** What is free on the node now. */
  free: FreeCapacity;
  /** The whole node: a job larger than this can never run on it. */
  size: { cpus: number; memoryBytes: number };
}

export interface QueuedJob {
  id: string;
  cpus: number;
  memory_bytes: number;
}

export interface Placement {
  id: string;
  nodeId: string;
}

export interface Placements {
  placed: Placement[];
  /** Some job fits a node but not what is free on it now: it waits, holding its place. */
  waiting: boolean;
}

// CPUs are fractional: a sum like 0.1 + 0.2 must still fit 0.3.
const EPSILON = 1e-9;

function fits(job: QueuedJob, room: { cpus: number; memoryBytes: number }): boolean {
  return job.cpus <= room.cpus + EPSILON && job.memory_bytes <= room.memoryBytes;
}

/** More free slots, then more free memory, then the lower id: a stable spread. */
function roomier(a: { nodeId: string; free: FreeCapacity }, b: { nodeId: string; free: FreeCapacity }): boolean {
  if (a.free.slots !== b.free.slots) return a.free.slots > b.free.slots;
  if (a.free.memoryBytes !== b.free.memoryBytes) return a.free.memoryBytes > b.free.memoryBytes;
  return a.nodeId < b.nodeId;
}

/**
 * Places jobs (oldest first) on nodes, each on the emptiest node it fits now,
 * never overcommitting a node's slots, CPUs or memory. A job no offered node
 * could hold even empty is passed over: it must not hold back the jobs behind
 * it. A job that fits some node but not what is free there now waits its turn:
 * the nodes that could hold it take no later job this pass, so a stream of
 * small jobs does not starve it; nodes too small for it go on taking others.
 */
export function placeJobs(jobs: QueuedJob[], offers: NodeOffer[]): Placements {
  const nodes = offers.map((o) => ({ nodeId: o.nodeId, size: o.size, free: { ...o.free }, closed: false }));
  const placed: Placement[] = [];
  let waiting = false;
  for (const job of jobs) {
    let best: (typeof nodes)[number] | undefined;
    for (const n of nodes) {
      if (n.closed || n.free.slots <= 0 || !fits(job, n.free)) continue;
      if (!best || roomier(n, best)) best = n;
    }
    if (best) {
      best.free.slots -= 1;
      best.free.cpus -= job.cpus;
      best.free.memoryBytes -= job.memory_bytes;
      placed.push({ id: job.id, nodeId: best.nodeId });
      continue;
    }
    for (const n of nodes) {
      if (!fits(job, n.size)) continue;
      n.closed = true;
      waiting = true;
    }
    if (nodes.every((n) => n.closed || n.free.slots <= 0)) break;
  }
  return { placed, waiting };
}
