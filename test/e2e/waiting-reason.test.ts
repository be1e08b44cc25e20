// A queued job says why it waits: in GetJob, in gridctl status, and on the
// terminal of a gridctl run that follows it (on a pty, through script(1)).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { BIN, commandSpec, gridctl, useGrid, waitForJob } from '../helpers/grid.js';

const grid = useGrid(test, { nodeId: 'small-node', agentArgs: ['--cpus', '1', '--slots', '1'] });

test.serial('a job too big for every node: "needs 2 CPU; the largest ready node has 1"', async (t) => {
  const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['true'], { resources: { cpus: 2, memoryBytes: 0n } }), requestId: '' });
  const queued = await waitForJob(grid.api, job!.id, (j) => j.state === JobState.JOB_STATE_QUEUED && j.waitingReason !== '', 'a reason');
  t.is(queued.waitingReason, 'needs 2 CPU; the largest ready node has 1');
  const status = await gridctl(grid.cp.address, ['status', job!.id]);
  t.regex(status.stdout.toString(), /Reason:\s+needs 2 CPU; the largest ready node has 1/);
  await grid.api.jobs.cancelJob({ jobId: job!.id, grace: undefined });
});

test.serial('gridctl run on a terminal shows why its job waits, then its output', async (t) => {
  // A job that holds the only slot, then one that waits for it.
  const { job: blocker } = await grid.api.jobs.submitJob({ spec: commandSpec(['sleep', '3']), requestId: '' });
  await waitForJob(grid.api, blocker!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the blocker runs');
  const command = [process.execPath, BIN.gridctl, '-s', grid.cp.address, 'run', '--', 'echo', 'finally'].map((a) => `'${a}'`).join(' ');
  const screen = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } }).stdout;
  t.log(screen);
  t.regex(screen, /grid: job \S+ queued: waiting for room: 1 ready node can run it, all busy[\s\S]*grid: job \S+ running on small-node[\s\S]*finally/);
});

test.serial('a tmux session: the spinner with its reason while the job waits, then its output and the final line', async (t) => {
  const { job: blocker } = await grid.api.jobs.submitJob({ spec: commandSpec(['sleep', '4']), requestId: '' });
  await waitForJob(grid.api, blocker!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the blocker runs');
  const session = `grid-test-${process.pid}`;
  const command = [process.execPath, BIN.gridctl, '-s', grid.cp.address, 'run', '--', 'sh', '-c', 'echo finally; sleep 1'].map((a) => `'${a}'`).join(' ');
  const tmux = (...args: string[]) => spawnSync('tmux', args, { encoding: 'utf8' });
  t.is(tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '20', `${command}; sleep 30`).status, 0);
  const screens: string[] = [];
  try {
    for (const until = Date.now() + 30_000; Date.now() < until; ) {
      const screen = tmux('capture-pane', '-p', '-t', session).stdout.trimEnd();
      if (screens.at(-1) !== screen) screens.push(screen);
      if (/succeeded/.test(screen)) break;
      await new Promise((r) => setTimeout(r, 150));
    }
  } finally {
    tmux('kill-session', '-t', session);
  }
  t.log(`${screens.length} screens; while waiting:\n${screens.find((s) => /queued for/.test(s)) ?? '(none)'}\nat the end:\n${screens.at(-1)}`);
  t.true(screens.some((s) => /grid: [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] queued for \ds: waiting for room: 1 ready node can run it, all busy/.test(s)), 'the spinner and the reason');
  t.regex(screens.at(-1)!, /grid: waited \d+\.\ds to start \(waiting for room[^)]*\)\ngrid: job \S+ running on small-node \(attempt 1\)\nfinally\ngrid: job \S+ succeeded/);
});
