// Cancel → container gone: a running job that ignores SIGTERM is cancelled
// with --grace 0s; measured until Docker no longer knows the container, and until
// the job reads CANCELLED.
import Docker from 'dockerode';
import { JobState } from '../common/gen/grid/v1/job.js';
import { BUSYBOX, commandSpec, sleep, waitForJob } from '../test/helpers/grid.js';
import type { Stack } from './stack.js';

export async function cancelLatency(stack: Stack, jobs: number): Promise<{ gone: number[]; cancelled: number[] }> {
  const docker = new Docker({ socketPath: '/var/run/docker.sock' });
  const gone: number[] = [];
  const cancelled: number[] = [];
  for (let i = 0; i < jobs; i++) {
    const { job } = await stack.api.jobs.submitJob({ spec: commandSpec(['sh', '-c', 'trap "" TERM; while :; do :; done'], { image: BUSYBOX }), requestId: '' });
    await waitForJob(stack.api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'running');
    const container = docker.getContainer(`grid-${job!.id}-1`);
    const from = performance.now();
    await stack.api.jobs.cancelJob({ jobId: job!.id, grace: { seconds: 0n, nanos: 0 } });
    let ended = false;
    let goneAt: number | undefined;
    while (goneAt === undefined || !ended) {
      // A figure only from a cancel that worked; one that never does fails the scenario, not hangs it.
      if (performance.now() - from > 30_000) throw new Error(`job ${job!.id} was not CANCELLED with its container gone 30 s after the cancel`);
      if (goneAt === undefined) {
        const info = await container.inspect().catch(() => undefined);
        if (!info || !info.State.Running) goneAt = performance.now() - from;
      }
      if (!ended && (await stack.api.jobs.getJob({ jobId: job!.id })).job!.state === JobState.JOB_STATE_CANCELLED) {
        ended = true;
        cancelled.push(performance.now() - from);
      }
      await sleep(5);
    }
    gone.push(goneAt);
  }
  return { gone, cancelled };
}
