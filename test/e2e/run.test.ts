// gridctl run end to end: real control plane and agent processes, real
// Postgres, real Docker containers.
import test from 'ava';
import Docker from 'dockerode';
import { JobState, EndReason } from '../../common/gen/grid/v1/job.js';
import { isTerminal } from '../../common/job-state.js';
import {
  commandSpec,
  gridctl,
  jobWhenEnded,
  sleep,
  storedLogs,
  waitForJob,
  workdir,
  useGrid,
} from '../helpers/grid.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const NODE = `run-node-${process.pid}`;
const grid = useGrid(test, { nodeId: NODE, agentArgs: ['--slots', '4'] });

test('a script that prints to stdout and stderr and exits 3: run shows both apart and exits 3; status shows code and times', async (t) => {
  const dir = workdir({ 'report.sh': 'echo "out line"\necho "err line" >&2\necho "more out"\nexit 3\n' });
  // -q: only the job's own output, so a pipeline sees exactly what the script wrote.
  const run = await gridctl(grid.cp.address, ['run', '-q', 'report.sh'], { cwd: dir });
  t.is(run.code, 3, run.stderr.toString());
  t.is(run.stdout.toString(), 'out line\nmore out\n');
  t.is(run.stderr.toString(), 'err line\n');

  const [job] = (await grid.api.jobs.listJobs({ states: [], pageSize: 50, pageToken: '' })).jobs.filter(
    (j) => j.spec?.script?.name === 'report.sh',
  );
  t.truthy(job);
  t.is(job!.state, JobState.JOB_STATE_FAILED);
  t.is(job!.endReason, EndReason.END_REASON_FAILED);
  t.is(job!.exitCode, 3);

  const status = await gridctl(grid.cp.address, ['status', job!.id]);
  t.is(status.code, 0);
  const text = status.stdout.toString();
  t.regex(text, /^Exit code:\s+3$/m);
  t.regex(text, /^State:\s+FAILED$/m);
  t.regex(text, /^Started:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/m);
  t.regex(text, /^Ended:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/m);

  const json = JSON.parse((await gridctl(grid.cp.address, ['status', job!.id, '-o', 'json'])).stdout.toString());
  t.is(json.exitCode, 3);
  t.truthy(json.startedAt);
  t.truthy(json.endedAt);
  t.true(Date.parse(json.endedAt) >= Date.parse(json.startedAt));
});

test('env vars and args arrive in the container, for a command and for a script', async (t) => {
  const cmd = await gridctl(grid.cp.address, ['run', '-e', 'GREETING=hello world', '-e', 'EMPTY=', '--', 'sh', '-c', 'echo "[$GREETING][$EMPTY][$0][$1]"', 'first', 'sec ond']);
  t.is(cmd.code, 0, cmd.stderr.toString());
  t.is(cmd.stdout.toString(), '[hello world][][first][sec ond]\n');

  const dir = workdir({ 'args.sh': 'printf "%s|" "$@"; echo "$MODE"\n' });
  const script = await gridctl(grid.cp.address, ['run', '--env', 'MODE=fast', 'args.sh', '--', 'a b', '--flag', 'c'], { cwd: dir });
  t.is(script.code, 0, script.stderr.toString());
  t.is(script.stdout.toString(), 'a b|--flag|c|fast\n');
});

test('a Python script runs with the python runtime, chosen from its extension', async (t) => {
  const dir = workdir({ 'hello.py': 'import sys\nprint("python", sys.version_info[0], sys.argv[1:])\nsys.exit(4)\n' });
  const run = await gridctl(grid.cp.address, ['run', 'hello.py', '--', 'x'], { cwd: dir });
  t.is(run.stdout.toString(), "python 3 ['x']\n");
  t.is(run.code, 4);
});

