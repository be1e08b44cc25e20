// gridctl cancel: ask a job to stop; with --wait, follow it to its end.
import { isTerminal, stateName } from '../../common/job-state.js';
import { msToDuration } from '../../common/units.js';
import type { Job } from '../../common/gen/grid/v1/job.js';
import { callOptions, describeError, type GridClients } from '../client.js';
import { EXIT_GRID_ERROR, exitCodeFor } from '../exit-codes.js';
import { followJob } from '../follow.js';

/**
 * Cancels each job named; with --wait, follows them all to their ends and
 * exits with the last one's code (one job: its own). A job that cannot be
 * cancelled (unknown, ambiguous) is reported and the rest still are.
 */
export async function cancelCommand(
  clients: GridClients,
  jobIds: string[],
  options: { grace?: number; wait?: boolean },
): Promise<number> {
  const grace = options.grace === undefined ? undefined : msToDuration(options.grace);
  const cancelled: Job[] = [];
  let failed = 0;
  for (const jobId of jobIds) {
    try {
      const { job } = await clients.jobs.cancelJob({ jobId, grace }, callOptions());
      process.stderr.write(`job ${job!.id} is ${stateName(job!.state)}\n`);
      cancelled.push(job!);
    } catch (err) {
      if (jobIds.length === 1) throw err;
      process.stderr.write(`gridctl: ${jobId}: ${describeError(err, clients.server)}\n`);
      failed++;
    }
  }
  let code = failed > 0 ? EXIT_GRID_ERROR : 0;
  if (!options.wait) return code;
  for (const job of cancelled) {
    const final = isTerminal(job.state) ? job : await followJob(clients, job.id, { reachable: true, includeLogs: false, stdout: false, stderr: false });
    if (final !== job) process.stderr.write(`job ${final.id} ended ${stateName(final.state)}\n`);
    if (failed === 0) code = exitCodeFor(final);
  }
  return code;
}
