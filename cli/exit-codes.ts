// gridctl's exit codes. For a job that ran, its own exit code; otherwise one code
// per way a job can end without one, in the spirit of timeout(1)'s 124.
import { EndReason, type Job } from '../common/gen/grid/v1/job.js';

/** gridctl itself failed: bad usage, control plane unreachable, request refused. */
export const EXIT_GRID_ERROR = 125;

const BY_REASON: Partial<Record<EndReason, number>> = {
  [EndReason.END_REASON_CANCELLED]: 130,
  [EndReason.END_REASON_TIMED_OUT]: 124,
  [EndReason.END_REASON_QUEUE_TIMEOUT]: 123,
  [EndReason.END_REASON_NODE_LOST]: 122,
  [EndReason.END_REASON_IMAGE_UNAVAILABLE]: 121,
  [EndReason.END_REASON_START_FAILED]: 126,
  [EndReason.END_REASON_OOM_KILLED]: 137,
};

export function exitCodeFor(job: Job): number {
  if (job.endReason === EndReason.END_REASON_SUCCEEDED) return 0;
  if (job.endReason === EndReason.END_REASON_FAILED) return job.exitCode ?? 1;
  return BY_REASON[job.endReason] ?? 1;
}

export const EXIT_CODE_HELP = `
Exit codes (run, logs -f, cancel --wait): the job's own exit code when it ran to the end;
  130 cancelled, 124 timed out, 123 queue timeout, 122 node lost, 121 image unavailable,
  126 could not start, 137 killed for memory, 125 gridctl could not do what was asked (a usage error too).`;
