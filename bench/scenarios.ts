// Every benchmark scenario by name, full-size or as a smoke (shrunk so that it
// only shows it still works: CI runs that, test/e2e/bench-smoke.test.ts). A
// scenario that throws becomes a FAILED section; the others still run.
import { FULL as BASELINE_FULL, SMOKE as BASELINE_SMOKE, baselineScenario } from './baseline.js';
import { FULL as CLI_FULL, SMOKE as CLI_SMOKE, cliScenario } from './cli-run.js';
import { FULL as LATENCY_FULL, SMOKE as LATENCY_SMOKE, latencyScenario } from './real-agent-latency.js';
import { failedSection, type Section } from './report.js';
import { FULL as SCALE_FULL, SMOKE as SCALE_SMOKE, scaleScenario } from './scale.js';
import { FULL as THROUGHPUT_FULL, SMOKE as THROUGHPUT_SMOKE, throughputScenario, type ThroughputOptions } from './throughput.js';

export interface ScenarioOptions {
  smoke: boolean;
  /** Repetitions of each throughput figure (default 3; 1 in a smoke). */
  runs?: number;
  /** Jobs per throughput run (default 20,000; 200 in a smoke). */
  jobs?: number;
  /** Simulated agents of each Grid throughput variant, the headline first (default 16, 4, 64). */
  agentCounts?: number[];
  /** Idle simulated agents of the scale scenario (default 20,000; 200 in a smoke). */
  idleAgents?: number;
}

interface Scenario {
  name: string;
  title: string;
  about: string;
  /** An environment variable the scenario needs: without it, a whole run leaves the scenario out. */
  needs?: string;
  run(o: ScenarioOptions): Promise<Section>;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'latency',
    title: 'Latency: one real agent, real containers',
    about: 'Output, dispatch and cancel latency with a real agent and Docker.',
    run: (o) => latencyScenario(o.smoke ? LATENCY_SMOKE : LATENCY_FULL),
  },
  {
    name: 'cli',
    title: 'gridctl run against docker run --rm',
    about: 'Issue 13: a trivial gridctl run, spawn to exit, against docker run --rm of the same image.',
    run: (o) => cliScenario(o.smoke ? CLI_SMOKE : CLI_FULL),
  },
  {
    name: 'throughput',
    title: 'Throughput: Grid with simulated agents against graphile-worker',
    about: 'Issue 11: jobs/s, Postgres CPU per job and dispatch latency, Grid against graphile-worker.',
    run: (o) => {
      const base: ThroughputOptions = o.smoke ? THROUGHPUT_SMOKE : THROUGHPUT_FULL;
      return throughputScenario({ ...base, runs: o.runs ?? base.runs, jobs: o.jobs ?? base.jobs, agentCounts: o.agentCounts ?? base.agentCounts });
    },
  },
  {
    name: 'baseline',
    title: 'Scheduling features: this build against an earlier one',
    about:
      'Issue 16: batched submits (the throughput scenario\'s SubmitJobs variant) through this control plane and through an earlier build\'s (GRID_BENCH_BASELINE, its dist/control-plane/main.js; GRID_BENCH_BASELINE_NAME names it), in alternating order.',
    needs: 'GRID_BENCH_BASELINE',
    run: async (o) => {
      const baseline = process.env.GRID_BENCH_BASELINE;
      if (!baseline) throw new Error('set GRID_BENCH_BASELINE to the dist/control-plane/main.js of the build to compare with (e.g. a git worktree of it, after npm ci)');
      const base = o.smoke ? BASELINE_SMOKE : BASELINE_FULL;
      const name = process.env.GRID_BENCH_BASELINE_NAME || 'the baseline';
      const body = await baselineScenario({ ...base, runs: o.runs ?? base.runs, jobs: o.jobs ?? base.jobs, baseline, baselineName: name });
      return {
        scenario: 'baseline',
        title: 'Scheduling features: this build against an earlier one',
        command: `GRID_BENCH_BASELINE=${baseline} GRID_BENCH_BASELINE_NAME=${name} npm run bench -- baseline`,
        about: `Issue 16: batched submits (the throughput scenario's SubmitJobs variant) through this control plane and through ${name}'s, the build before the scheduling features (a git worktree of it, after npm ci), in alternating order; both at their defaults, on one PostgreSQL, each run in a fresh database.`,
        ...body,
      };
    },
  },
  {
    name: 'scale',
    title: 'Scale: idle agents, a reconnect storm, the heartbeat curve',
    about: 'Issue 11: idle simulated agents on one control plane, a reconnect storm after a SIGKILL, heartbeat interval against CPU and LOST detection.',
    run: (o) => {
      const base = o.smoke ? SCALE_SMOKE : SCALE_FULL;
      return scaleScenario({ ...base, idleAgents: o.idleAgents ?? base.idleAgents });
    },
  },
];

export async function runScenarios(names: string[], o: ScenarioOptions): Promise<Section[]> {
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; there are: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const chosen = names.length === 0 ? SCENARIOS.filter((s) => !s.needs || process.env[s.needs]) : SCENARIOS.filter((s) => names.includes(s.name));
  for (const s of SCENARIOS) if (names.length === 0 && s.needs && !process.env[s.needs]) process.stderr.write(`bench: scenario ${s.name} left out: it needs ${s.needs}\n`);
  const sections: Section[] = [];
  for (const s of chosen) {
    process.stderr.write(`bench: scenario ${s.name}${o.smoke ? ' (smoke)' : ''}\n`);
    try {
      sections.push(await s.run(o));
    } catch (err) {
      process.stderr.write(`bench: scenario ${s.name} FAILED: ${(err as Error).message}\n`);
      sections.push(failedSection({ scenario: s.name, title: s.title, command: `npm run bench -- ${s.name}`, about: s.about }, err));
    }
  }
  return sections;
}
