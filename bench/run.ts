// npm run bench: measures Grid's speed on this machine against the real stack
// (PostgreSQL, Docker, separate processes over real sockets) and writes the
// figures to BENCHMARKS.md. Tests never assert timings; this is where they live.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cancelLatency } from './cancel-latency.js';
import { dispatchLatency } from './dispatch-latency.js';
import { logLatency } from './log-latency.js';
import { startStack } from './stack.js';
import { summarize, type Summary } from './stats.js';

interface Row {
  what: string;
  target: string;
  summary: Summary;
}

const OUT = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));

function ms(n: number): string {
  return n < 10 ? n.toFixed(1) : n.toFixed(0);
}

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
  ].join('; ');
}

const rows: Row[] = [];
const stack = await startStack(['--slots', '2']);
try {
  process.stderr.write('bench: print → follower latency (100 lines)\n');
  rows.push({ what: 'log line printed → WatchJob follower', target: '≤ 500 ms (issue 5); ≤ 150 ms (roadmap)', summary: summarize(await logLatency(stack, 100)) });

  process.stderr.write('bench: dispatch latency (50 jobs, one at a time)\n');
  const dispatch = await dispatchLatency(stack, 50);
  rows.push({ what: 'submit → assigned to the node (Postgres clock)', target: 'p50 ≤ 2 ms, p99 ≤ 8 ms (roadmap)', summary: summarize(dispatch.assigned) });
  rows.push({ what: 'submit → container started', target: '—', summary: summarize(dispatch.started) });

  process.stderr.write('bench: cancel latency (10 jobs ignoring SIGTERM, grace 0s)\n');
  const cancel = await cancelLatency(stack, 10);
  rows.push({ what: 'cancel (grace 0s) → process dead', target: '≤ 300 ms (roadmap)', summary: summarize(cancel.gone) });
  rows.push({ what: 'cancel (grace 0s) → job reads CANCELLED', target: '—', summary: summarize(cancel.cancelled) });
} finally {
  await stack.stop();
}

const table = [
  '| what | samples | p50 ms | p90 ms | p99 ms | max ms | target |',
  '|---|---:|---:|---:|---:|---:|---|',
  ...rows.map((r) => `| ${r.what} | ${r.summary.samples} | ${ms(r.summary.p50)} | ${ms(r.summary.p90)} | ${ms(r.summary.p99)} | ${ms(r.summary.max)} | ${r.target} |`),
].join('\n');

writeFileSync(
  OUT,
  `# Benchmarks

Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: one control plane and one agent
(2 slots) as separate processes, a fresh database on the local PostgreSQL, real Docker containers.
Percentiles are nearest-rank. Machine: ${describeMachine()}.

${table}
`,
);
process.stdout.write(table + '\n');
process.stderr.write(`bench: written to ${OUT}\n`);
