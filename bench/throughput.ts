// The throughput scenario of issue 11: Grid's control plane at its defaults with
// SIMULATED agents, against graphile-worker on the same PostgreSQL, in the same
// run, interleaved (each repetition runs every system once, so a slow minute of
// the machine hits them alike). Then dispatch latency: Grid idle and under half
// of the load it just sustained, beside graphile-worker's add → start.
import { availableParallelism } from 'node:os';
import { gridDispatchLatency, type DispatchLatencyRun } from './grid-dispatch-latency.js';
import { gridThroughputRun, type SubmitWay, type ThroughputRun } from './grid-throughput.js';
import { GRAPHILE_CONCURRENCY, graphileAddToStartLatency, graphileThroughputRun, type GraphileMode, type GraphileRun } from './graphile-peer.js';
import { addRepairs, describeRepairs, NO_REPAIRS, type Repairs } from './control-plane-log.js';
import { failed, measured, ms, perSecond, type Figure, type Section } from './report.js';
import { spread, summarize, type Spread, type Summary } from './stats.js';
import { TARGETS, verdict } from './targets.js';
import type { ReportMode } from './simulated-agent.js';

export interface ThroughputOptions {
  runs: number;
  jobs: number;
  /** Concurrent SubmitJob callers (and addJobs callers for graphile). */
  callers: number;
  /** Simulated agents per Grid variant; the first is the headline (and the one dispatch latency uses). */
  agentCounts: number[];
  /** Jobs per SubmitJobs call and per addJobs call. */
  batchSize: number;
  latencySamples: number;
}

export const FULL: ThroughputOptions = { runs: 3, jobs: 20_000, callers: 64, agentCounts: [16, 4, 64], batchSize: 1000, latencySamples: 1000 };
export const SMOKE: ThroughputOptions = { runs: 1, jobs: 200, callers: 64, agentCounts: [16, 4, 64], batchSize: 1000, latencySamples: 20 };

type Outcome<T> = { ok: true; value: T } | { ok: false; reason: string };

interface GridVariant {
  agents: number;
  submit: SubmitWay;
  /** How the simulated agents report (default: one report per job, see simulated-agent.ts). */
  reports?: ReportMode;
  runs: ThroughputRun[];
  failure?: string;
}

interface GraphileVariant {
  mode: GraphileMode;
  runs: GraphileRun[];
  failure?: string;
}

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

function variantLabel(v: GridVariant, o: ThroughputOptions): string {
  const batch = v.submit === 'SubmitJobs' ? ` (${o.batchSize} per call)` : '';
  const reports = v.reports === 'started-and-finished' ? ', started and finished reported apart' : '';
  return `Grid, ${v.agents} simulated agents, ${v.submit}${batch}${reports}`;
}

async function attempt<T>(what: string, f: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await f() };
  } catch (err) {
    const reason = (err as Error).message ?? String(err);
    log(`${what}: FAILED: ${reason}`);
    return { ok: false, reason };
  }
}

export async function throughputScenario(o: ThroughputOptions): Promise<Section> {
  const [headline, ...others] = o.agentCounts;
  const grid: GridVariant[] = [
    { agents: headline!, submit: 'SubmitJob', runs: [] },
    // As a real container is reported (it outlasts the agent's report window): two reports per job.
    { agents: headline!, submit: 'SubmitJob', reports: 'started-and-finished', runs: [] },
    ...others.map((agents): GridVariant => ({ agents, submit: 'SubmitJob', runs: [] })),
    { agents: headline!, submit: 'SubmitJobs', runs: [] },
  ];
  const graphile: GraphileVariant[] = [
    { mode: 'unbatched', runs: [] },
    { mode: 'batched', runs: [] },
  ];

  for (let run = 1; run <= o.runs; run++) {
    for (const v of grid) {
      if (v.failure) continue; // one failed run fails the figure; the others would only repeat it
      const what = `run ${run}/${o.runs}: ${variantLabel(v, o)}`;
      log(`${what} (${o.jobs} jobs)`);
      const r = await attempt(what, () =>
        gridThroughputRun({ agents: v.agents, jobs: o.jobs, callers: o.callers, submit: v.submit, batchSize: o.batchSize, reports: v.reports }),
      );
      if (r.ok) {
        v.runs.push(r.value);
        log(`  ${perSecond(r.value.jobsPerSecond)} jobs/s, Postgres ${r.value.postgresCpuMsPerJob.toFixed(3)} ms CPU/job`);
      } else v.failure = r.reason;
    }
    for (const v of graphile) {
      if (v.failure) continue;
      const what = `run ${run}/${o.runs}: graphile-worker, ${v.mode}`;
      log(`${what} (${o.jobs} jobs)`);
      const r = await attempt(what, () => graphileThroughputRun({ mode: v.mode, jobs: o.jobs, addBatch: o.batchSize, adders: o.callers }));
      if (r.ok) {
        v.runs.push(r.value);
        log(`  ${perSecond(r.value.jobsPerSecond)} jobs/s, Postgres ${r.value.postgresCpuMsPerJob.toFixed(3)} ms CPU/job`);
      } else v.failure = r.reason;
    }
  }

  log(`dispatch latency: Grid, ${headline} simulated agents, idle (${o.latencySamples} samples)`);
  const idle = await attempt('dispatch latency idle', () => gridDispatchLatency({ agents: headline!, samples: o.latencySamples, backgroundJobsPerSecond: 0 }));
  const headlineRuns = grid[0]!.runs;
  const halfRate = headlineRuns.length > 0 ? spread(headlineRuns.map((r) => r.jobsPerSecond)).median / 2 : 0;
  log(`dispatch latency: Grid under ${perSecond(halfRate)} jobs/s of background (${o.latencySamples} samples)`);
  const halfLoad: Outcome<DispatchLatencyRun> =
    halfRate > 0
      ? await attempt('dispatch latency under half-load', () => gridDispatchLatency({ agents: headline!, samples: o.latencySamples, backgroundJobsPerSecond: halfRate }))
      : { ok: false, reason: 'no Grid throughput figure to take half of' };
  log(`graphile-worker add → start (${o.latencySamples} samples)`);
  const graphileLatency = await attempt('graphile add → start', () => graphileAddToStartLatency(o.latencySamples));

  return report(o, grid, graphile, idle, halfLoad, halfRate, graphileLatency);
}

