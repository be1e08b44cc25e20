// Print → follower: a job prints its clock 10 times a second; a WatchJob
// follower notes when each line arrives. Same host, same clock.
import { PYTHON, commandSpec } from '../test/helpers/grid.js';
import type { Stack } from './stack.js';

export async function logLatency(stack: Stack, lines: number): Promise<number[]> {
  const script = `import time\nfor i in range(${lines}):\n    print(repr(time.time()), flush=True)\n    time.sleep(0.1)`;
  const { job } = await stack.api.jobs.submitJob({ spec: commandSpec(['python3', '-u', '-c', script], { image: PYTHON }), requestId: '' });
  const latencies: number[] = [];
  let partial = '';
  for await (const { event } of stack.api.jobs.watchJob({ jobId: job!.id, includeLogs: true, includeProgress: false, stdoutOffset: 0n, stderrOffset: 0n, attempt: 0 })) {
    if (event?.$case !== 'log') continue;
    const now = Date.now() / 1000;
    partial += Buffer.from(event.value.data).toString();
    const complete = partial.split('\n');
    partial = complete.pop()!;
    for (const line of complete) latencies.push((now - Number(line)) * 1000);
  }
  if (latencies.length !== lines) throw new Error(`got ${latencies.length} of ${lines} lines`);
  return latencies;
}
