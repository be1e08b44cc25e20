// The scheduling choice, pure: which queued job goes to which node. A job
// goes only to a node whose labels satisfy its constraints; among those with
// room now, one matching more of its affinities wins, then the operator's
// strategy decides. Spreading (emptiest node first, the default) keeps small
// hosts evenly loaded and lets a burst use every node at once; packing
// (fullest node that still fits first) keeps whole nodes free for big jobs.
import { affinityScore, satisfies, type LabelConstraint, type Labels } from '../common/label-constraints.js';
import type { FreeCapacity } from './node-session.js';

export type PlacementStrategy = 'spread' | 'pack';
export const PLACEMENT_STRATEGIES: readonly PlacementStrategy[] = ['spread', 'pack'];

export interface NodeOffer {
  nodeId: string;
  /** What is free on the node now. */
  free: FreeCapacity;
  /** The whole node: a job larger than this can never run on it. */
  size: { cpus: number; memoryBytes: number };
  /** The node's labels (none: {}). */
  labels?: Labels;
}

export interface QueuedJob {
  id: string;
  cpus: number;
  memory_bytes: number;
  /** Labels a node must have (none: any node). */
  constraints?: readonly LabelConstraint[];
  /** Labels it prefers. */
  affinities?: readonly LabelConstraint[];
  /** Who submitted it (submitter-context.ts): what the per-submitter cap counts by. */
  submitter?: string;
}

/** The per-submitter cap on running jobs, and what each submitter runs now (active jobs). */
export interface RunningCap {
  perSubmitter: number;
  running: ReadonlyMap<string, number>;
}

export interface Placement {
  id: string;
  nodeId: string;
}

export interface Placements {
  placed: Placement[];
  /** Some job fits a node but not what is free on it now: it waits, holding its place. */
  waiting: boolean;
  /** Some job was passed over because its submitter is at its cap. */
  capped: boolean;
}

// CPUs are fractional: a sum like 0.1 + 0.2 must still fit 0.3.
const EPSILON = 1e-9;

function fits(job: QueuedJob, room: { cpus: number; memoryBytes: number }): boolean {
  return job.cpus <= room.cpus + EPSILON && job.memory_bytes <= room.memoryBytes;
}

type Candidate = { nodeId: string; free: FreeCapacity; score: number };

/**
 * Whether `a` is the better node: more of the job's affinities, then by the
 * strategy — spread: more free slots, then more free memory; pack: fewer free
 * slots, then less free memory —, then the lower id, so the choice is stable.
 */
function better(a: Candidate, b: Candidate, strategy: PlacementStrategy): boolean {
  if (a.score !== b.score) return a.score > b.score;
  const sign = strategy === 'spread' ? 1 : -1;
  if (a.free.slots !== b.free.slots) return sign * (a.free.slots - b.free.slots) > 0;
  if (a.free.memoryBytes !== b.free.memoryBytes) return sign * (a.free.memoryBytes - b.free.memoryBytes) > 0;
  return a.nodeId < b.nodeId;
}

/** Whether the node could ever run the job: its labels and its whole size. */
function eligible(job: QueuedJob, node: { size: NodeOffer['size']; labels: Labels }): boolean {
  return fits(job, node.size) && satisfies(node.labels, job.constraints ?? []);
}

/**
 * Places jobs (in queue order) on nodes, each on the best node it may run on
 * and fits now (see better), never overcommitting a node's slots, CPUs or
 * memory. A job no offered node could ever run (too small, or without the
 * labels it needs) is passed over: it must not hold back the jobs behind it. A
 * job that some node could run but not with what is free there now waits its
 * turn: the nodes that could run it take no later job this pass, so a stream
 * of small or unconstrained jobs does not starve it; the other nodes go on
 * taking others. With a `cap`, a job whose submitter already runs
 * cap.perSubmitter jobs (those it ran before this pass, and those this pass
 * gave it) is passed over too, holding no node: the others' jobs take the room.
 */
export function placeJobs(
  jobs: QueuedJob[],
  offers: NodeOffer[],
  strategy: PlacementStrategy = 'spread',
  cap?: RunningCap,
): Placements {
  const nodes = offers.map((o) => ({ nodeId: o.nodeId, size: o.size, labels: o.labels ?? {}, free: { ...o.free }, closed: false, score: 0 }));
  const placed: Placement[] = [];
  const running = new Map(cap?.running);
  let waiting = false;
  let capped = false;
  for (const job of jobs) {
    const submitter = job.submitter ?? '';
    if (cap && (running.get(submitter) ?? 0) >= cap.perSubmitter) {
      capped = true;
      continue;
    }
    let best: (typeof nodes)[number] | undefined;
    for (const n of nodes) {
      if (n.closed || n.free.slots <= 0 || !fits(job, n.free) || !satisfies(n.labels, job.constraints ?? [])) continue;
      n.score = job.affinities?.length ? affinityScore(n.labels, job.affinities) : 0;
      if (!best || better(n, best, strategy)) best = n;
    }
    if (best) {
      if (cap) running.set(submitter, (running.get(submitter) ?? 0) + 1);
      best.free.slots -= 1;
      best.free.cpus -= job.cpus;
      best.free.memoryBytes -= job.memory_bytes;
      placed.push({ id: job.id, nodeId: best.nodeId });
      continue;
    }
    for (const n of nodes) {
      if (!eligible(job, n)) continue;
      n.closed = true;
      waiting = true;
    }
    if (nodes.every((n) => n.closed || n.free.slots <= 0)) break;
  }
  return { placed, waiting, capped };
}
