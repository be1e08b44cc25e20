// Short ids: gridctl list shows each job's random tail, and any unique prefix
// of it (4 characters or more) names the job everywhere; an ambiguous prefix
// is answered with the candidates.
import test from 'ava';
import { ClientError, Status } from 'nice-grpc';
import { shortIdOf } from '../../common/job-id.js';
import { commandSpec, gridctl, useGrid } from '../helpers/grid.js';

const grid = useGrid(test, { nodeId: 'short-id-node' });

test.serial('a unique prefix of the short id works for status, logs and the API; the list shows short ids', async (t) => {
  const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['echo', 'short']), requestId: '' });
  const short = shortIdOf(job!.id);
  const logs = await gridctl(grid.cp.address, ['logs', '-f', short.slice(0, 8)]);
  t.is(logs.code, 0, logs.stderr.toString());
  t.is(logs.stdout.toString(), 'short\n');
  const status = await gridctl(grid.cp.address, ['status', short, '-o', 'json']);
  t.is(JSON.parse(status.stdout.toString()).id, job!.id);
  t.is((await grid.api.jobs.getJob({ jobId: short.slice(0, 6).toUpperCase() })).job!.id, job!.id);
  const list = (await gridctl(grid.cp.address, ['list'])).stdout.toString();
  t.regex(list, new RegExp(`^${short}\\s`, 'm'));
});

test.serial('an ambiguous prefix lists the candidates; a short or odd one is refused plainly', async (t) => {
  // Two stored jobs whose short ids share a prefix (copies of a real job's row, ended).
  const a = '01900000-0000-7000-8000-0000aaaa0001';
  const b = '01900000-0000-7000-8000-0000aaaa0002';
  for (const id of [a, b]) {
    await grid.db.sql`INSERT INTO jobs (id, state, end_reason, spec, task, image, cpus, memory_bytes, max_attempts, queue_deadline, timeout_ms, stop_grace_ms, output_cap_bytes)
      SELECT ${id}, 'CANCELLED', 'CANCELLED', spec, task, image, cpus, memory_bytes, max_attempts, queue_deadline, timeout_ms, stop_grace_ms, output_cap_bytes FROM jobs LIMIT 1`;
  }
  const err = await t.throwsAsync(grid.api.jobs.getJob({ jobId: '0000aaaa' }), { instanceOf: ClientError });
  t.is(err!.code, Status.INVALID_ARGUMENT);
  t.regex(err!.details, /0000aaaa starts the short id of 2 jobs: 0000aaaa0002, 0000aaaa0001; give more of it/);
  t.is((await grid.api.jobs.getJob({ jobId: '0000aaaa0001' })).job!.id, a);
  const few = await t.throwsAsync(grid.api.jobs.getJob({ jobId: 'abc' }), { instanceOf: ClientError });
  t.regex(few!.details, /neither a job id \(a UUID\) nor 4-12 hex digits/);
  const none = await t.throwsAsync(grid.api.jobs.getJob({ jobId: 'ffffffffffff' }), { instanceOf: ClientError });
  t.is(none!.code, Status.NOT_FOUND);
});
