// gridctl cron: periodic jobs (CronService): create, list, pause, resume, delete.
import { Cron, CronOverlap } from '../../common/gen/grid/v1/cron.js';
import { Job, type InputFile } from '../../common/gen/grid/v1/job.js';
import { shortIdOf } from '../../common/job-id.js';
import { callOptions, type GridClients } from '../client.js';
import { isMachine, machine, table, time, what } from '../format.js';
import { buildSpec, type RunFlags, type Workload } from '../run-spec.js';
import type { Output } from './inspect.js';

export const OVERLAP_NAMES = ['skip', 'allow', 'cancel-previous'] as const;
const OVERLAPS: Record<(typeof OVERLAP_NAMES)[number], CronOverlap> = {
  skip: CronOverlap.CRON_OVERLAP_SKIP,
  allow: CronOverlap.CRON_OVERLAP_ALLOW,
  'cancel-previous': CronOverlap.CRON_OVERLAP_CANCEL_PREVIOUS,
};

export async function cronCreateCommand(
  clients: GridClients,
  name: string,
  workload: Workload,
  flags: RunFlags & { schedule: string; overlap: (typeof OVERLAP_NAMES)[number] },
  inputs: InputFile[],
): Promise<number> {
  const spec = buildSpec(flags, workload, process.env, inputs);
  const { cron } = await clients.crons.createCron({ name, schedule: flags.schedule, overlap: OVERLAPS[flags.overlap], spec }, callOptions());
  process.stdout.write(`periodic job "${cron!.name}" (${cron!.schedule}, UTC) first fires ${time(cron!.nextFireAt)}\n`);
  return 0;
}

export async function cronListCommand(clients: GridClients, output: Output): Promise<number> {
  const { crons } = await clients.crons.listCrons({}, callOptions());
  if (isMachine(output)) {
    process.stdout.write(machine(output, crons.map((c) => Cron.toJSON(c))));
    return 0;
  }
  const overlapName = (o: CronOverlap) => OVERLAP_NAMES.find((n) => OVERLAPS[n] === o) ?? 'skip';
  process.stdout.write(
    table(
      ['NAME', 'SCHEDULE', 'OVERLAP', 'STATE', 'NEXT', 'LAST JOB', 'COMMAND'],
      crons.map((c) => [
        c.name,
        c.schedule,
        overlapName(c.overlap),
        c.paused ? 'paused' : 'active',
        c.paused ? '-' : time(c.nextFireAt),
        c.lastJobId ? shortIdOf(c.lastJobId) : '-',
        what(Job.fromPartial({ spec: c.spec })),
      ]),
    ),
  );
  return 0;
}

export async function cronPauseCommand(clients: GridClients, name: string, paused: boolean): Promise<number> {
  const { cron } = paused ? await clients.crons.pauseCron({ name }, callOptions()) : await clients.crons.resumeCron({ name }, callOptions());
  process.stdout.write(paused ? `periodic job "${name}" paused\n` : `periodic job "${name}" resumed; next fires ${time(cron!.nextFireAt)}\n`);
  return 0;
}

export async function cronDeleteCommand(clients: GridClients, name: string): Promise<number> {
  await clients.crons.deleteCron({ name }, callOptions());
  process.stdout.write(`periodic job "${name}" deleted; the jobs it submitted are left as they are\n`);
  return 0;
}
