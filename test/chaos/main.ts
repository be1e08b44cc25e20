// npm run chaos: the fault test's long run (test/chaos/scenario.ts) against the
// built dist/. Writes the summary, Markdown with the full JSON below it, to a
// file outside the checkout (the OS temp dir unless --out says otherwise), next
// to the log of every process of the run, and prints its path. Exits 1 when
// the run found violations.
import { Command } from 'commander';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseDurationFlag, parseIntFlag } from '../../common/cli-options.js';
import { describeSummary, runFaultScenario } from './scenario.js';

const flags = new Command('chaos')
  .description('Runs Grid through agent, control plane and PostgreSQL faults and checks every job afterwards.')
  .option('--jobs <n>', 'jobs to submit', parseIntFlag, 1000)
  .option('--agents <n>', 'agents, split across the two control planes', parseIntFlag, 3)
  .option('--chaos <duration>', 'how long faults are injected', parseDurationFlag, 60_000)
  .option('--settle <duration>', 'longest wait afterwards for every job to end (default: 3m, or 0.5 s per job if more)', parseDurationFlag)
  .option('--out <file>', 'where to write the summary (default: a new directory under the OS temp dir)')
  .parse()
  .opts<{ jobs: number; agents: number; chaos: number; settle?: number; out?: string }>();

const runDir = mkdtempSync(join(tmpdir(), 'grid-chaos-'));
const out = resolve(flags.out ?? join(runDir, 'summary.md'));
// The test helpers keep each process's log in this directory (see startProgram).
process.env.GRID_TEST_LOG_DIR ??= join(runDir, 'logs');
mkdirSync(process.env.GRID_TEST_LOG_DIR, { recursive: true });

const timeline: string[] = [];
const summary = await runFaultScenario({
  jobs: flags.jobs,
  agents: flags.agents,
  replicas: 2,
  chaosMs: flags.chaos,
  settleMs: flags.settle,
  log: (line) => {
    timeline.push(line);
    process.stderr.write(`chaos: ${line}\n`);
  },
});

mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `# Grid fault run, ${new Date().toISOString()}

${describeSummary(summary)}

Process logs: ${process.env.GRID_TEST_LOG_DIR}

### Timeline

\`\`\`
${timeline.join('\n')}
\`\`\`

### Summary as JSON

\`\`\`json
${JSON.stringify(summary, null, 2)}
\`\`\`
`,
);
process.stdout.write(`${describeSummary(summary)}\n\nsummary written to ${out}\n`);
process.exit(summary.violations.length === 0 ? 0 : 1);
