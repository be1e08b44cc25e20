// After a Grid benchmark run: did every job succeed exactly once? A figure from
// a run that lost, repeated or failed a job would measure the wrong thing, so a
// run that fails any of these is reported FAILED with the reasons, not a figure.
import type { Sql } from '../control-plane/db/connect.js';
import type { SimulatedFleet } from './simulated-agent.js';

export interface RunCheck {
  /** What was checked, in words (so a report can show the checks ran). */
  checked: string[];
  /** Every check that did not hold; empty for a good run. */
  violations: string[];
}

export async function checkGridRun(sql: Sql, fleet: SimulatedFleet, submitted: number): Promise<RunCheck> {
  const [db] = await sql<{ jobs: number; succeeded: number; first_attempt: number; attempt_rows: number; jobs_with_one_row: number }[]>`
    SELECT
      (SELECT count(*)::int FROM jobs) AS jobs,
      (SELECT count(*)::int FROM jobs WHERE state = 'SUCCEEDED') AS succeeded,
      (SELECT count(*)::int FROM jobs WHERE attempt = 1) AS first_attempt,
      (SELECT count(*)::int FROM job_attempts) AS attempt_rows,
      (SELECT count(*)::int FROM (SELECT job_id FROM job_attempts GROUP BY job_id HAVING count(*) = 1) o) AS jobs_with_one_row`;
  const checks: [string, boolean, string][] = [
    ['every submitted job stored, none more', db!.jobs === submitted, `${db!.jobs} jobs stored for ${submitted} submitted`],
    ['every job SUCCEEDED', db!.succeeded === submitted, `${submitted - db!.succeeded} jobs not SUCCEEDED`],
    ['every job on attempt 1', db!.first_attempt === submitted, `${submitted - db!.first_attempt} jobs not on attempt 1`],
    [
      'exactly one job_attempts row per job',
      db!.attempt_rows === submitted && db!.jobs_with_one_row === submitted,
      `${db!.attempt_rows} job_attempts rows, ${db!.jobs_with_one_row} jobs with exactly one`,
    ],
  ];
  const expected = new Set((await sql<{ id: string }[]>`SELECT id FROM jobs`).map((r) => `${r.id}/1`));
  const notOnce = [...expected].filter((key) => fleet.assignments.get(key) !== 1).length;
  const strays = [...fleet.assignments.keys()].filter((key) => !expected.has(key)).length;
  checks.push([
    'each attempt assigned exactly once to the simulated agents',
    notOnce === 0 && strays === 0,
    `${notOnce} jobs whose attempt 1 was not assigned exactly once, ${strays} assignments of other attempts` +
      (fleet.duplicates.length > 0 ? ` (e.g. ${fleet.duplicates.slice(0, 2).join('; ')})` : ''),
  ]);
  checks.push(['no refused report or broken stream', fleet.anomalies.length === 0, `simulated agents saw: ${fleet.anomalies.slice(0, 3).join('; ')}`]);
  return {
    checked: checks.map(([what]) => what),
    violations: checks.filter(([, ok]) => !ok).map(([, , why]) => why),
  };
}

/** Throws, naming every violation, unless the run was correct. */
export function requireCorrect(check: RunCheck): void {
  if (check.violations.length > 0) throw new Error(`correctness check failed: ${check.violations.join('; ')}`);
}
