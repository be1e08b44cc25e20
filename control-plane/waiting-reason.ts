// Why a queued job waits, in words a person can act on. Pure: the job's size
// and label constraints, and the fleet as PostgreSQL records it, read by the caller.
import { formatConstraint, holds, satisfies, type LabelConstraint, type Labels } from '../common/label-constraints.js';
import { formatBytes } from '../common/units.js';

export interface FleetSummary {
  /** Capacity and labels of each READY node open to work (not drained). */
  ready: { cpus: number; memoryBytes: number; labels?: Labels }[];
  /** READY nodes an operator drained. */
  draining: number;
  disconnected: number;
  lost: number;
}

export function waitingReason(job: { cpus: number; memoryBytes: number; constraints?: readonly LabelConstraint[] }, fleet: FleetSummary): string {
  if (fleet.ready.length === 0) {
    const away = [
      fleet.draining ? `${fleet.draining} draining` : '',
      fleet.disconnected ? `${fleet.disconnected} disconnected` : '',
      fleet.lost ? `${fleet.lost} lost` : '',
    ].filter(Boolean).join(', ');
    return away ? `no ready node: ${away}` : 'no node has connected yet';
  }
  const constraints = job.constraints ?? [];
  const labelled = fleet.ready.filter((n) => satisfies(n.labels ?? {}, constraints));
  const fits = labelled.filter((n) => n.cpus >= job.cpus && n.memoryBytes >= job.memoryBytes).length;
  if (fits > 0) return `waiting for room: ${fits} ready node${fits === 1 ? '' : 's'} can run it, all busy`;
  const ready = `${fleet.ready.length} ready node${fleet.ready.length === 1 ? '' : 's'}`;
  if (labelled.length === 0) {
    const unmet = constraints.find((c) => !fleet.ready.some((n) => holds(n.labels ?? {}, c)));
    if (unmet) return `needs a node with ${formatConstraint(unmet)}; none of the ${ready} has it (agent --labels)`;
    return `needs a node with ${constraints.map(formatConstraint).join(' and ')} together; none of the ${ready} has all of them`;
  }
  const among = labelled.length === fleet.ready.length ? 'ready node' : `ready node with ${constraints.map(formatConstraint).join(', ')}`;
  const cpus = Math.max(...labelled.map((n) => n.cpus));
  const memory = Math.max(...labelled.map((n) => n.memoryBytes));
  if (job.cpus > cpus) return `needs ${job.cpus} CPU; the largest ${among} has ${cpus}`;
  if (job.memoryBytes > memory) return `needs ${formatBytes(job.memoryBytes)} of memory; the largest ${among} has ${formatBytes(memory)}`;
  return `needs ${job.cpus} CPU and ${formatBytes(job.memoryBytes)} together; no ${among} has both`;
}
