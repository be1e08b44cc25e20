// Why a queued job waits, in words a person can act on. Pure: the job's size
// and the fleet as PostgreSQL records it, read by the caller.
import { formatBytes } from '../common/units.js';

export interface FleetSummary {
  /** Capacity of each READY node open to work (not drained). */
  ready: { cpus: number; memoryBytes: number }[];
  /** READY nodes an operator drained. */
  draining: number;
  disconnected: number;
  lost: number;
}

export function waitingReason(job: { cpus: number; memoryBytes: number }, fleet: FleetSummary): string {
  if (fleet.ready.length === 0) {
    const away = [
      fleet.draining ? `${fleet.draining} draining` : '',
      fleet.disconnected ? `${fleet.disconnected} disconnected` : '',
      fleet.lost ? `${fleet.lost} lost` : '',
    ].filter(Boolean).join(', ');
    return away ? `no ready node: ${away}` : 'no node has connected yet';
  }
  const fits = fleet.ready.filter((n) => n.cpus >= job.cpus && n.memoryBytes >= job.memoryBytes).length;
  if (fits > 0) return `waiting for room: ${fits} ready node${fits === 1 ? '' : 's'} can run it, all busy`;
  const cpus = Math.max(...fleet.ready.map((n) => n.cpus));
  const memory = Math.max(...fleet.ready.map((n) => n.memoryBytes));
  if (job.cpus > cpus) return `needs ${job.cpus} CPU; the largest ready node has ${cpus}`;
  if (job.memoryBytes > memory) return `needs ${formatBytes(job.memoryBytes)} of memory; the largest ready node has ${formatBytes(memory)}`;
  return `needs ${job.cpus} CPU and ${formatBytes(job.memoryBytes)} together; no ready node has both`;
}
