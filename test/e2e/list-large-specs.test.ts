// ListJobs stays answerable however large its jobs' files are: a fuzz run
// (issue 12) stored three jobs with 12 MiB inputs, under the 16 MiB cap, and
// from then on every ListJobs — and `gridctl list` — failed RESOURCE_EXHAUSTED
// for everyone, as each page carried every spec whole (and a submit's answer
// echoed its 12 MiB back, past a stock client's 4 MiB limit). Those answers now
// carry specs without file bytes; GetJob still returns them.
import test from 'ava';
import { ChannelCredentials, createChannel, createClient } from 'nice-grpc';
import { JobServiceDefinition } from '../../common/gen/grid/v1/job.js';
import { CLIENT_OPTIONS } from '../../common/grpc-options.js';
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

test('three jobs with 12 MiB inputs: ListJobs and gridctl list still answer, GetJob has the bytes', async (t) => {
  const content = Buffer.alloc(12 * 2 ** 20, 7);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const spec = { ...commandSpec(['true']), inputs: [{ path: `big-${i}.bin`, content, mode: 0 }] };
    const { job } = await api.jobs.submitJob({ spec, requestId: '' });
    ids.push(job!.id);
  }
  const { jobs } = await api.jobs.listJobs({ states: [], pageSize: 50, pageToken: '' });
  t.deepEqual(jobs.map((j) => j.id).sort(), [...ids].sort());
  for (const job of jobs) {
    t.is(job.spec!.inputs.length, 1, 'the file is listed');
    t.regex(job.spec!.inputs[0]!.path, /^big-\d\.bin$/);
    t.is(job.spec!.inputs[0]!.content.length, 0, 'without its bytes');
  }
  // GetJob carries the bytes: a client needs a receive limit above them (gridctl's).
  const whole = createClient(JobServiceDefinition, createChannel(cp.address, ChannelCredentials.createInsecure(), CLIENT_OPTIONS));
  const { job } = await whole.getJob({ jobId: ids[0]! });
  t.is(job!.spec!.inputs[0]!.content.length, content.length, 'GetJob returns the spec whole');
  const list = await gridctl(cp.address, ['list', '-o', 'json']);
  t.is(list.code, 0, list.stderr.toString());
  for (const id of ids) t.true(list.stdout.toString().includes(id), 'gridctl list shows each job');
});
