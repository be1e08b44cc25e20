// gridctl --watch against a running Grid: piped, a new frame only when the
// output changed, until Ctrl-C, which ends it with 0.
import test from 'ava';
import { spawn } from 'node:child_process';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { BIN, commandSpec, useGrid, waitForJob } from '../helpers/grid.js';

const grid = useGrid(test, { nodeId: `watch-node-${process.pid}` });

test('status --watch shows the job running, then ended, each change once; Ctrl-C exits 0', async (t) => {
  const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['sleep', '3']), requestId: '' });
  await waitForJob(grid.api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs');
  const child = spawn(process.execPath, [BIN.gridctl, '-s', grid.cp.address, 'status', '--watch', job!.id], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!/State:\s+SUCCEEDED/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  // Two more intervals with nothing changing: no frame is printed again.
  await new Promise((r) => setTimeout(r, 4500));
  child.kill('SIGINT');
  t.is(await exited, 0);
  t.log(out);
  const frames = out.split(/\n(?=Job:)/).filter((f) => f.trim());
  t.regex(frames[0]!, /State:\s+RUNNING/);
  t.regex(frames.at(-1)!, /State:\s+SUCCEEDED/);
  t.is(frames.filter((f) => /SUCCEEDED/.test(f)).length, 1, 'the ended job is shown once, not every interval');
  t.false(out.includes('\x1b'), 'piped: no screen clearing');
});
