// gridctl run: submit, then follow the job's output live and exit with its code.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EndReason, JobState, type InputFile, type Job, type JobSpec } from '../../common/gen/grid/v1/job.js';
import { reasonName, stateName } from '../../common/job-state.js';
import { callOptions, isRetryable, type GridClients } from '../client.js';
import { exitCodeFor } from '../exit-codes.js';
import { truncationNote } from '../format.js';
import { colourOn, dim } from '../style.js';
import { startWaitLine, type WaitLine } from '../wait-line.js';
import { createPullDisplay } from '../pull-display.js';
import { runAndFollow } from '../follow.js';
import { buildSpec, type RunFlags, type Workload } from '../run-spec.js';

export interface RunOptions extends RunFlags {
  detach?: boolean;
  /** How image pull progress is shown on stderr: auto (a live line on a terminal, else plain lines), plain (a line per update), none. */
  progress?: 'auto' | 'plain' | 'none';
  /** No grid: status lines: only the job's own output (and why it ended, when no exit code tells). */
  quiet?: boolean;
}

/**
 * The workload from run's operands. A python script takes --requirements FILE,
 * or a requirements.txt found beside it.
 */
export async function readWorkload(
  script: string | undefined,
  rest: string[],
  options: { requirements?: string; runtime?: string } = {},
): Promise<Workload> {
  if (script === undefined) {
    if (rest.length === 0) throw new Error('nothing to run: give a script (gridctl run job.py) or a command after -- (gridctl run -- echo hi)');
    return { kind: 'command', argv: rest };
  }
  let content: Buffer;
  try {
    content = await readFile(script);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new Error(`"${script}" is not a file here; to run a command put it after --: gridctl run -- ${[script, ...rest].join(' ')}`);
    }
    throw new Error(`cannot read ${script}: ${(err as Error).message}`);
  }
  const python = options.runtime ? options.runtime === 'python' : script.endsWith('.py');
  const beside = join(dirname(script), 'requirements.txt');
  const requirementsFile = options.requirements ?? (python && existsSync(beside) ? beside : undefined);
  let requirements: Buffer | undefined;
  if (requirementsFile) {
    try {
      requirements = await readFile(requirementsFile);
    } catch (err) {
      throw new Error(`cannot read requirements ${requirementsFile}: ${(err as Error).message}`);
    }
  }
  return { kind: 'script', name: basename(script), content, args: rest, requirements };
}

export async function submit(clients: GridClients, spec: JobSpec): Promise<Job> {
  // The request id makes a retry after a lost answer return the same job.
  const requestId = randomUUID();
  for (let attempt = 1; ; attempt++) {
    try {
      return (await clients.jobs.submitJob({ spec, requestId }, callOptions())).job!;
    } catch (err) {
      if (!isRetryable(err) || attempt >= 5) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

export async function runCommand(
  clients: GridClients,
  workload: Workload,
  options: RunOptions,
  inputs: InputFile[] = [],
  stdin?: Buffer,
): Promise<number> {
  const spec = buildSpec(options, workload, process.env, inputs, stdin);
  if (options.detach) {
    process.stdout.write((await submit(clients, spec)).id + '\n');
    return 0;
  }
  // Live lines move the cursor: only on a terminal where colour is on too (NO_COLOR
  // asks for output with no escape bytes). Anywhere else (a pipe, CI) the same
  // story comes as plain lines, each naming the job, so a log shows what ran where.
  const live = !options.quiet && process.stderr.isTTY && colourOn();
  const asked = options.progress ?? 'auto';
  const mode = options.quiet ? 'none' : asked === 'auto' ? (live ? 'tty' : 'plain') : asked;
  const pull = createPullDisplay(mode, { write: (text) => process.stderr.write(text), columns: process.stderr.columns });
  let wait: WaitLine | undefined;
  let waiting = '';
  // Known once the control plane stored the job (RunJob's first event).
  let jobId: string | undefined;
  const note = (text: string) => {
    if (options.quiet) return;
    wait?.stop();
    pull.end();
    process.stderr.write(`${dim(`grid: job ${jobId} ${text}`)}\n`);
  };
  let last: JobState | undefined;
  const onInterrupt = () => {
    wait?.stop();
    // The leading newline moves past the ^C, and past a live progress line too.
    process.stderr.write(
      jobId
        ? `\ngrid: stopped following; job ${jobId} goes on (gridctl logs -f ${jobId}, gridctl cancel ${jobId})\n`
        : '\ngrid: stopped before the control plane said the job was stored; if it was, gridctl list shows it\n',
    );
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  try {
    // One stream submits and follows (RunJob); the request id makes a retry the same job.
    const final = await runAndFollow(clients, { spec, requestId: randomUUID() }, {
      includeLogs: true,
      stdout: true,
      stderr: true,
      onSubmitted: (job) => {
        jobId = job.id;
        note('queued');
        // On a terminal, a live line while the job waits to run (see wait-line.ts).
        wait = live ? startWaitLine({ write: (text) => process.stderr.write(text), columns: process.stderr.columns }) : undefined;
      },
      onPullProgress: pull.onPullProgress && ((p) => (wait?.stop(), pull.onPullProgress!(p))),
      // Output never lands on the end of a live line (a pull's done event may be lost).
      onChunk: () => (wait?.stop(), pull.end()),
      onState: (j) => {
        if (j.state === JobState.JOB_STATE_QUEUED || j.state === JobState.JOB_STATE_ASSIGNED) wait?.update(j.state, j.waitingReason);
        else wait?.stop();
        // Without a live line (NO_COLOR), a changed reason is a plain note.
        if (!wait && j.state === JobState.JOB_STATE_QUEUED && j.waitingReason && j.waitingReason !== waiting) note(`queued: ${(waiting = j.waitingReason)}`);
        if (j.state === last) return;
        // Back in the queue after running: a retry on failure (or a lost node); its message says which.
        if (j.state === JobState.JOB_STATE_QUEUED && last !== undefined && last !== JobState.JOB_STATE_QUEUED) note(`queued again: ${j.message}`);
        last = j.state;
        if (j.state === JobState.JOB_STATE_RUNNING) note(`running on ${j.nodeId} (attempt ${j.attempt})`);
      },
    });
    pull.end();
    if (final.endReason !== EndReason.END_REASON_SUCCEEDED && final.endReason !== EndReason.END_REASON_FAILED) {
      // No exit code tells this story: say why the job ended.
      process.stderr.write(`grid: job ${final.id} ended ${stateName(final.state)} (${reasonName(final.endReason)})${final.message ? ': ' + final.message : ''}\n`);
    } else {
      const retried = final.retriesUsed > 0 ? ` on attempt ${final.attempt}, after ${final.retriesUsed} ${final.retriesUsed === 1 ? 'retry' : 'retries'}` : '';
      note(`${stateName(final.state).toLowerCase()}${final.exitCode ? ` with exit code ${final.exitCode}` : ''}${retried}`);
    }
    const truncated = truncationNote(final);
    if (truncated) process.stderr.write(truncated + '\n');
    return exitCodeFor(final);
  } finally {
    wait?.stop();
    pull.end();
    process.removeListener('SIGINT', onInterrupt);
  }
}
