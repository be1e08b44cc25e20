// The scheduling choice, pure: in which order nodes are offered queued work.
// Spreading (emptiest node first) keeps hosts evenly loaded and lets a burst use
// every node at once instead of filling one before touching the next.
import type { FreeCapacity } from './node-registry.js';

export interface NodeOffer {
  nodeId: string;
  free: FreeCapacity;
}

/** Nodes that can take at least one more job, emptiest first; ties by id for stable order. */
export function dispatchOrder(offers: NodeOffer[]): NodeOffer[] {
  return offers
    .filter((o) => o.free.slots > 0 && o.free.cpus > 0 && o.free.memoryBytes > 0)
    .sort(
      (a, b) =>
        b.free.slots - a.free.slots ||
        b.free.memoryBytes - a.free.memoryBytes ||
        (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0),
    );
}
