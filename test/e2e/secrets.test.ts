// A secret env value is seen by the job and by nothing else: not in the
// control plane's or the agent's logs, any API answer, gridctl's output (table
// and JSON), the job's stored output, or PostgreSQL in plain text (pg_dump).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientError, Status } from 'nice-grpc';
import { EndReason, Job, JobState } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { clients, commandSpec, gridctl, jobWhenEnded, startAgent, storedLogs, startControlPlane, waitForNodes } from '../helpers/grid.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => db?.drop());

const reverse = (s: string) => [...s].reverse().join('');

test.serial('a secret env value appears only inside the job', async (t) => {
  const keyFile = join(mkdtempSync(join(tmpdir(), 'grid-key-')), 'secret.key');
  writeFileSync(keyFile, randomBytes(32).toString('base64'));
  const cp = await startControlPlane(db.url, ['--secret-key-file', keyFile, '--log-level', 'debug']);
  const agent = startAgent(cp.address, 'secret-node', ['--log-level', 'debug']);
  const api = clients(cp.address);
  try {
    await waitForNodes(api, ['secret-node']);
    const secret = `s3cr3t-${randomBytes(8).toString('hex')}`;
    // The job prints it plainly (masked on the way out) and reversed (which proves it saw the value).
    const script = 'echo "token is $API_TOKEN"; echo "$API_TOKEN" | rev; echo "$API_TOKEN" >&2';
    const run = await gridctl(cp.address, ['run', '--secret-env', 'API_TOKEN', '-e', 'PLAIN=visible', '--', 'sh', '-c', script], { env: { API_TOKEN: secret } });
    t.is(run.code, 0, run.stderr.toString());
    const stars = '*'.repeat(secret.length);
    t.is(run.stdout.toString(), `token is ${stars}\n${reverse(secret)}\n`);
    t.is(run.stderr.toString().split('\n').filter((l) => l.includes('*')).join('\n'), stars);

    const { jobs } = await api.jobs.listJobs({ states: [], pageSize: 10, pageToken: '' });
    const jobId = jobs[0]!.id;
    const job = (await api.jobs.getJob({ jobId })).job!;
    t.deepEqual(job.spec!.secretEnv, { API_TOKEN: '<redacted>' });
    t.deepEqual(job.spec!.env, { PLAIN: 'visible' });
    const watched: Job[] = [];
    for await (const event of api.jobs.watchJob({ jobId, includeLogs: true, stdoutOffset: 0n, stderrOffset: 0n, attempt: 0 })) {
      if (event.event?.$case === 'job') watched.push(event.event.value);
    }

    const outputs: [string, string][] = [
      ['ListJobs', JSON.stringify(jobs.map((j) => Job.toJSON(j)))],
      ['GetJob', JSON.stringify(Job.toJSON(job))],
      ['WatchJob', JSON.stringify(watched.map((j) => Job.toJSON(j)))],
      ['ReadJobLogs', await storedLogs(api, jobId)],
    ];
    for (const args of [['status', jobId], ['status', jobId, '-o', 'json'], ['list'], ['list', '-o', 'json'], ['logs', jobId]]) {
      const r = await gridctl(cp.address, args);
      t.is(r.code, 0, r.stderr.toString());
      outputs.push([`gridctl ${args.join(' ')}`, r.stdout.toString() + r.stderr.toString()]);
    }
    const dump = spawnSync('pg_dump', ['--data-only', db.url], { encoding: 'latin1', maxBuffer: 1 << 28 });
    t.is(dump.status, 0, dump.stderr);
    outputs.push(['pg_dump', dump.stdout]);
    await agent.stop();
    await cp.stop();
    outputs.push(['control plane log', cp.output()], ['agent log', agent.output()]);
    for (const [where, text] of outputs) t.false(text.includes(secret), `the secret is in ${where}`);
    t.true(outputs.find(([w]) => w === 'gridctl status ' + jobId + ' -o json')![1].includes('<redacted>'));
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
  }
});

test.serial('without a secret key, a job with secrets is refused, saying what is missing; gridctl never takes a value on its command line', async (t) => {
  const cp = await startControlPlane(db.url);
  const api = clients(cp.address);
  try {
    const err = await t.throwsAsync(api.jobs.submitJob({ spec: commandSpec(['true'], { secretEnv: { A: 'b' } }), requestId: '' }), { instanceOf: ClientError });
    t.is(err!.code, Status.FAILED_PRECONDITION);
    t.regex(err!.details, /--secret-key-file/);
    const both = await t.throwsAsync(api.jobs.submitJob({ spec: commandSpec(['true'], { env: { A: 'x' }, secretEnv: { A: 'b' } }), requestId: '' }), { instanceOf: ClientError });
    t.is(both!.code, Status.INVALID_ARGUMENT);
    const inline = await gridctl(cp.address, ['run', '--secret-env', 'API_TOKEN=s3cr3t', '--', 'true']);
    t.is(inline.code, 125);
    t.regex(inline.stderr.toString(), /takes a NAME, not NAME=VALUE/);
    t.is((await api.jobs.listJobs({ states: [JobState.JOB_STATE_QUEUED], pageSize: 10, pageToken: '' })).jobs.length, 0);
  } finally {
    api.close();
    await cp.stop();
  }
});

test.serial('a replica without the key that claims a job with secrets fails it, saying why, instead of stranding it', async (t) => {
  const keyFile = join(mkdtempSync(join(tmpdir(), 'grid-key-')), 'secret.key');
  writeFileSync(keyFile, randomBytes(32).toString('base64'));
  const keyed = await startControlPlane(db.url, ['--secret-key-file', keyFile]);
  const keyless = await startControlPlane(db.url);
  const agent = startAgent(keyless.address, 'keyless-node');
  const viaKeyed = clients(keyed.address);
  try {
    await waitForNodes(viaKeyed, ['keyless-node']);
    const { job } = await viaKeyed.jobs.submitJob({ spec: commandSpec(['true'], { secretEnv: { TOKEN: 'x'.repeat(12) } }), requestId: '' });
    const ended = await jobWhenEnded(viaKeyed, job!.id, 30_000);
    t.is(ended.state, JobState.JOB_STATE_FAILED);
    t.is(ended.endReason, EndReason.END_REASON_START_FAILED);
    t.regex(ended.message, /no --secret-key-file to open them: every control-plane replica needs the same --secret-key-file/);
  } finally {
    viaKeyed.close();
    await agent.stop();
    await keyless.stop();
    await keyed.stop();
  }
});
