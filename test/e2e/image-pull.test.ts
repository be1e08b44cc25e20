// Pulling images end to end: a real registry process on a local port, images
// pushed to it and removed from the engine, and an agent that must pull them.
// Progress reaches a watcher as job events; a pull that cannot succeed ends the
// job IMAGE_UNAVAILABLE; a cancel stops a pull in progress.
import { createServer, type Server, type Socket } from 'node:net';
import test from 'ava';
import Docker from 'dockerode';
import { EndReason, JobState, type ImagePullProgress } from '../../common/gen/grid/v1/job.js';
import { BUSYBOX, commandSpec, freePort, gridctl, useGrid, waitForJob } from '../helpers/grid.js';
import { pushFreshImage, removeImage, startRegistry, startSlowProxy, type Proxy, type Registry } from '../helpers/registry.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const NODE = `pull-node-${process.pid}`;
const STALL_S = 3;
const grid = useGrid(test, { nodeId: NODE, agentArgs: ['--slots', '2', '--pull-stall-timeout', `${STALL_S}s`] });
const LAYER_BYTES = 4 * 1024 * 1024;

let registry: Registry;
/** The registry at 2 MiB/s: the 4 MiB layer takes about 2 s, long enough to watch. */
let slow: Proxy;
const pushed: string[] = [];
/** A registry that takes connections and never answers: a pull against it stalls. */
let silent: { address: string; server: Server; sockets: Set<Socket> };

test.before(async () => {
  registry = await startRegistry();
  slow = await startSlowProxy(registry, 2 * 1024 * 1024);
  const port = await freePort();
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  silent = { address: `127.0.0.1:${port}`, server, sockets };
});

test.after.always(async () => {
  for (const ref of pushed) await removeImage(ref);
  slow?.close();
  await registry?.stop();
  for (const socket of silent?.sockets ?? []) socket.destroy();
  silent?.server.close();
});

/** An image only the registry has; its name as pulled through the slow proxy, or straight from the registry. */
async function freshImage(name: string, via: 'slow' | 'direct' = 'slow'): Promise<string> {
  const ref = `${registry.address}/grid-test/${name}-${process.pid}:1`;
  pushed.push(ref);
  await pushFreshImage(ref, BUSYBOX, LAYER_BYTES);
  if (via === 'direct') return ref;
  // The same repository, through the proxy.
  const slowRef = ref.replace(registry.address, slow.address);
  pushed.push(slowRef);
  return slowRef;
}

test('an image only in the registry is pulled, its progress reaches the watcher as it goes and before the job runs, and the job runs', async (t) => {
  const image = await freshImage('watched');
  const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['sh', '-c', 'wc -c < /payload'], { image }), requestId: '' });
  const events: ({ kind: 'pull'; p: ImagePullProgress } | { kind: 'state'; state: JobState })[] = [];
  let stdout = '';
  for await (const { event } of grid.api.jobs.watchJob({ jobId: job!.id, includeLogs: true, includeProgress: true, stdoutOffset: 0n, stderrOffset: 0n, attempt: 0 })) {
    if (event?.$case === 'imagePull') events.push({ kind: 'pull', p: event.value });
    else if (event?.$case === 'log') stdout += event.value.data.toString();
    else if (event) events.push({ kind: 'state', state: event.value.state });
    if (event?.$case === 'ended') t.is(event.value.endReason, EndReason.END_REASON_SUCCEEDED, event.value.message);
  }
  t.is(stdout.trim(), String(LAYER_BYTES));

  const pulls = events.flatMap((e) => (e.kind === 'pull' ? [e.p] : []));
  t.log(`pull events: ${pulls.map((p) => `${p.layersDone}/${p.layersTotal} ${p.downloadedBytes}/${p.totalBytes}${p.done ? ' done' : ''}`).join(', ')}`);
  // Progress as it goes: at least one event part-way through the download.
  t.true(pulls.some((p) => !p.done && p.downloadedBytes > 0n && p.downloadedBytes < p.totalBytes), 'no event part-way through');
  t.true(pulls.every((p) => p.image === image && p.attempt === 1));
  const last = pulls.at(-1)!;
  t.true(last.done);
  t.is(pulls.filter((p) => p.done).length, 1);
  // The busybox layer is already on the node; the random layer is downloaded (about 4 MiB, compressed).
  t.is(last.layersTotal, 2);
  t.is(last.layersDone, 2);
  t.is(last.downloadedBytes, last.totalBytes);
  t.true(last.totalBytes >= BigInt(LAYER_BYTES), `total ${last.totalBytes}`);
  const downloaded = pulls.map((p) => p.downloadedBytes);
  t.deepEqual(downloaded, [...downloaded].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  // All of the pull happens before the container runs.
  const running = events.findIndex((e) => e.kind === 'state' && e.state === JobState.JOB_STATE_RUNNING);
  const lastPull = events.map((e) => e.kind).lastIndexOf('pull');
  t.true(running < 0 || lastPull < running, 'pull progress after RUNNING');
  t.truthy(await docker.getImage(image).inspect(), 'the image is on the node after the pull');
});

