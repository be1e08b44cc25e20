// CancelJob against real PostgreSQL, without servers: its answer is the job as
// it is once the cancel has been decided, even when the job ended while the
// cancel waited for its row (it then changes nothing, and must not answer with
// the state it read before: a caller would take a RUNNING answer to mean the
// cancel was lost).
import test from 'ava';
import { pino } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import { JobSpec, JobState } from '../../common/gen/grid/v1/job.js';
import { migrate } from '../../control-plane/db/migrate.js';
import { createLocalEventBus } from '../../control-plane/job-events.js';
import { createJobService } from '../../control-plane/job-service.js';
import { createJobTransitions } from '../../control-plane/job-transitions.js';
import { NodeRegistry } from '../../control-plane/node-registry.js';
import { runtimeTable, DEFAULT_RUNTIMES } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
});
test.after.always(async () => db?.drop());

test('a cancel that finds the job ended meanwhile answers the job as it ended', async (t) => {
  const log = pino({ level: 'silent' });
  const events = createLocalEventBus();
  const runtimes = runtimeTable(DEFAULT_RUNTIMES);
  const transitions = createJobTransitions({ sql: db.sql, registry: new NodeRegistry(), events, log, backstopMarginMs: 5000, kick: () => {} });
  const service = createJobService({ sql: db.sql, events, transitions, policy: DEFAULT_SPEC_POLICY, runtimes, maxQueued: 1000, watchRecheckMs: 10_000, blobs: {} as never, log });
  const { spec, task } = validateSubmission(JobSpec.fromPartial({ command: ['true'] }), DEFAULT_SPEC_POLICY, runtimes);
  const id = uuidv7();
  await transitions.submitMany([{ id, spec, task, requestId: '' }], 1000);
  await db.sql`UPDATE jobs SET state = 'RUNNING', node_id = 'n', attempt = 1, started_at = now() WHERE id = ${id}`;
  // The job's row locked by its finish, which commits while the cancel waits for it.
  let finish!: () => void;
  const finishing = new Promise<void>((resolve) => (finish = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const finished = db.sql.begin(async (tx) => {
    await tx`SELECT 1 FROM jobs WHERE id = ${id} FOR UPDATE`;
    locked();
    await finishing;
    await tx`UPDATE jobs SET state = 'SUCCEEDED', end_reason = 'SUCCEEDED', exit_code = 0, ended_at = now() WHERE id = ${id}`;
  });
  await isLocked;
  const answer = service.cancelJob({ jobId: id, grace: undefined }, {} as never);
  await new Promise((resolve) => setTimeout(resolve, 300));
  finish();
  await finished;
  const { job } = await answer;
  t.is(job?.state, JobState.JOB_STATE_SUCCEEDED);
});
