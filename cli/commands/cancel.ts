// gridctl cancel: ask a job to stop; with --wait, follow it to its end.
import { isTerminal, stateName } from '../../common/job-state.js';
import { msToDuration } from '../../common/units.js';
import { callOptions, type GridClients } from '../client.js';
import { exitCodeFor } from '../exit-codes.js';
import { followJob } from '../follow.js';

export async function cancelCommand(
  clients: GridClients,
  jobId: string,
  options: { grace?: number; wait?: boolean },
): Promise<number> {
  const { job } = await clients.jobs.cancelJob(
    { jobId, grace: options.grace === undefined ? undefined : msToDuration(options.grace) },
    callOptions(),
  );
  process.stderr.write(`job ${job!.id} is ${stateName(job!.state)}\n`);
  if (!options.wait) return 0;
  const final = isTerminal(job!.state) ? job! : await followJob(clients, jobId, { reachable: true, includeLogs: false, stdout: false, stderr: false });
  if (final !== job) process.stderr.write(`job ${final.id} ended ${stateName(final.state)}\n`);
  return exitCodeFor(final);
}
