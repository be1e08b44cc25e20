// Issue 16: what the scheduling features (priorities, placement, fairness,
// retries, delays, periodic jobs) cost on the hot path. The throughput
// scenario's batched-submit variant (the one Postgres CPU per job is judged
// on), this build's control plane against an earlier build's
// (GRID_BENCH_BASELINE: its dist/control-plane/main.js), in alternating
// order run after run, so that both meet the same noise.
import { gridThroughputRun, type ThroughputRun } from './grid-throughput.js';
import { BIN } from '../test/helpers/grid.js';
import { measured, type Section } from './report.js';
import { spread } from './stats.js';

export interface BaselineOptions {
  runs: number;
  jobs: number;
  agents: number;
  /** The other build's dist/control-plane/main.js. */
  baseline: string;
  /** How that build is named in the table (e.g. its commit). */
  baselineName: string;
}

export const FULL = { runs: 4, jobs: 20_000, agents: 16 };
export const SMOKE = { runs: 1, jobs: 200, agents: 16 };
/** The bound: the new features cost no more than this. */
const MAX_COST = 0.1;

export async function baselineScenario(o: BaselineOptions): Promise<Omit<Section, 'scenario' | 'title' | 'command' | 'about'>> {
  const builds = [
    { name: 'this build', path: BIN.controlPlane, runs: [] as ThroughputRun[] },
    { name: o.baselineName, path: o.baseline, runs: [] as ThroughputRun[] },
  ];
  for (let run = 0; run < o.runs; run++) {
    for (const b of run % 2 === 0 ? builds : [...builds].reverse()) {
      process.env.GRID_BENCH_CONTROL_PLANE = b.path;
      try {
        process.stderr.write(`bench: baseline run ${run + 1}/${o.runs}: ${b.name}\n`);
        b.runs.push(await gridThroughputRun({ agents: o.agents, jobs: o.jobs, callers: 64, submit: 'SubmitJobs', batchSize: 1000 }));
      } finally {
        delete process.env.GRID_BENCH_CONTROL_PLANE;
      }
    }
  }
  const [now, before] = builds.map((b) => ({
    jps: spread(b.runs.map((r) => r.jobsPerSecond)),
    pg: spread(b.runs.map((r) => r.postgresCpuMsPerJob)),
  }));
  const fmt = (s: { min: number; median: number; max: number }, f: (n: number) => string) => `${f(s.min)} / ${f(s.median)} / ${f(s.max)}`;
  const jobsPerSecond = (n: number) => Math.round(n).toLocaleString('en-US');
  const ms = (n: number) => n.toFixed(3);
  const ratio = now!.jps.median / before!.jps.median;
  const pgRatio = now!.pg.median / before!.pg.median;
  const label = `SubmitJobs (1000 per call), ${o.agents} simulated agents`;
  return {
    figures: [
      measured(`this build, ${label}: jobs/s`, `${fmt(now!.jps, jobsPerSecond)} jobs/s`),
      measured(`${o.baselineName}, ${label}: jobs/s`, `${fmt(before!.jps, jobsPerSecond)} jobs/s`),
      measured('jobs/s, this build ÷ the baseline (medians)', `${ratio.toFixed(2)}×`, `≥ ${(1 - MAX_COST).toFixed(2)}× (issue 16)`, ratio >= 1 - MAX_COST ? 'met' : `missed: ${((1 - ratio) * 100).toFixed(0)} % slower`),
      measured(`this build: Postgres CPU per job`, `${fmt(now!.pg, ms)} ms`),
      measured(`${o.baselineName}: Postgres CPU per job`, `${fmt(before!.pg, ms)} ms`),
      measured('Postgres CPU per job, this build ÷ the baseline (medians)', `${pgRatio.toFixed(2)}×`, `≤ ${(1 + MAX_COST).toFixed(2)}× (issue 16)`, pgRatio <= 1 + MAX_COST ? 'met' : `missed: ${((pgRatio - 1) * 100).toFixed(0)} % more`),
    ],
    notes: [`${o.runs} runs of each, in alternating order (this build first in odd runs), ${o.jobs.toLocaleString('en-US')} jobs per run; min / median / max.`],
    checks: ['every run\'s jobs all ran to their end, each exactly once (the throughput scenario\'s check)'],
  };
}
