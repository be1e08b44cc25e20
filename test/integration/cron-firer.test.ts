// The firer against the real Postgres, with a fake owner of job transitions
// that records what it is asked: a schedule's overlap policy sees every job
// of the schedule still queued, also one that a replica submitted and died
// before recording (the schedule's last_job_id names an older one, or none).
import test from 'ava';
import pino from 'pino';
import { v7 as uuidv7 } from 'uuid';
import { JobSpec } from '../../common/gen/grid/v1/job.js';
import { startCronFirer } from '../../control-plane/cron-firer.js';
import { migrate } from '../../control-plane/db/migrate.js';
import type { JobTransitions, NewJob } from '../../control-plane/job-transitions.js';
import { DEFAULT_RUNTIMES, runtimeTable } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { insertCron } from '../../control-plane/sql/cron-schedules.js';
import { insertJobs } from '../../control-plane/sql/insert-jobs.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
});
test.after.always(async () => db?.drop());

const runtimes = runtimeTable(DEFAULT_RUNTIMES);
const { spec, task } = validateSubmission(JobSpec.fromPartial({ command: ['true'] }), DEFAULT_SPEC_POLICY, runtimes);

function fakeTransitions() {
  const submitted: NewJob[] = [];
  const cancelled: string[] = [];
  const owner = {
    submitMany: async (jobs: NewJob[]) => {
      submitted.push(...jobs);
      return jobs.map((j) => ({ kind: 'created', job: { id: j.id } }));
    },
    cancel: async (ids: string[]) => {
      cancelled.push(...ids);
      return [];
    },
  } as unknown as JobTransitions;
  return { owner, submitted, cancelled };
}

/** A schedule due now, with a job of it queued that its row does not name; fired by one firer until it moves on. */
async function fireOnce(name: string, overlap: 'SKIP' | 'CANCEL_PREVIOUS') {
  const orphan = uuidv7();
  await insertJobs(db.sql, [{ id: orphan, spec, task, requestId: '', cron: { name, tick: new Date(Math.floor(Date.now() / 1000) * 1000 - 1000) } }], 1e9);
  const due = new Date(Math.floor(Date.now() / 1000) * 1000);
  await insertCron(db.sql, { name, schedule: '* * * * * *', overlap, spec: Buffer.from(JobSpec.encode(spec).finish()), submitter: '', nextFireAt: due });
  const fake = fakeTransitions();
  const firer = startCronFirer({ sql: db.sql, transitions: fake.owner, policy: DEFAULT_SPEC_POLICY, runtimes, maxQueued: 1e9, replicaId: 'r', log: pino({ level: 'silent' }) });
  try {
    for (const until = Date.now() + 5000; Date.now() < until; await new Promise((r) => setTimeout(r, 20))) {
      const [row] = await db.sql<{ next_fire_at: Date }[]>`SELECT next_fire_at FROM cron_schedules WHERE name = ${name}`;
      if (row!.next_fire_at.getTime() > due.getTime()) break;
    }
  } finally {
    await firer.stop();
  }
  return { orphan, ...fake };
}

test.serial('skip: a queued job of the schedule that it never recorded still counts as running', async (t) => {
  const { submitted } = await fireOnce('skipper', 'SKIP');
  t.deepEqual(submitted.filter((j) => j.cron?.name === 'skipper'), []);
});

test.serial('cancel-previous: that job is cancelled, and the tick gets its own', async (t) => {
  const { orphan, submitted, cancelled } = await fireOnce('canceller', 'CANCEL_PREVIOUS');
  t.true(cancelled.includes(orphan));
  t.true(submitted.some((j) => j.cron?.name === 'canceller'));
});
