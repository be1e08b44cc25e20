// The smoke of every benchmark scenario (`npm run bench -- --smoke` in
// miniature), so that none rots between full runs: each must still produce its
// figures, none FAILED, with its correctness checks run. Timings are never
// asserted here; the figures of a smoke measure nothing.
import test from 'ava';
import { sectionMarkdown } from '../../bench/report.js';
import { runScenarios, SCENARIOS } from '../../bench/scenarios.js';
import { BIN } from '../helpers/grid.js';

for (const scenario of SCENARIOS) {
  test.serial(`the ${scenario.name} benchmark still runs`, async (t) => {
    t.timeout(120_000); // well under it on 2 cores; a hung scenario still ends the test
    // The one scenario that needs another build (baseline) compares this build with itself in a smoke.
    if (scenario.needs) process.env[scenario.needs] ??= BIN.controlPlane;
    const [section] = await runScenarios([scenario.name], { smoke: true });
    const failures = section!.figures.filter((f) => f.failed).map((f) => `${f.what}: ${f.value}`);
    t.deepEqual(failures, [], 'no figure FAILED');
    t.true(section!.figures.length > 0, 'it produced figures');
    t.true(section!.checks.length > 0, 'its correctness checks ran');
    t.false(sectionMarkdown(section!).includes('FAILED'));
  });
}