test('the container has the memory and CPU limits asked for', async (t) => {
  const run = await gridctl(grid.cp.address, ['run', '--detach', '--memory', '64m', '--cpu', '0.5', '--', 'sleep', '30']);
  t.is(run.code, 0, run.stderr.toString());
  const jobId = run.stdout.toString().trim();
  const running = await waitForJob(grid.api, jobId, (j) => j.state === JobState.JOB_STATE_RUNNING || isTerminal(j.state), 'the job runs');
  t.is(running.state, JobState.JOB_STATE_RUNNING, running.message);
  const [c] = await docker.listContainers({ filters: { label: [`dev.grid.job-id=${jobId}`] } });
  const info = c ? await docker.getContainer(c.Id).inspect() : undefined;
  t.truthy(info, 'container of the job not found');
  t.is(info!.HostConfig.Memory, 64 * 1024 * 1024);
  t.is(info!.HostConfig.MemorySwap, 64 * 1024 * 1024);
  t.is(info!.HostConfig.NanoCpus, 500_000_000);
  t.is(info!.Config.Labels['dev.grid.attempt'], '1');
  t.is(info!.Config.Labels['dev.grid.node-id'], NODE);
  const cancel = await gridctl(grid.cp.address, ['cancel', jobId, '--grace', '0s', '--wait']);
  t.is(cancel.code, 130, cancel.stderr.toString());
});

test('a missing image ends the job IMAGE_UNAVAILABLE with a clear message, without hanging', async (t) => {
  const run = await gridctl(grid.cp.address, ['run', '--image', 'grid-test/no-such-image:404', '--', 'true']);
  t.is(run.code, 121);
  t.regex(run.stderr.toString(), /IMAGE_UNAVAILABLE.*grid-test\/no-such-image:404/);
});

test('piped (as in CI), run says on stderr, in plain lines naming the job, that it was queued, where it ran and how it ended', async (t) => {
  const run = await gridctl(grid.cp.address, ['run', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  t.is(run.code, 3, run.stderr.toString());
  t.is(run.stdout.toString(), 'out\n');
  const stderr = run.stderr.toString();
  t.false(stderr.includes('\x1b'), JSON.stringify(stderr));
  const id = /^grid: job (\S+) queued$/m.exec(stderr)?.[1];
  t.truthy(id, stderr);
  const lines = stderr.split('\n').filter((l) => l.startsWith('grid: '));
  t.true(lines.every((l) => l.includes(id!)), `every status line names the job: ${stderr}`);
  t.true(lines.some((l) => l === `grid: job ${id} running on ${NODE} (attempt 1)`), stderr);
  t.is(lines.at(-1), `grid: job ${id} failed with exit code 3`);
  t.true(stderr.split('\n').includes('err'), stderr);
});

test('run --stdin sends what is piped to gridctl to the job\'s standard input, then end of file; without it stdin is closed', async (t) => {
  const piped = await gridctl(grid.cp.address, ['run', '-q', '--stdin', '--', 'sh', '-c', 'wc -l; cat'], { stdin: 'one\ntwo\n' });
  t.is(piped.code, 0, piped.stderr.toString());
  t.is(piped.stdout.toString(), '2\n', 'wc read both lines to end of file; cat found nothing after');
  const withoutFlag = await gridctl(grid.cp.address, ['run', '-q', '--', 'sh', '-c', 'cat; echo after'], { stdin: 'not sent\n' });
  t.is(withoutFlag.code, 0, withoutFlag.stderr.toString());
  t.is(withoutFlag.stdout.toString(), 'after\n', 'cat saw end of file at once: nothing was sent');

  // Stored with the job (its task), so a requeued attempt gets it again.
  const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['cat'], { stdin: Buffer.from('kept\n') }), requestId: '' });
  const ended = await jobWhenEnded(grid.api, job!.id, 30_000);
  t.is(ended.state, JobState.JOB_STATE_SUCCEEDED);
  t.is(await storedLogs(grid.api, job!.id), 'kept\n');
  t.is((await grid.api.jobs.getJob({ jobId: job!.id })).job!.spec!.stdin.length, 0, 'never answered back');
  const big = await grid.api.jobs.submitJob({ spec: commandSpec(['cat'], { stdin: Buffer.alloc(17 * 1024 * 1024) }), requestId: '' }).catch((err: Error) => err);
  t.regex(String((big as Error).message), /spec.stdin and spec.inputs add up to more than this server's limit of 16 MiB/);
});