test('piped, gridctl run prints the pull on stderr as a few plain lines; -q adds nothing to the job\'s output', async (t) => {
  const shown = await gridctl(grid.cp.address, ['run', '--image', await freshImage('plain'), '--', 'sh', '-c', 'echo ran; echo err >&2']);
  t.is(shown.code, 0, shown.stderr.toString());
  t.is(shown.stdout.toString(), 'ran\n');
  const lines = shown.stderr.toString().split('\n').filter((l) => l && !/^grid: job /.test(l));
  t.regex(lines[0]!, /^grid: pulling localhost:\d+\/grid-test\/plain-\d+:1: \d\/\d layers/);
  t.true(lines.length <= 6, `plain progress is a few lines, not a flood: ${lines.length}`);
  t.regex(lines.at(-2)!, /^grid: pulled localhost:\d+\/grid-test\/plain-\d+:1 \(2 layers, 4(\.\d)? MiB\)$/);
  t.is(lines.at(-1), 'err');

  const quiet = await gridctl(grid.cp.address, ['run', '-q', '--image', await freshImage('quiet', 'direct'), '--', 'sh', '-c', 'echo ran; echo err >&2']);
  t.is(quiet.code, 0, quiet.stderr.toString());
  t.is(quiet.stdout.toString(), 'ran\n');
  t.is(quiet.stderr.toString(), 'err\n');
});

test('an image the registry does not have ends IMAGE_UNAVAILABLE with the registry\'s reason', async (t) => {
  const image = `${registry.address}/grid-test/never-pushed:1`;
  const run = await gridctl(grid.cp.address, ['run', '--image', image, '--', 'true']);
  t.is(run.code, 121);
  t.regex(run.stderr.toString(), /ended FAILED \(IMAGE_UNAVAILABLE\): image localhost:\d+\/grid-test\/never-pushed:1 is not on the node and could not be pulled: .*(not found|manifest unknown)/i);
});

test('a pull that stalls is given up after the agent\'s --pull-stall-timeout: IMAGE_UNAVAILABLE', async (t) => {
  const run = await gridctl(grid.cp.address, ['run', '--image', `${silent.address}/grid-test/stalls:1`, '--', 'true']);
  t.is(run.code, 121);
  t.regex(run.stderr.toString(), new RegExp(`IMAGE_UNAVAILABLE\\): image ${silent.address}/grid-test/stalls:1 is not on the node and could not be pulled: no progress for ${STALL_S}s`));
});

test('a cancel stops a pull in progress: the job ends CANCELLED without waiting for the pull', async (t) => {
  const image = `${silent.address}/grid-test/cancelled:1`;
  const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['true'], { image }), requestId: '' });
  await waitForJob(grid.api, job!.id, (j) => j.state === JobState.JOB_STATE_ASSIGNED, 'assigned');
  const started = Date.now();
  await grid.api.jobs.cancelJob({ jobId: job!.id, grace: undefined });
  const ended = await waitForJob(grid.api, job!.id, (j) => j.state === JobState.JOB_STATE_CANCELLED || j.state === JobState.JOB_STATE_FAILED, 'ended');
  const tookMs = Date.now() - started;
  t.is(ended.state, JobState.JOB_STATE_CANCELLED, ended.message);
  t.is(ended.endReason, EndReason.END_REASON_CANCELLED);
  const status = await gridctl(grid.cp.address, ['status', job!.id]);
  t.regex(status.stdout.toString(), /cancelled while pulling/);
  // Well inside the stall timeout: the cancel, not the stall, ended it.
  t.log(`cancel during the pull took ${tookMs} ms`);
  t.true(tookMs < STALL_S * 1000, `cancel took ${tookMs} ms`);
});

test('a cancel in the middle of a download stops it: CANCELLED, the container never created', async (t) => {
  const image = await freshImage('cancelled-mid-pull');
  const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['touch', '/ran'], { image }), requestId: '' });
  let cancelledAt: number | undefined;
  let final;
  for await (const { event } of grid.api.jobs.watchJob({ jobId: job!.id, includeLogs: false, includeProgress: true, stdoutOffset: 0n, stderrOffset: 0n, attempt: 0 })) {
    if (event?.$case === 'imagePull' && cancelledAt === undefined && event.value.downloadedBytes > 0n) {
      t.false(event.value.done);
      cancelledAt = Date.now();
      await grid.api.jobs.cancelJob({ jobId: job!.id, grace: undefined });
    }
    if (event?.$case === 'ended') final = event.value;
  }
  t.truthy(cancelledAt, 'saw the download under way');
  t.is(final!.state, JobState.JOB_STATE_CANCELLED);
  t.is(final!.endReason, EndReason.END_REASON_CANCELLED);
  t.is(final!.startedAt, undefined, 'the job never started');
  t.log(`cancel → CANCELLED mid-download: ${Date.now() - cancelledAt!} ms`);
  const containers = await docker.listContainers({ all: true, filters: { label: [`dev.grid.job-id=${job!.id}`] } });
  t.deepEqual(containers, []);
});
