// Every job container is hardened by the agent's policy, whatever the job
// asked for: inspected through the Docker API while it runs, and probed from
// inside (no capabilities; no connection to the host's ports on Grid's own
// network, which Docker's default bridge would allow).
import test from 'ava';
import Docker from 'dockerode';
import { JobSpec, JobState } from '../../common/gen/grid/v1/job.js';
import { LABEL_JOB_ID } from '../../agent/docker-driver.js';
import { stateName } from '../../common/job-state.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { clients, commandSpec, jobWhenEnded, storedLogs, startAgent, startControlPlane, waitForJob, waitForNodes, type Clients, type ControlPlaneProcess } from '../helpers/grid.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
let db: TestDatabase;
let cp: ControlPlaneProcess;
let api: Clients;

test.before(async () => {
  db = await createTestDatabase();
  // On every address, as a control plane on a network listens: the port a job must not reach.
  cp = await startControlPlane(db.url, ['--listen', '0.0.0.0:0', '--plaintext', '--allow-plaintext-on-network-INSECURE']);
  api = clients(cp.address);
});
test.after.always(async () => {
  api?.close();
  await cp?.stop();
  await db?.drop();
});

/** Runs a job on a fresh agent started with these flags, and returns its stdout once it ended. */
async function runOn(nodeId: string, agentArgs: string[], spec: JobSpec): Promise<string> {
  const agent = startAgent(cp.address, nodeId, agentArgs);
  try {
    await waitForNodes(api, [nodeId]);
    const { job } = await api.jobs.submitJob({ spec, requestId: '' });
    const ended = await jobWhenEnded(api, job!.id, 60_000);
    return `${stateName(ended.state)}\n${await storedLogs(api, ended.id, 1)}`;
  } finally {
    await agent.stop();
  }
}

test.serial('a running job\'s container: no capabilities, no new privileges, PID and memory limits without swap, nothing of the host', async (t) => {
  const agent = startAgent(cp.address, 'hardened-inspect');
  try {
    await waitForNodes(api, ['hardened-inspect']);
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['sleep', '30'], { resources: { cpus: 0.5, memoryBytes: 64n << 20n } }), requestId: '' });
    await waitForJob(api, job!.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 'the job runs');
    const [found] = await docker.listContainers({ filters: { label: [`${LABEL_JOB_ID}=${job!.id}`] } });
    const info = await docker.getContainer(found!.Id).inspect();
    const host = info.HostConfig;
    t.deepEqual(host.CapDrop, ['ALL']);
    t.deepEqual(host.CapAdd ?? [], []);
    t.true((host.SecurityOpt ?? []).includes('no-new-privileges:true'));
    t.true((host.PidsLimit ?? 0) > 0);
    t.is(host.Memory, 64 << 20);
    t.is(host.MemorySwap, host.Memory, 'no swap beyond the memory limit');
    t.is(host.NanoCpus, 0.5e9);
    t.false(host.Privileged);
    t.deepEqual(host.Binds ?? [], []);
    t.deepEqual(host.Devices ?? [], []);
    t.deepEqual(info.Mounts, [], 'no mounts but Grid\'s own (none for this job)');
    for (const mode of [host.PidMode, host.IpcMode, host.UTSMode, host.UsernsMode]) t.not(mode, 'host');
    t.is(host.NetworkMode, 'grid-jobs');
    await api.jobs.cancelJob({ jobId: job!.id, grace: { seconds: 0n, nanos: 0 } });
    await jobWhenEnded(api, job!.id, 30_000);
  } finally {
    await agent.stop();
  }
});

// The control plane's port, dialled from inside the job at its network's gateway (this host).
const probe = () =>
  commandSpec(['sh', '-c', `gw=$(ip route | awk '/default/ {print $3}'); echo | nc -w 3 "$gw" ${cp.address.split(':').pop()} >/dev/null 2>&1 && echo reachable || echo blocked; grep CapEff /proc/self/status`]);

test.serial('a job cannot connect to the host\'s ports on Grid\'s network; on Docker\'s default bridge it could', async (t) => {
  t.is(await runOn('hardened-net', [], probe()), 'SUCCEEDED\nblocked\nCapEff:\t0000000000000000\n');
  t.is(await runOn('open-net', ['--network', 'bridge'], probe()), 'SUCCEEDED\nreachable\nCapEff:\t0000000000000000\n');
});

test.serial('with --read-only-rootfs and --user, a job runs as that user, with /tmp and /grid writable only', async (t) => {
  const script = 'id -u; touch /x 2>/dev/null && echo root-writable || echo root-read-only; echo f > /grid/out/f && echo out-ok; echo t > /tmp/t && echo tmp-ok; cat /grid/in/data';
  const spec = commandSpec(['sh', '-c', script], { inputs: [{ path: 'data', content: Buffer.from('input-ok\n'), mode: 0o644 }] });
  t.is(await runOn('read-only', ['--read-only-rootfs', '--user', '65534:65534'], spec), 'SUCCEEDED\n65534\nroot-read-only\nout-ok\ntmp-ok\ninput-ok\n');
});

test('the agent refuses capabilities that would hand jobs the host', async (t) => {
  const agent = startAgent(cp.address, 'greedy', ['--cap-add', 'NET_BIND_SERVICE,SYS_ADMIN']);
  await new Promise((resolve) => agent.child.once('exit', resolve));
  t.is(agent.child.exitCode, 1);
  t.regex(agent.output(), /SYS_ADMIN would give jobs control of the host/);
});
