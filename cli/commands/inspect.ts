// gridctl status, list, nodes and logs: reading what Grid knows.
import { Job, JobAttempt, JobState, LogStream, type LogChunk } from '../../common/gen/grid/v1/job.js';
import { LineWriter, tailChunks } from '../log-lines.js';
import { Node } from '../../common/gen/grid/v1/node.js';
import { stateFromDb } from '../../common/job-state.js';
import { callOptions, type GridClients } from '../client.js';
import { exitCodeFor } from '../exit-codes.js';
import { followJob } from '../follow.js';
import { watchOutput } from '../watch.js';
import { isMachine, jobDetails, jobsTable, machine, nodesTable, runtimesTable, truncationNote } from '../format.js';

export type Output = 'table' | 'wide' | 'json' | 'yaml';

export async function statusCommand(clients: GridClients, jobId: string, output: Output, watch = false): Promise<number> {
  const render = async () => {
    const { job, attempts } = await clients.jobs.getJob({ jobId }, callOptions());
    // The attempt history rides along with the job (an added key: readers of the job's own keys are unaffected).
    return isMachine(output)
      ? machine(output, { ...(Job.toJSON(job!) as object), attempts: attempts.map((a) => JobAttempt.toJSON(a)) })
      : jobDetails(job!, attempts);
  };
  return shown(clients, render, watch);
}

/** The output once, or (--watch) again and again until Ctrl-C. */
async function shown(clients: GridClients, render: () => Promise<string>, watch: boolean): Promise<number> {
  if (watch) return watchOutput(render, { server: clients.server });
  process.stdout.write(await render());
  return 0;
}

export function parseStates(text: string | undefined): JobState[] {
  if (!text) return [];
  return text.split(',').map((s) => {
    try {
      return stateFromDb(s.trim().toUpperCase());
    } catch {
      throw new Error(`unknown state "${s}"; use queued, assigned, running, cancelling, succeeded, failed or cancelled`);
    }
  });
}

export async function listCommand(
  clients: GridClients,
  options: { state?: string; limit: number; output: Output; quiet?: boolean; headers?: boolean; node?: string; since?: number },
  watch = false,
): Promise<number> {
  const states = parseStates(options.state);
  return shown(clients, () => renderList(clients, states, options), watch);
}

async function renderList(
  clients: GridClients,
  states: JobState[],
  options: { limit: number; output: Output; quiet?: boolean; headers?: boolean; node?: string; since?: number },
): Promise<string> {
  const filters = { nodeId: options.node ?? '', submittedAfter: options.since === undefined ? undefined : new Date(Date.now() - options.since) };
  const jobs: Job[] = [];
  let pageToken = '';
  do {
    const page = await clients.jobs.listJobs(
      { states, pageSize: Math.min(options.limit - jobs.length, 1000), pageToken, ...filters },
      callOptions(),
    );
    jobs.push(...page.jobs);
    pageToken = page.nextPageToken;
  } while (pageToken && jobs.length < options.limit);
  if (options.quiet) return jobs.map((j) => `${j.id}\n`).join('');
  return isMachine(options.output) ? machine(options.output, jobs.map((j) => Job.toJSON(j))) : withoutHeader(jobsTable(jobs, options.output === 'wide'), options.headers);
}

/** A table, or (--no-headers) its rows alone. */
function withoutHeader(table: string, headers = true): string {
  return headers ? table : table.slice(table.indexOf('\n') + 1);
}

export async function nodesCommand(clients: GridClients, options: { output: Output; quiet?: boolean; headers?: boolean }, watch = false): Promise<number> {
  return shown(clients, () => renderNodes(clients, options), watch);
}

async function renderNodes(clients: GridClients, options: { output: Output; quiet?: boolean; headers?: boolean }): Promise<string> {
  const nodes: Node[] = [];
  let pageToken = '';
  do {
    const page = await clients.nodes.listNodes({ pageSize: 1000, pageToken }, callOptions());
    nodes.push(...page.nodes);
    pageToken = page.nextPageToken;
  } while (pageToken);
  if (options.quiet) return nodes.map((n) => `${n.id}\n`).join('');
  return isMachine(options.output) ? machine(options.output, nodes.map((n) => Node.toJSON(n))) : withoutHeader(nodesTable(nodes, options.output === 'wide'), options.headers);
}

export interface LogsOptions {
  follow?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  timestamps?: boolean;
  tail?: number;
}

export async function logsCommand(clients: GridClients, jobId: string, options: LogsOptions): Promise<number> {
  const both = !options.stdout && !options.stderr;
  const wantOut = both || !!options.stdout;
  const wantErr = both || !!options.stderr;
  const writers = { stdout: new LineWriter(process.stdout, options.timestamps), stderr: new LineWriter(process.stderr, options.timestamps) };
  let code = 0;
  let final: Job | undefined;
  const shown = { stdout: 0, stderr: 0 };
  if (options.tail !== undefined) {
    // The last N lines of each stream stored so far, then (with -f) what follows.
    const chunks: LogChunk[] = [];
    for await (const { chunk } of clients.jobs.readJobLogs({ jobId, attempt: 0, stream: LogStream.LOG_STREAM_UNSPECIFIED })) {
      if (!chunk) continue;
      chunks.push(chunk);
      const end = Number(chunk.offset) + chunk.data.length;
      if (chunk.stream === LogStream.LOG_STREAM_STDOUT) shown.stdout = Math.max(shown.stdout, end);
      else shown.stderr = Math.max(shown.stderr, end);
    }
    for (const chunk of tailChunks(chunks, options.tail)) {
      if (chunk.stream === LogStream.LOG_STREAM_STDOUT ? wantOut : wantErr) write(writers, chunk);
    }
  }
  if (options.follow) {
    final = await followJob(clients, jobId, {
      includeLogs: true,
      stdout: false,
      stderr: false,
      // With --tail the control plane has answered already.
      reachable: options.tail !== undefined,
      from: options.tail !== undefined ? shown : undefined,
      onChunk: (chunk) => {
        if (chunk.stream === LogStream.LOG_STREAM_STDOUT ? wantOut : wantErr) write(writers, chunk);
      },
    });
    code = exitCodeFor(final);
  } else if (options.tail === undefined) {
    const stream = both ? LogStream.LOG_STREAM_UNSPECIFIED : wantOut ? LogStream.LOG_STREAM_STDOUT : LogStream.LOG_STREAM_STDERR;
    for await (const { chunk } of clients.jobs.readJobLogs({ jobId, attempt: 0, stream })) if (chunk) write(writers, chunk);
  }
  final ??= (await clients.jobs.getJob({ jobId }, callOptions())).job;
  const note = final && truncationNote(final);
  if (note) process.stderr.write(note + '\n');
  return code;
}

function write(writers: { stdout: LineWriter; stderr: LineWriter }, chunk: LogChunk): void {
  (chunk.stream === LogStream.LOG_STREAM_STDOUT ? writers.stdout : writers.stderr).write(chunk.data, chunk.time);
}

export async function runtimesCommand(clients: GridClients, output: Output): Promise<number> {
  const { runtimes } = await clients.jobs.listRuntimes({}, callOptions());
  process.stdout.write(isMachine(output) ? machine(output, runtimes) : runtimesTable(runtimes));
  return 0;
}
