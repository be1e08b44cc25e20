// Bad input gets the right gRPC status and a message a person can act on, and a
// refused submission writes nothing. Also checks the contract as a client in
// another language sees it: the .proto files loaded at run time, no ts-proto.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { ClientError, Status } from 'nice-grpc';
import type { JobSpec } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { clients, commandSpec, gridctl, startControlPlane, type Clients, type ControlPlaneProcess } from '../helpers/grid.js';

let db: TestDatabase;
let cp: ControlPlaneProcess;
let api: Clients;

test.before(async () => {
  db = await createTestDatabase();
  cp = await startControlPlane(db.url);
  api = clients(cp.address);
});

test.after.always(async () => {
  api?.close();
  await cp?.stop();
  await db?.drop();
});

const base: JobSpec = commandSpec(['echo', 'hi']);

async function refused(t: import('ava').ExecutionContext, call: Promise<unknown>, code: Status, message: RegExp) {
  const err = await t.throwsAsync(call, { instanceOf: ClientError });
  t.is((err as ClientError).code, code, (err as ClientError).details);
  t.regex((err as ClientError).details, message);
}

const script = { name: 'job.py', content: Buffer.from('print(1)'), runtime: '' };

const badSpecs: [string, Partial<JobSpec>, RegExp][] = [
  ['an empty command', { command: [] }, /spec\.command is empty: give the program to run/],
  ['a command whose program is blank', { command: [' '] }, /spec\.command\[0\] is empty/],
  ['both a command and a script', { script }, /both a command and a script: give exactly one/],
  ['a malformed image reference', { image: 'Ubuntu::latest' }, /spec\.image "Ubuntu::latest" is not a valid image reference/],
  ['an image with spaces', { image: 'bad image' }, /not a valid image reference: expected \[registry\/\]name/],
  ['negative memory', { resources: { cpus: 0, memoryBytes: -5n } }, /spec\.resources\.memory_bytes is -5 .*must be at least 6 MiB/],
  ['absurd memory', { resources: { cpus: 0, memoryBytes: 2n ** 60n } }, /memory_bytes is 1 EiB, above this server's maximum of 1 TiB/],
  ['negative CPUs', { resources: { cpus: -1, memoryBytes: 0n } }, /spec\.resources\.cpus is -1: must be between 0\.01 and/],
  ['an unknown runtime', { command: [], script: { ...script, runtime: 'cobol' } }, /runtime "cobol" is unknown; this server has: sh, bash, python|runtime "cobol" is unknown; this server has: .*python/],
  ['a script with no known extension', { command: [], script: { ...script, name: 'job.xyz' } }, /cannot tell the runtime of "job\.xyz"/],
  ['a script name with a slash', { command: [], script: { ...script, name: '../etc/passwd' } }, /not a plain file name/],
  ['a bad env name', { env: { 'BAD-NAME': 'x' } }, /spec\.env name "BAD-NAME" is not valid/],
  ['a relative working dir', { workingDir: 'tmp' }, /working_dir "tmp" must be an absolute path/],
  ['a negative timeout', { timeout: { seconds: -1n, nanos: 0 } }, /spec\.timeout is negative/],
  ['too many attempts', { maxAttempts: 99 }, /max_attempts is 99: must be between 1 and 10/],
];

for (const [what, change, message] of badSpecs) {
  test(`SubmitJob refuses ${what} with INVALID_ARGUMENT`, async (t) => {
    await refused(t, api.jobs.submitJob({ spec: { ...base, ...change }, requestId: '' }), Status.INVALID_ARGUMENT, message);
  });
}

test('a request_id holding a NUL byte is INVALID_ARGUMENT, not INTERNAL (fuzz seed 642317)', async (t) => {
  await refused(t, api.jobs.submitJob({ spec: base, requestId: 'a\0b' }), Status.INVALID_ARGUMENT, /request_id contains a NUL byte/);
});

test('SubmitJob without a spec is INVALID_ARGUMENT', async (t) => {
  await refused(t, api.jobs.submitJob({ spec: undefined, requestId: '' }), Status.INVALID_ARGUMENT, /spec is missing/);
});

test('an unknown job id is NOT_FOUND for every call; a malformed one is INVALID_ARGUMENT', async (t) => {
  const unknown = '01900000-0000-7000-8000-000000000000';
  await refused(t, api.jobs.getJob({ jobId: unknown }), Status.NOT_FOUND, /job 01900000-0000-7000-8000-000000000000 does not exist/);
  await refused(t, api.jobs.cancelJob({ jobId: unknown, grace: undefined }), Status.NOT_FOUND, /does not exist/);
  const watch = async () => {
    for await (const _ of api.jobs.watchJob({ jobId: unknown, includeLogs: true, stdoutOffset: 0n, stderrOffset: 0n, attempt: 0 }));
  };
  await refused(t, watch(), Status.NOT_FOUND, /does not exist/);
  await refused(t, api.jobs.getJob({ jobId: 'nope' }), Status.INVALID_ARGUMENT, /"nope" is neither a job id \(a UUID\) nor 4-12 hex digits of a short id/);
  await refused(t, api.jobs.listJobs({ states: [], pageSize: 5000, pageToken: '' }), Status.INVALID_ARGUMENT, /page_size is 5000/);
});

test('ListJobs with a state no job can be in is INVALID_ARGUMENT, naming it (a fuzz run got INTERNAL)', async (t) => {
  for (const state of [42, 99, -1]) {
    await refused(t, api.jobs.listJobs({ states: [1, state], pageSize: 10, pageToken: '' }), Status.INVALID_ARGUMENT, new RegExp(`states\\[1\\] is ${state}, not a job state`));
  }
});

test('gridctl shows the server\'s message and exits 125', async (t) => {
  const run = await gridctl(cp.address, ['run', '--image', 'NOT VALID', '--', 'true']);
  t.is(run.code, 125);
  t.regex(run.stderr.toString(), /^gridctl: spec\.image "NOT VALID" is not a valid image reference/m);
  const status = await gridctl(cp.address, ['status', '01900000-0000-7000-8000-000000000000']);
  t.is(status.code, 125);
  t.regex(status.stderr.toString(), /does not exist/);
  const missing = await gridctl(cp.address, ['run', 'no-such-file.py']);
  t.is(missing.code, 125);
  t.regex(missing.stderr.toString(), /"no-such-file\.py" is not a file here; to run a command put it after --/);
});

test('gridctl says plainly when the control plane cannot be reached', async (t) => {
  const run = await gridctl('127.0.0.1:1', ['list']);
  t.is(run.code, 125);
  t.regex(run.stderr.toString(), /cannot reach the Grid control plane at 127\.0\.0\.1:1/);
});

test.after('no refused submission left a row behind', async (t) => {
  // Runs after every test above: only valid submissions may have been stored.
  const [{ count }] = await db.sql<{ count: number }[]>`SELECT count(*)::int AS count FROM jobs`;
  t.is(count, 0);
});

test('the contract works for a client generated at run time from the .proto files', async (t) => {
  const protoDir = fileURLToPath(new URL('../../proto', import.meta.url));
  const definition = protoLoader.loadSync('grid/v1/job.proto', {
    includeDirs: [protoDir],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
  });
  const grid = grpc.loadPackageDefinition(definition) as any;
  const client = new grid.grid.v1.JobService(cp.address, grpc.credentials.createInsecure());
  const call = (method: string, request: object) =>
    new Promise<any>((resolve, reject) => client[method](request, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))));
  try {
    const err = await t.throwsAsync<grpc.ServiceError>(call('SubmitJob', { spec: { command: [] } }));
    t.is(err!.code, grpc.status.INVALID_ARGUMENT);
    t.regex(err!.details, /spec\.command is empty/);
    const list = await call('ListJobs', { page_size: 10 });
    t.deepEqual(list.jobs, []);
    t.is(list.next_page_token, '');
  } finally {
    client.close();
  }
});
