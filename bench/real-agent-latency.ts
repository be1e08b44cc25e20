// The latency scenario: one control plane and one real agent (2 slots) as
// separate processes, real Docker containers. Output → follower, submit →
// assigned and started, cancel → process dead.
import { cancelLatency } from './cancel-latency.js';
import { dispatchLatency } from './dispatch-latency.js';
import { logLatency } from './log-latency.js';
import { measured, ms, type Figure, type Section } from './report.js';
import { startStack } from './stack.js';
import { summarize } from './stats.js';
import { TARGETS, verdict } from './targets.js';

export interface LatencyOptions {
  logLines: number;
  dispatchJobs: number;
  cancelJobs: number;
}

export const FULL: LatencyOptions = { logLines: 100, dispatchJobs: 50, cancelJobs: 10 };
export const SMOKE: LatencyOptions = { logLines: 5, dispatchJobs: 5, cancelJobs: 2 };

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

function percentiles(samples: number[]): string {
  const s = summarize(samples);
  return `p50 ${ms(s.p50)}, p90 ${ms(s.p90)}, p99 ${ms(s.p99)}, max ${ms(s.max)} ms (${s.samples} samples)`;
}

export async function latencyScenario(o: LatencyOptions): Promise<Section> {
  const figures: Figure[] = [];
  const stack = await startStack(['--slots', '2']);
  try {
    log(`print → follower latency (${o.logLines} lines)`);
    figures.push(measured('log line printed → WatchJob follower', percentiles(await logLatency(stack, o.logLines)), '≤ 500 ms (issue 5); ≤ 150 ms (roadmap)'));

    log(`dispatch latency (${o.dispatchJobs} jobs, one at a time)`);
    const dispatch = await dispatchLatency(stack, o.dispatchJobs);
    const assigned = summarize(dispatch.assigned);
    figures.push(
      measured(
        'submit → assigned to the node (Postgres clock, ms resolution)',
        percentiles(dispatch.assigned),
        `${TARGETS.idleP50.text}, ${TARGETS.idleP99.text}`,
        `p50 ${verdict(assigned.p50, TARGETS.idleP50)}, p99 ${verdict(assigned.p99, TARGETS.idleP99)}`,
      ),
    );
    figures.push(measured('submit → container started', percentiles(dispatch.started)));

    log(`cancel latency (${o.cancelJobs} jobs ignoring SIGTERM, grace 0s)`);
    const cancel = await cancelLatency(stack, o.cancelJobs);
    figures.push(measured('cancel (grace 0s) → process dead', percentiles(cancel.gone), '≤ 300 ms (roadmap)'));
    figures.push(measured('cancel (grace 0s) → job reads CANCELLED', percentiles(cancel.cancelled)));
  } finally {
    await stack.stop();
  }
  return {
    scenario: 'latency',
    title: 'Latency: one real agent, real containers',
    command: 'npm run bench -- latency',
    about: 'One control plane and one agent (2 slots) as separate processes, a fresh database on the local PostgreSQL, real Docker containers; one job at a time.',
    figures,
    notes: [],
    // Each measurement throws instead of giving a figure when these do not hold.
    checks: ['every printed line reached the follower', 'every dispatched job ran to its end', 'every cancelled job ended CANCELLED'],
  };
}
