// The fault test's short run in the suite (the long one is `npm run chaos`; both
// are test/chaos/scenario.ts): 300 jobs through two control planes and three
// agents while agents are SIGKILLed and frozen, a control plane is SIGKILLed and
// PostgreSQL restarts immediately, with random cancels. Every accepted job must
// exist once, end once and agree with its history and output, a cancel must
// stick, and no container of the test's agents may be left.
import test from 'ava';
import { describeSummary, runFaultScenario } from '../chaos/scenario.js';

test('300 jobs through agent, control plane and PostgreSQL faults and cancels: every job accounted for, no container left', async (t) => {
  // About 1.5 min alone on this 2-core machine; more while other files fill Docker.
  t.timeout(240_000);
  const timeline: string[] = [];
  const summary = await runFaultScenario({
    jobs: 300,
    agents: 3,
    replicas: 2,
    chaosMs: 25_000,
    settleMs: 150_000,
    stallMs: 20_000,
    log: (line) => timeline.push(line),
  });
  t.log(describeSummary(summary));
  if (summary.violations.length > 0) t.log(`timeline:\n${timeline.join('\n')}`);
  t.is(summary.violations.length, 0, 'the violations are listed in the summary above');
});
