// Output end to end: live, byte-exact per stream, capped without surprises, and
// resumed without gap or duplicate when a follower's connection breaks.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { JobState } from '../../common/gen/grid/v1/job.js';
import {
  clients,
  commandSpec,
  freePort,
  gridctl,
  PYTHON,
  sleep,
  startControlPlane,
  waitForJob,
  useGrid,
} from '../helpers/grid.js';

const NODE = `logs-${process.pid}`;
const listen = `127.0.0.1:${await freePort()}`;
const grid = useGrid(test, { nodeId: NODE, agentArgs: ['--slots', '4', '--cpus', '4'], controlPlaneArgs: ['--listen', listen] });
const MiB = 1024 * 1024;

test.serial('a follower receives a printed line promptly (target 0.5 s; generous bound in the test, the figure is logged)', async (t) => {
  const { job } = await grid.api.jobs.submitJob({
    spec: commandSpec(['python3', '-u', '-c', 'import time\nfor i in range(30):\n    print(repr(time.time()), flush=True)\n    time.sleep(0.1)'], { image: PYTHON }),
    requestId: '',
  });
  const latencies: number[] = [];
  let partial = '';
  for await (const { event } of grid.api.jobs.watchJob({ jobId: job!.id, includeLogs: true, stdoutOffset: 0n, stderrOffset: 0n, attempt: 0 })) {
    if (event?.$case !== 'log') continue;
    const now = Date.now() / 1000;
    partial += Buffer.from(event.value.data).toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) latencies.push((now - Number(line)) * 1000);
  }
  t.is(latencies.length, 30);
  const sorted = [...latencies].sort((a, b) => a - b);
  t.log(`print→follower latency: first ${latencies[0]!.toFixed(0)} ms, median ${sorted[15]!.toFixed(0)} ms, max ${sorted[29]!.toFixed(0)} ms`);
  // The target is 0.5 s; the test bound is generous (a loaded CI host), the figure is logged.
  t.true(latencies[0]! < 1500, `first line after ${latencies[0]} ms`);
});

test.serial('exact bytes: binary patterns on stdout and stderr come back identical per stream', async (t) => {
  const script = [
    'import sys',
    'sys.stdout.buffer.write(bytes(range(256)) * 1000 + b"\\x00\\xff no newline")',
    'sys.stderr.buffer.write(bytes(reversed(range(256))) * 777)',
  ].join('\n');
  const run = await gridctl(grid.cp.address, ['run', '-d', '--image', PYTHON, '--', 'python3', '-c', script]);
  const jobId = run.stdout.toString().trim();
  await waitForJob(grid.api, jobId, (j) => j.state === JobState.JOB_STATE_SUCCEEDED, 'the job succeeds');
  const expectedOut = Buffer.concat([Buffer.from(Array.from({ length: 1000 }, () => [...Array(256).keys()]).flat()), Buffer.from([0, 0xff]), Buffer.from(' no newline')]);
  const expectedErr = Buffer.from(Array.from({ length: 777 }, () => [...Array(256).keys()].reverse()).flat());
  const out = await gridctl(grid.cp.address, ['logs', '--stdout', jobId]);
  const err = await gridctl(grid.cp.address, ['logs', '--stderr', jobId]);
  t.true(out.stdout.equals(expectedOut), `stdout differs (${out.stdout.length} vs ${expectedOut.length} bytes)`);
  t.true(err.stderr.equals(expectedErr), `stderr differs (${err.stderr.length} vs ${expectedErr.length} bytes)`);
  t.is(out.stderr.length, 0);
  t.is(err.stdout.length, 0);
});

test.serial('50 MiB of output: stored output equals the 16 MiB cap, truncation is reported, the exit code is right, the agent stays small', async (t) => {
  const run = await gridctl(grid.cp.address, ['run', '--', 'sh', '-c', 'yes "50 MiB of this line, and more" | head -c 52428800; echo done >&2; exit 3'], {});
  t.is(run.code, 3);
  t.is(run.stdout.length, 16 * MiB, 'the follower got exactly the kept output');
  t.regex(run.stderr.toString(), /done\ngrid: job \S+ failed with exit code 3\ngrid: output truncated: stdout \(50 MiB written\) kept only its first 16 MiB/);
  const [job] = (await grid.api.jobs.listJobs({ states: [], pageSize: 1, pageToken: '' })).jobs;
  t.is(job!.output?.stdoutBytes, BigInt(50 * MiB));
  t.is(job!.output?.truncated, true);
  const [stored] = await grid.db.sql`SELECT sum(length(data))::int8 AS bytes FROM job_logs WHERE job_id = ${job!.id} AND stream = 1`;
  t.is(Number(stored!.bytes), 16 * MiB);
  const status = await gridctl(grid.cp.address, ['status', job!.id]);
  t.regex(status.stdout.toString(), /^Output:\s+stdout 50 MiB, stderr 5 B — TRUNCATED: only the first 16 MiB of each stream was kept$/m);
  const peak = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${grid.agent.child.pid}/status`, 'utf8'))![1]) * 1024;
  t.log(`agent peak RSS ${(peak / MiB).toFixed(0)} MiB after 50 MiB of output`);
  t.true(peak < 200 * MiB, `agent peak RSS ${peak / MiB} MiB (bound: 200 MiB)`);
});

test.serial('a follower whose connection breaks (control plane killed and restarted) resumes with no gap and no duplicate', async (t) => {
  const { job } = await grid.api.jobs.submitJob({
    spec: commandSpec(['sh', '-c', 'for i in $(seq 1 80); do echo "line $i"; echo "err $i" >&2; sleep 0.05; done']),
    requestId: '',
  });
  const follower = gridctl(grid.cp.address, ['logs', '-f', job!.id]);
  await sleep(1500);
  grid.cp.child.kill('SIGKILL');
  await grid.cp.stop();
  await sleep(500);
  grid.cp = await startControlPlane(grid.db.url, ['--listen', listen]);
  grid.api.close();
  grid.api = clients(grid.cp.address);
  const followed = await follower;
  t.is(followed.code, 0, followed.stderr.toString());
  t.is(followed.stdout.toString(), Array.from({ length: 80 }, (_, i) => `line ${i + 1}\n`).join(''));
  t.is(followed.stderr.toString(), Array.from({ length: 80 }, (_, i) => `err ${i + 1}\n`).join(''));
});

test.serial('logs --tail N and --timestamps; runtimes lists the presets', async (t) => {
  const run = await gridctl(grid.cp.address, ['run', '-d', '--', 'sh', '-c', 'for i in 1 2 3 4 5; do echo "o$i"; done; printf "e1\\ne2\\nlast-no-newline" >&2']);
  const jobId = run.stdout.toString().trim();
  await waitForJob(grid.api, jobId, (j) => j.state === JobState.JOB_STATE_SUCCEEDED, 'the job succeeds');
  const tail = await gridctl(grid.cp.address, ['logs', '--tail', '2', jobId]);
  t.is(tail.stdout.toString(), 'o4\no5\n');
  t.is(tail.stderr.toString(), 'e2\nlast-no-newline');
  const stamped = await gridctl(grid.cp.address, ['logs', '--stdout', '--timestamps', jobId]);
  t.regex(stamped.stdout.toString(), /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z o\d\n){5}$/);
  const runtimes = await gridctl(grid.cp.address, ['runtimes']);
  t.regex(runtimes.stdout.toString(), /^python\s+grid-test\/python:3\s+python3 -u\s+\.py$/m);
  t.regex(runtimes.stdout.toString(), /^sh\s+grid-test\/busybox:1\s+sh\s+\.sh$/m);
});
