// Submit → assigned (claimed for a node, Postgres clock) and submit → container
// started (the agent's clock, same host), one job at a time on an idle node, so
// each figure is the path's own latency, not queueing.
import { BUSYBOX, commandSpec } from '../test/helpers/grid.js';
import { isTerminal } from '../common/job-state.js';
import type { Stack } from './stack.js';

export async function dispatchLatency(stack: Stack, jobs: number): Promise<{ assigned: number[]; started: number[] }> {
  const assigned: number[] = [];
  const started: number[] = [];
  for (let i = 0; i < jobs; i++) {
    const { job } = await stack.api.jobs.submitJob({ spec: commandSpec(['true'], { image: BUSYBOX }), requestId: '' });
    let ended;
    for await (const { event } of stack.api.jobs.watchJob({ jobId: job!.id, includeLogs: false, includeProgress: false, stdoutOffset: 0n, stderrOffset: 0n, attempt: 0 })) {
      if (event?.$case === 'ended') ended = event.value;
    }
    if (!ended || !isTerminal(ended.state) || !ended.assignedAt || !ended.startedAt) throw new Error(`job ${job!.id} did not run`);
    assigned.push(ended.assignedAt.getTime() - ended.submittedAt!.getTime());
    started.push(ended.startedAt.getTime() - ended.submittedAt!.getTime());
  }
  return { assigned, started };
}
