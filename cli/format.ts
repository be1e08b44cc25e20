// How gridctl shows jobs and nodes to a person (tables, times, states) or to a
// program (`-o json`, the proto3 JSON mapping, stable for scripts).
import { EndReason, JobState, type ImagePullProgress, type Job, type JobAttempt } from '../common/gen/grid/v1/job.js';
import { NodeState, type Node } from '../common/gen/grid/v1/node.js';
import { reasonName, stateName } from '../common/job-state.js';
import { formatBytes, formatDurationMs } from '../common/units.js';
import { shortIdOf } from '../common/job-id.js';
import { stringify } from 'yaml';

/** Terminal width a table fits by default (`-o wide` does not fit it). */
export const TABLE_WIDTH = 80;

/**
 * Shrinks the named columns (first the first) until the table fits `width`,
 * cutting their cells with "…"; a column keeps at least its header's width.
 */
export function fitted(headers: string[], rows: string[][], width: number, shrink: number[]): string[][] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  let over = widths.reduce((a, b) => a + b, 0) + 2 * (headers.length - 1) - width;
  for (const col of shrink) {
    if (over <= 0) break;
    const least = Math.max(headers[col]!.length, 6);
    const cut = Math.min(over, widths[col]! - least);
    if (cut > 0) {
      widths[col]! -= cut;
      over -= cut;
    }
  }
  return rows.map((r) => r.map((cell, i) => (shrink.includes(i) && cell.length > widths[i]! ? cell.slice(0, widths[i]! - 1) + '…' : cell)));
}

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function time(d: Date | undefined): string {
  if (!d) return '-';
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function ago(d: Date | undefined, now = Date.now()): string {
  return d ? `${formatDurationMs(Math.max(0, now - d.getTime()))} ago` : '-';
}

export function what(job: Job, max = 48): string {
  const spec = job.spec;
  if (!spec) return '';
  const argv = spec.script ? [spec.script.name, ...spec.args] : [...spec.command, ...spec.args];
  const text = argv.map((a) => (/^[\w./:=@%+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

export function stateWithDetail(job: Job): string {
  const state = stateName(job.state);
  if (job.state === JobState.JOB_STATE_FAILED && job.exitCode !== undefined && job.endReason === EndReason.END_REASON_FAILED) {
    return `${state} (exit code ${job.exitCode})`;
  }
  if (job.state === JobState.JOB_STATE_FAILED) return `${state} (${reasonName(job.endReason)})`;
  return state;
}

/** The Attempt row: its number, and what it has spent of each budget that applies. */
function attemptText(job: Job): string {
  const retries = job.spec?.retries ?? 0;
  if (retries > 0) return `${job.attempt} (${job.retriesUsed} of ${retries} ${retries === 1 ? 'retry' : 'retries'} used)`;
  // An attempt that never reached its node spends no try, but keeps its number.
  return job.attempt <= job.maxAttempts ? `${job.attempt} of ${job.maxAttempts}` : `${job.attempt} (${job.maxAttempts} allowed; earlier ones never reached a node)`;
}

/** One line per attempt, when there were several: how each ended. */
function attemptLines(attempts: JobAttempt[]): string[] {
  if (attempts.length < 2) return [];
  return [
    'Attempts:',
    ...attempts.map((a) => {
      const end = a.handedBack ? 'handed back' : a.endedAt ? reasonName(a.endReason) || 'ended' : 'running';
      const code = a.exitCode === undefined ? '' : ` (exit code ${a.exitCode})`;
      return `  ${String(a.attempt).padStart(3)}  ${a.nodeId.padEnd(16)} ${end}${code}${a.endedAt ? `  ${time(a.endedAt)}` : ''}`;
    }),
  ];
}

export function jobDetails(job: Job, attempts: JobAttempt[] = []): string {
  const spec = job.spec!;
  const runtime = job.endedAt && job.startedAt ? formatDurationMs(job.endedAt.getTime() - job.startedAt.getTime()) : '-';
  const rows: [string, string][] = [
    ['Job', job.id],
    ['State', stateName(job.state)],
    ['Reason', reasonName(job.endReason) || job.waitingReason || '-'],
    ['Exit code', job.exitCode === undefined ? '-' : String(job.exitCode)],
    ['Message', job.message || '-'],
    ['Image', spec.image],
    [spec.script ? 'Script' : 'Command', what(job)],
    ['Runtime', spec.script?.runtime || '-'],
    ['Resources', `${spec.resources?.cpus ?? '-'} CPU, ${formatBytes(Number(spec.resources?.memoryBytes ?? 0n))} memory`],
    ['Node', job.nodeId || '-'],
    ['Attempt', attemptText(job)],
    ['Submitted', time(job.submittedAt)],
    ...(job.notBefore ? ([['Not before', time(job.notBefore)]] as [string, string][]) : []),
    ['Started', time(job.startedAt)],
    ['Ended', time(job.endedAt)],
    ['Ran for', runtime],
    ['Output', outputSummary(job)],
    ['Files', job.outputFilesError ? `none kept: ${job.outputFilesError}` : job.outputFiles.length ? `${job.outputFiles.length} under /grid/out (gridctl outputs ${job.id})` : '-'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  const files = job.outputFiles.map((f) => `  ${formatBytes(Number(f.size)).padStart(10)}  ${f.path}`);
  return [...rows.map(([k, v]) => `${(k + ':').padEnd(width)} ${v}`), ...files, ...attemptLines(attempts)].join('\n') + '\n';
}

/** Jobs as a table: 80 columns wide, COMMAND then IMAGE cut to fit; `wide` has full ids and cells. */
export function jobsTable(jobs: Job[], wide = false): string {
  const headers = ['ID', 'STATE', 'EXIT', 'IMAGE', 'COMMAND', 'NODE', 'SUBMITTED'];
  const rows = jobs.map((j) => [
    wide ? j.id : shortIdOf(j.id),
    stateWithDetail(j),
    j.exitCode === undefined ? '-' : String(j.exitCode),
    j.spec?.image ?? '',
    wide ? what(j, Infinity) : what(j),
    j.nodeId || '-',
    ago(j.submittedAt),
  ]);
  // COMMAND, then IMAGE, then NODE give way.
  return table(headers, wide ? rows : fitted(headers, rows, TABLE_WIDTH, [4, 3, 5]));
}

/** A node's labels as the agent's --labels takes them: "k=v,k2=v2", by key; "-" for none. */
export function labelsText(labels: Record<string, string>): string {
  const pairs = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return pairs.length === 0 ? '-' : pairs.map(([k, v]) => `${k}=${v}`).join(',');
}

/** The fleet as a table that fits 80 columns; `wide` adds each node's LABELS (as kubectl's -o wide adds columns). */
export function nodesTable(nodes: Node[], wide = false): string {
  const headers = ['ID', 'NAME', 'STATE', 'JOBS', 'SLOTS', 'CPUS', 'MEMORY', 'VERSION', 'LAST SEEN', ...(wide ? ['LABELS'] : [])];
  const rows = nodes.map((n) => [
    n.id,
    n.name,
    // As kubectl's "Ready,SchedulingDisabled": liveness, then the operator's mark.
    NodeState[n.state].replace('NODE_STATE_', '') + (n.draining ? ',DRAINING' : ''),
    String(n.runningJobs),
    String(n.capacity?.slots ?? 0),
    String(n.capacity?.cpus ?? 0),
    formatBytes(Number(n.capacity?.memoryBytes ?? 0n)),
    n.agentVersion,
    ago(n.lastSeenAt),
    ...(wide ? [labelsText(n.labels)] : []),
  ]);
  return table(headers, rows);
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** A machine format: the proto3 JSON mapping, as JSON or (the same fields) YAML. */
export function machine(format: string, value: unknown): string {
  return format === 'yaml' ? stringify(value) : json(value);
}

export const isMachine = (format: string) => format === 'json' || format === 'yaml';

/** "stdout 50 MiB, stderr 0 B" plus what was kept when the cap cut it. */
export function outputSummary(job: Job): string {
  const o = job.output;
  if (!o) return '-';
  const text = `stdout ${formatBytes(Number(o.stdoutBytes))}, stderr ${formatBytes(Number(o.stderrBytes))}`;
  return o.truncated ? `${text} — TRUNCATED: only the first ${formatBytes(Number(o.capBytes))} of each stream was kept` : text;
}

export function truncationNote(job: Job): string | undefined {
  const o = job.output;
  if (!o?.truncated) return undefined;
  const cut = [
    o.stdoutBytes > o.capBytes ? `stdout (${formatBytes(Number(o.stdoutBytes))} written)` : '',
    o.stderrBytes > o.capBytes ? `stderr (${formatBytes(Number(o.stderrBytes))} written)` : '',
  ].filter(Boolean);
  return `grid: output truncated: ${cut.join(' and ')} kept only its first ${formatBytes(Number(o.capBytes))}`;
}

/** "pulling img: 2/5 layers, 3.1 MiB of 40 MiB", or "pulled img (5 layers, 40 MiB)" when done. */
export function pullProgressLine(p: ImagePullProgress): string {
  const total = Number(p.totalBytes);
  if (p.done) return `pulled ${p.image} (${p.layersTotal} layer${p.layersTotal === 1 ? '' : 's'}, ${formatBytes(total)})`;
  const bytes = total > 0 ? `, ${formatBytes(Number(p.downloadedBytes))} of ${formatBytes(total)}` : '';
  return `pulling ${p.image}: ${p.layersDone}/${p.layersTotal} layers${bytes}`;
}

export function runtimesTable(runtimes: { name: string; image: string; interpreter: string[]; extensions: string[] }[]): string {
  return table(
    ['NAME', 'IMAGE', 'INTERPRETER', 'EXTENSIONS'],
    runtimes.map((r) => [r.name, r.image, r.interpreter.join(' '), r.extensions.join(' ') || '-']),
  );
}