/**
 * Why a throughput target was missed, from the run's own CPU figures: the
 * control plane, the benchmark process and PostgreSQL share this machine's
 * cores, so their CPU per job caps jobs/s however the work is overlapped.
 */
function cpuBound(label: string, run: ThroughputRun, jobsPerSecond: number, graphileBatched: number | undefined): string {
  const perJob = run.controlPlaneCpuMsPerJob + run.benchCpuMsPerJob + run.postgresCpuMsPerJob;
  const cores = availableParallelism();
  const ceiling = (cores * 1000) / perJob;
  const needs = (rate: number) => ((cores * 1000) / rate).toFixed(3);
  const peer = graphileBatched === undefined ? '' : `; graphile-worker batched's ${perSecond(graphileBatched)} jobs/s, ≤ ${needs(graphileBatched)} ms`;
  return (
    `${label}: what bounds it: the control plane, the benchmark process and PostgreSQL share ${cores} cores at ` +
    `${perJob.toFixed(2)} ms CPU per job (median run), so at most ${perSecond(ceiling)} jobs/s if the cores did nothing else; ` +
    `the median reached ${Math.round((jobsPerSecond / ceiling) * 100)} % of that. ${TARGETS.jobsPerSecond.text} needs ≤ ${needs(TARGETS.jobsPerSecond.bound)} ms per job in all${peer}; ` +
    `the callers and simulated agents alone (other machines in a deployment) took ${run.benchCpuMsPerJob.toFixed(2)} ms, the control plane ${run.controlPlaneCpuMsPerJob.toFixed(2)} ms.`
  );
}