test('RunJob submits and follows on one stream: the job, its output, then ended; a bad spec fails as SubmitJob does', async (t) => {
  const events: string[] = [];
  let id = '';
  for await (const { event } of grid.api.jobs.runJob({ submit: { spec: commandSpec(['sh', '-c', 'echo out; echo err >&2']), requestId: '' }, includeLogs: true, includeProgress: false })) {
    if (!event) continue;
    if (event.$case === 'log') events.push(`log:${event.value.data.toString().trim()}`);
    else if (event.$case === 'job' || event.$case === 'ended') {
      id ||= event.value.id;
      t.is(event.value.id, id, 'every event is about the one job submitted');
      if (events.at(-1) !== `${event.$case}:${JobState[event.value.state]}`) events.push(`${event.$case}:${JobState[event.value.state]}`);
    }
  }
  t.is(events.at(-1), 'ended:JOB_STATE_SUCCEEDED', events.join(' '));
  t.true(events.includes('log:out') && events.includes('log:err'), events.join(' '));
  t.regex(events[0]!, /^job:/);
  t.is((await grid.api.jobs.getJob({ jobId: id })).job!.state, JobState.JOB_STATE_SUCCEEDED);

  const bad = grid.api.jobs.runJob({ submit: { spec: commandSpec([]), requestId: '' }, includeLogs: true, includeProgress: false });
  const err = await (async () => {
    try {
      for await (const _ of bad) return undefined;
    } catch (e) {
      return e as Error;
    }
    return undefined;
  })();
  t.regex(String(err?.message), /INVALID_ARGUMENT.*spec.command is empty/);
});

test('detach, logs, list and nodes', async (t) => {
  const run = await gridctl(grid.cp.address, ['run', '-d', '--', 'sh', '-c', 'echo one; echo two >&2; echo three']);
  const jobId = run.stdout.toString().trim();
  t.regex(jobId, /^[0-9a-f-]{36}$/);
  const follow = await gridctl(grid.cp.address, ['logs', '-f', jobId]);
  t.is(follow.code, 0);
  t.is(follow.stdout.toString(), 'one\nthree\n');
  t.is(follow.stderr.toString(), 'two\n');

  const logs = await gridctl(grid.cp.address, ['logs', jobId]);
  t.is(logs.stdout.toString(), 'one\nthree\n');
  t.is(logs.stderr.toString(), 'two\n');
  t.is((await gridctl(grid.cp.address, ['logs', '--stderr', jobId])).stdout.toString(), '');
  t.is((await gridctl(grid.cp.address, ['logs', '--stderr', jobId])).stderr.toString(), 'two\n');

  const list = await gridctl(grid.cp.address, ['list', '--state', 'succeeded']);
  // The list shows short ids (the id's random tail).
  t.regex(list.stdout.toString(), new RegExp(`^${jobId.slice(-12)}\\s+SUCCEEDED`, 'm'));
  const nodes = await gridctl(grid.cp.address, ['nodes']);
  t.regex(nodes.stdout.toString(), new RegExp(`^${NODE}\\s+${NODE}\\s+READY`, 'm'));
});

test('the container is removed after the job ends', async (t) => {
  const run = await gridctl(grid.cp.address, ['run', '-d', '--', 'true']);
  const jobId = run.stdout.toString().trim();
  t.is((await gridctl(grid.cp.address, ['logs', '-f', jobId])).code, 0);
  // The runner removes the container right after reporting; allow it a moment.
  for (let i = 0; i < 100; i++) {
    const left = await docker.listContainers({ all: true, filters: { label: [`dev.grid.job-id=${jobId}`] } });
    if (left.length === 0) return t.pass();
    await sleep(50);
  }
  t.fail('container still there 5 s after the job ended');
});
