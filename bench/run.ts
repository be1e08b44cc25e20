// npm run bench [-- SCENARIO...] [--smoke] [--out FILE] [--runs N] [--jobs N] [--agents 16,4,64] [--idle-agents 20000]
//
// Measures Grid on this machine against the real stack (PostgreSQL, separate
// processes over real sockets, Docker) and prints the figures. Tests never
// assert timings; this is where they live.
// - `npm run bench` runs every scenario and writes BENCHMARKS.md.
// - `npm run bench -- throughput` (or `latency`) runs only that scenario and
//   prints its table; it writes a file only when given --out, so BENCHMARKS.md
//   always holds one complete run of every scenario.
// - `--smoke` shrinks every scenario (e.g. 200 jobs, 1 run, 20 samples) to
//   show it still works; it never writes BENCHMARKS.md, only --out if given.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchmarksMarkdown, sectionMarkdown } from './report.js';
import { runScenarios, SCENARIOS } from './scenarios.js';

const BENCHMARKS = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));

const loadAtStart = loadavg()[0]!;

function describeMachine(): string {
  const version = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0];
    } catch {
      return 'unknown';
    }
  };
  return [
    `${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `Node ${process.version}, Docker ${version('docker', ['version', '--format', '{{.Server.Version}}'])}, ${version('psql', ['--version'])}`,
    // Anything else running skews every figure: say how busy the machine was.
    `1-minute load average at the start: ${loadAtStart.toFixed(2)}`,
  ].join('; ');
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
    runs: { type: 'string' },
    jobs: { type: 'string' },
    agents: { type: 'string' },
    'idle-agents': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    `usage: npm run bench [-- SCENARIO...] [--smoke] [--out FILE] [--runs N] [--jobs N] [--agents 16,4,64] [--idle-agents 20000]\nscenarios: ${SCENARIOS.map((s) => `${s.name} (${s.about})`).join('; ')}\n`,
  );
  process.exit(0);
}
const count = (text: string | undefined, flag: string) => {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, not ${text}`);
  return n;
};
const whole = positionals.length === 0;
const out = values.out ? resolve(values.out) : whole && !values.smoke ? BENCHMARKS : undefined;
if (values.smoke && out === BENCHMARKS) throw new Error('a smoke run measures nothing: it never writes BENCHMARKS.md (give --out another file)');
const runs = count(values.runs, 'runs');
const jobs = count(values.jobs, 'jobs');
const agentCounts = values.agents?.split(',').map((n) => count(n, 'agents')!);
const idleAgents = count(values['idle-agents'], 'idle-agents');

const sections = await runScenarios(positionals, { smoke: values.smoke, runs, jobs, agentCounts, idleAgents });
// The command that reproduces a section is the one that made it, flags included.
const flags = [values.smoke ? '--smoke' : '', runs ? `--runs ${runs}` : '', jobs ? `--jobs ${jobs}` : '', values.agents ? `--agents ${values.agents}` : '', idleAgents ? `--idle-agents ${idleAgents}` : '']
  .filter(Boolean)
  .join(' ');
for (const s of sections) if (flags) s.command = `${s.command} ${flags}`;

const markdown = benchmarksMarkdown(sections, describeMachine(), new Date().toISOString().slice(0, 10), values.smoke);
process.stdout.write(sections.map(sectionMarkdown).join('\n'));
if (out) {
  writeFileSync(out, markdown);
  process.stderr.write(`bench: written to ${out}\n`);
}
// Exit 1 when anything FAILED, so a script or CI notices without reading the table.
process.exit(sections.some((s) => s.figures.some((f) => f.failed)) ? 1 : 0);