function report(
  o: ThroughputOptions,
  grid: GridVariant[],
  graphile: GraphileVariant[],
  idle: Outcome<DispatchLatencyRun>,
  halfLoad: Outcome<DispatchLatencyRun>,
  halfRate: number,
  graphileLatency: Outcome<number[]>,
): Section {
  const figures: Figure[] = [];
  const notes: string[] = [];
  const checks = new Set<string>();
  const graphileMedian = (mode: GraphileMode) => {
    const v = graphile.find((g) => g.mode === mode)!;
    return v.failure || v.runs.length === 0 ? undefined : spread(v.runs.map((r) => r.jobsPerSecond)).median;
  };
  const spreadText = (s: Spread, format: (n: number) => string, unit: string) => `${format(s.min)} / ${format(s.median)} / ${format(s.max)} ${unit}`;
  const cpuText = (n: number) => n.toFixed(3);

  for (const [i, v] of grid.entries()) {
    const label = variantLabel(v, o);
    const headline = i === 0 || v.submit === 'SubmitJobs';
    const target = headline ? TARGETS.jobsPerSecond.text : '—';
    if (v.failure) {
      figures.push(failed(`${label}: jobs/s`, v.failure, target));
      continue;
    }
    for (const r of v.runs) r.check.checked.forEach((c) => checks.add(c));
    const jps = spread(v.runs.map((r) => r.jobsPerSecond));
    const pg = spread(v.runs.map((r) => r.postgresCpuMsPerJob));
    figures.push(measured(`${label}: jobs/s`, spreadText(jps, perSecond, 'jobs/s'), target, headline ? verdict(jps.median, TARGETS.jobsPerSecond) : ''));
    if (headline) {
      const batched = graphileMedian('batched');
      figures.push(
        batched === undefined
          ? failed(`${label}: against graphile-worker batched`, 'no graphile-worker batched figure', '≥ graphile-worker batched')
          : measured(
              `${label}: against graphile-worker batched`,
              `${(jps.median / batched).toFixed(2)}× (median ${perSecond(jps.median)} vs ${perSecond(batched)} jobs/s)`,
              '≥ 1× graphile-worker batched',
              jps.median >= batched ? 'met' : `missed: ${(batched / jps.median).toFixed(1)}× short`,
            ),
      );
    }
    figures.push(
      measured(`${label}: Postgres CPU per job`, spreadText(pg, cpuText, 'ms'), headline ? TARGETS.postgresCpuMsPerJob.text : '—', headline ? verdict(pg.median, TARGETS.postgresCpuMsPerJob) : ''),
    );
    const median = medianRun(v.runs);
    notes.push(
      `${label}, median run: control plane ${median.controlPlaneCpuMsPerJob.toFixed(2)} ms CPU/job, ` +
        `benchmark process (callers + simulated agents) ${median.benchCpuMsPerJob.toFixed(2)} ms CPU/job; ` +
        `submit → Assignment under this load p50 ${ms(median.submitToAssignment.p50)} ms, p99 ${ms(median.submitToAssignment.p99)} ms ` +
        `(stored → assigned, Postgres clock: p50 ${ms(median.storedToAssigned.p50)} ms, p99 ${ms(median.storedToAssigned.p99)} ms); ` +
        `reconciliation repairs (all runs): ${describeRepairs(sumRepairs(v.runs))}.`,
    );
    if (headline && jps.median < Math.max(TARGETS.jobsPerSecond.bound, graphileMedian('batched') ?? 0)) notes.push(cpuBound(label, median, jps.median, graphileMedian('batched')));
  }

  for (const v of graphile) {
    const label = `graphile-worker 0.18.0, ${v.mode === 'batched' ? 'batched (local queue 500, batched completions)' : 'unbatched (no local queue, no batching)'}`;
    if (v.failure) {
      figures.push(failed(`${label}: jobs/s`, v.failure));
      continue;
    }
    for (const r of v.runs) r.checked.forEach((c) => checks.add(`graphile-worker: ${c}`));
    figures.push(measured(`${label}: jobs/s`, spreadText(spread(v.runs.map((r) => r.jobsPerSecond)), perSecond, 'jobs/s')));
    figures.push(measured(`${label}: Postgres CPU per job`, spreadText(spread(v.runs.map((r) => r.postgresCpuMsPerJob)), cpuText, 'ms')));
  }

  const gridHeadline = grid[0]!;
  if (!gridHeadline.failure && gridHeadline.runs.length > 0) {
    const median = spread(gridHeadline.runs.map((r) => r.jobsPerSecond)).median;
    const ratio = (mode: GraphileMode) => {
      const m = graphileMedian(mode);
      return m === undefined ? `n/a (graphile-worker ${mode} FAILED)` : `${(median / m).toFixed(3)}×`;
    };
    notes.unshift(
      `Ratios of medians, Grid (${gridHeadline.agents} agents, SubmitJob) / graphile-worker: unbatched ${ratio('unbatched')}, batched ${ratio('batched')}.`,
    );
  }

  const latencyFigures = (label: string, outcome: Outcome<DispatchLatencyRun>, p50: typeof TARGETS.idleP50, p99: typeof TARGETS.idleP99) => {
    if (!outcome.ok) return figures.push(failed(label, outcome.reason, `${p50.text}, ${p99.text}`));
    outcome.value.check.checked.forEach((c) => checks.add(c));
    const s = summarize(outcome.value.latencies);
    figures.push(measured(`${label}: p50`, `${ms(s.p50)} ms (${s.samples} samples)`, p50.text, verdict(s.p50, p50)));
    figures.push(measured(`${label}: p99`, `${ms(s.p99)} ms (max ${ms(s.max)})`, p99.text, verdict(s.p99, p99)));
    return undefined;
  };
  const agents = gridHeadline.agents;
  latencyFigures(`Grid dispatch, submit → Assignment at the simulated agent, ${agents} agents, idle`, idle, TARGETS.idleP50, TARGETS.idleP99);
  if (idle.ok && idle.value.floor) {
    const hop = (what: string, samples: number[]) => {
      const s = summarize(samples);
      figures.push(measured(`This machine's floor, after the same ~10 ms idle gap: ${what}`, `p50 ${ms(s.p50)} ms, p99 ${ms(s.p99)} ms (${s.samples} samples)`));
    };
    hop('a no-op gRPC round trip to the control plane (ListRuntimes)', idle.value.floor.grpcNoop);
    hop('a SELECT 1 round trip to PostgreSQL', idle.value.floor.postgresSelect);
    const floor = summarize(idle.value.floor.grpcNoop).p50 + summarize(idle.value.floor.postgresSelect).p50;
    notes.push(
      `What bounds idle dispatch: a sample crosses a gRPC call, a PostgreSQL commit and a stream message to the agent, each woken from idle; ` +
        `the no-op gRPC and SELECT 1 round trips after the same gap already take ${ms(floor)} ms at p50 together, against the ${TARGETS.idleP50.text} target, before any work.`,
    );
  }
  latencyFigures(
    `Grid dispatch, ${agents} agents, under half-load (${halfLoad.ok ? perSecond(halfLoad.value.backgroundJobsPerSecond) : perSecond(halfRate)} jobs/s background)`,
    halfLoad,
    TARGETS.halfLoadP50,
    TARGETS.halfLoadP99,
  );
  const headlineRun = !gridHeadline.failure && gridHeadline.runs.length > 0 ? medianRun(gridHeadline.runs) : undefined;
  if (halfLoad.ok && headlineRun) {
    const perJob = headlineRun.controlPlaneCpuMsPerJob + headlineRun.benchCpuMsPerJob + headlineRun.postgresCpuMsPerJob;
    const busy = (halfLoad.value.backgroundJobsPerSecond * perJob) / (availableParallelism() * 10);
    notes.push(
      `What bounds dispatch under half-load: at ${perSecond(halfLoad.value.backgroundJobsPerSecond)} jobs/s the three processes keep about ${Math.round(busy)} % of the ` +
        `${availableParallelism()} cores busy (${perJob.toFixed(2)} ms CPU per job, median SubmitJob run), so a sample waits in their run queues and behind the group commits in flight, ` +
        `on top of the idle floor above.`,
    );
  }
  if (halfLoad.ok && halfLoad.value.backgroundJobsPerSecond < halfRate * 0.9) {
    notes.push(`The half-load background reached ${perSecond(halfLoad.value.backgroundJobsPerSecond)} of the ${perSecond(halfRate)} jobs/s asked for (64 calls in flight at most).`);
  }
  if (graphileLatency.ok) {
    const s: Summary = summarize(graphileLatency.value);
    figures.push(measured('graphile-worker add → handler start, idle (unbatched)', `p50 ${ms(s.p50)} ms, p99 ${ms(s.p99)} ms, max ${ms(s.max)} (${s.samples} samples)`));
  } else {
    figures.push(failed('graphile-worker add → handler start, idle (unbatched)', graphileLatency.reason));
  }

  return {
    scenario: 'throughput',
    title: 'Throughput: Grid with simulated agents against graphile-worker',
    command: 'npm run bench -- throughput',
    about: [
      `${o.jobs.toLocaleString('en-US')} trivial jobs (busybox \`true\`) per run, ${o.runs} run${o.runs === 1 ? '' : 's'}, Grid and graphile-worker interleaved in each, on one PostgreSQL, each run in its own fresh database.`,
      `Grid: the control plane as its own process at its defaults; SIMULATED agents (bench/simulated-agent.ts: the real AgentService.Connect stream over real sockets, 8 slots each, every Assignment reported finished at once in one report, as the real agent reports a task that ends within its 20 ms report window; a real container of \`true\` takes ~190 ms and is reported started, then finished, which the row "started and finished reported apart" measures) in the benchmark process;`,
      `${o.callers} concurrent SubmitJob callers. jobs/s = jobs / (first submit → last jobFinished acknowledged).`,
      `graphile-worker 0.18.0 in this process, a no-op task, concurrency ${GRAPHILE_CONCURRENCY} (pool ${GRAPHILE_CONCURRENCY + 2}), jobs added ${o.batchSize.toLocaleString('en-US')} per addJobs call by up to ${o.callers} callers; jobs/s = jobs / (first add → queue empty).`,
      'Postgres CPU per job = utime + stime of every PostgreSQL server process over the run (postmaster children that exited included) / jobs:',
      'it includes background processes (WAL writer, checkpointer, autovacuum) and anything else using this PostgreSQL meanwhile.',
      `Dispatch latency: one job at a time, ${o.latencySamples} samples; under half-load, other callers submit at half the median jobs/s of the first Grid row.`,
    ].join('\n'),
    figures,
    notes,
    checks: [...checks],
  };
}

function medianRun(runs: ThroughputRun[]): ThroughputRun {
  const sorted = [...runs].sort((a, b) => a.jobsPerSecond - b.jobsPerSecond);
  return sorted[Math.ceil(sorted.length / 2) - 1]!;
}

function sumRepairs(runs: ThroughputRun[]): Repairs {
  return runs.map((r) => r.repairs).reduce(addRepairs, NO_REPAIRS);
}
