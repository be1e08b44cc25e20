// gridctl status, list, nodes and logs: reading what Grid knows.
import { Job, JobState, LogStream } from '../../common/gen/grid/v1/job.js';
import { Node } from '../../common/gen/grid/v1/node.js';
import { stateFromDb } from '../../common/job-state.js';
import { callOptions, type GridClients } from '../client.js';
import { exitCodeFor } from '../exit-codes.js';
import { followJob } from '../follow.js';
import { jobDetails, jobsTable, json, nodesTable } from '../format.js';

export type Output = 'table' | 'json';

export async function statusCommand(clients: GridClients, jobId: string, output: Output): Promise<number> {
  const { job } = await clients.jobs.getJob({ jobId }, callOptions());
  process.stdout.write(output === 'json' ? json(Job.toJSON(job!)) : jobDetails(job!));
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
  options: { state?: string; limit: number; output: Output },
): Promise<number> {
  const states = parseStates(options.state);
  const jobs: Job[] = [];
  let pageToken = '';
  do {
    const page = await clients.jobs.listJobs(
      { states, pageSize: Math.min(options.limit - jobs.length, 1000), pageToken },
      callOptions(),
    );
    jobs.push(...page.jobs);
    pageToken = page.nextPageToken;
  } while (pageToken && jobs.length < options.limit);
  process.stdout.write(options.output === 'json' ? json(jobs.map((j) => Job.toJSON(j))) : jobsTable(jobs));
  return 0;
}

export async function nodesCommand(clients: GridClients, output: Output): Promise<number> {
  const { nodes } = await clients.nodes.listNodes({}, callOptions());
  process.stdout.write(output === 'json' ? json(nodes.map((n) => Node.toJSON(n))) : nodesTable(nodes));
  return 0;
}

export async function logsCommand(
  clients: GridClients,
  jobId: string,
  options: { follow?: boolean; stdout?: boolean; stderr?: boolean },
): Promise<number> {
  const both = !options.stdout && !options.stderr;
  const wantOut = both || !!options.stdout;
  const wantErr = both || !!options.stderr;
  if (options.follow) {
    const final = await followJob(clients, jobId, { includeLogs: true, stdout: wantOut, stderr: wantErr });
    return exitCodeFor(final);
  }
  const stream = both ? LogStream.LOG_STREAM_UNSPECIFIED : wantOut ? LogStream.LOG_STREAM_STDOUT : LogStream.LOG_STREAM_STDERR;
  for await (const { chunk } of clients.jobs.readJobLogs({ jobId, attempt: 0, stream })) {
    if (!chunk) continue;
    (chunk.stream === LogStream.LOG_STREAM_STDOUT ? process.stdout : process.stderr).write(chunk.data);
  }
  return 0;
}
