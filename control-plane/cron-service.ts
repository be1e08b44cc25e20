// CronService: storing, listing, pausing, resuming and deleting periodic
// schedules. Firing them is cron-firer.ts's; this validates what is stored,
// the spec as a submit would, so that a bad one is refused now rather than at
// every tick.
import type { Logger } from 'pino';
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from '../common/errors.js';
import { CronOverlap, type Cron, type CronServiceImplementation } from '../common/gen/grid/v1/cron.js';
import { JobSpec } from '../common/gen/grid/v1/job.js';
import { nameProblem, scheduleProblem, tickAtOrAfter, type OverlapPolicy } from './cron-schedule.js';
import type { Sql } from './db/connect.js';
import type { RuntimeTable } from './runtime-presets.js';
import { validateSubmission, type SpecPolicy } from './spec-validation.js';
import { deleteCron, getCron, insertCron, listCrons, setCronPaused, type CronRow } from './sql/cron-schedules.js';
import { submitterOf } from './submitter-context.js';

const OVERLAP_TO_DB: ReadonlyMap<CronOverlap, OverlapPolicy> = new Map([
  [CronOverlap.CRON_OVERLAP_UNSPECIFIED, 'SKIP'],
  [CronOverlap.CRON_OVERLAP_SKIP, 'SKIP'],
  [CronOverlap.CRON_OVERLAP_ALLOW, 'ALLOW'],
  [CronOverlap.CRON_OVERLAP_CANCEL_PREVIOUS, 'CANCEL_PREVIOUS'],
]);
const OVERLAP_FROM_DB: Record<OverlapPolicy, CronOverlap> = {
  SKIP: CronOverlap.CRON_OVERLAP_SKIP,
  ALLOW: CronOverlap.CRON_OVERLAP_ALLOW,
  CANCEL_PREVIOUS: CronOverlap.CRON_OVERLAP_CANCEL_PREVIOUS,
};

export function createCronService(deps: { sql: Sql; policy: SpecPolicy; runtimes: RuntimeTable; log: Logger }): CronServiceImplementation {
  const { sql } = deps;

  /** Not even a name a schedule could have is INVALID_ARGUMENT (a NUL would fail a query as INTERNAL). */
  function checkName(name: string): void {
    const problem = nameProblem(name);
    if (problem) throw invalidArgument(problem, 'name');
  }
  const unknown = (name: string) => notFound(`no periodic job is named "${name}" (gridctl cron list shows them)`);

  return {
    async createCron(request, context) {
      // PostgreSQL text cannot hold NUL: stored, it would be an INTERNAL error.
      if (request.schedule.includes('\0')) throw invalidArgument('schedule contains a NUL byte', 'schedule');
      const problem = nameProblem(request.name) ?? scheduleProblem(request.schedule);
      if (problem) throw invalidArgument(problem, nameProblem(request.name) ? 'name' : 'schedule');
      const overlap = OVERLAP_TO_DB.get(request.overlap);
      if (!overlap) throw invalidArgument(`overlap is ${request.overlap}: give skip (1), allow (2) or cancel-previous (3)`, 'overlap');
      if (request.spec?.notBefore) throw invalidArgument('spec.not_before is not for a periodic job: each tick is its start', 'spec.not_before');
      if (Object.keys(request.spec?.secretEnv ?? {}).length > 0) {
        throw invalidArgument('spec.secret_env is not supported for periodic jobs yet: submit such jobs with SubmitJob', 'spec.secret_env');
      }
      const { spec } = validateSubmission(request.spec, deps.policy, deps.runtimes);
      const row = await insertCron(sql, {
        name: request.name,
        schedule: request.schedule,
        overlap,
        spec: Buffer.from(JobSpec.encode(spec).finish()),
        submitter: submitterOf(context),
        nextFireAt: tickAtOrAfter(request.schedule, new Date())!,
      });
      if (!row) throw alreadyExists(`a periodic job named "${request.name}" exists: delete it first, or choose another name`);
      deps.log.info({ cron: row.name, schedule: row.schedule, overlap }, 'periodic job created');
      return { cron: cronOf(row) };
    },
    async listCrons() {
      return { crons: (await listCrons(sql)).map(cronOf) };
    },
    async pauseCron(request) {
      checkName(request.name);
      const row = await setCronPaused(sql, request.name, undefined);
      if (!row) throw unknown(request.name);
      return { cron: cronOf(row) };
    },
    async resumeCron(request) {
      checkName(request.name);
      const existing = await getCron(sql, request.name);
      if (!existing) throw unknown(request.name);
      const next = tickAtOrAfter(existing.schedule, new Date());
      if (!next) throw failedPrecondition(`periodic job "${request.name}" has no tick left to fire (${existing.schedule}); delete it`);
      const row = await setCronPaused(sql, request.name, next);
      if (!row) throw unknown(request.name);
      return { cron: cronOf(row) };
    },
    async deleteCron(request) {
      checkName(request.name);
      if (!(await deleteCron(sql, request.name))) throw unknown(request.name);
      deps.log.info({ cron: request.name }, 'periodic job deleted');
      return {};
    },
  };
}

function cronOf(row: CronRow): Cron {
  return {
    name: row.name,
    schedule: row.schedule,
    overlap: OVERLAP_FROM_DB[row.overlap],
    paused: row.paused,
    spec: JobSpec.decode(row.spec),
    nextFireAt: row.next_fire_at ?? undefined,
    lastFiredAt: row.last_fired_at ?? undefined,
    lastJobId: row.last_job_id ?? '',
    createdAt: row.created_at,
    submitter: row.submitter,
  };
}
