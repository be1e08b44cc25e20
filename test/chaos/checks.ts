// What a fault run must leave behind, checked from the rows of the jobs,
// job_attempts and job_logs tables against what the clients were told. Pure: the
// scenario reads the rows, these functions judge them, so every rule is plain
// to read here and the harness cannot blur a rule with its own timing.
//
// For every job the clients know was accepted: it exists once; it ended exactly
// once, with a state that agrees with its end reason; its attempt history has
// one row per attempt, every one but the last lost with its node, the last one
// ended as the job did; a SUCCEEDED job's stdout is its one line; a job that was
// cancelled ended CANCELLED, unless the cancel found it already ended. The job
// command exits 0 by itself, so the only other way for it to end is NODE_LOST
// after its last allowed attempt.

export interface JobRecord {
  id: string;
  request_id: string | null;
  state: string;
  end_reason: string | null;
  attempt: number;
  max_attempts: number;
  /** Attempt numbers that spent none of the budget: withdrawn (no history row) or handed back. */
  withdrawn_attempts: number;
  node_id: string | null;
  exit_code: number | null;
  message: string;
}

export interface AttemptRecord {
  job_id: string;
  attempt: number;
  outcome: string | null;
}

/** What the rows say. `stdout` holds the last attempt's stdout of each SUCCEEDED job. */
export interface Observed {
  jobs: JobRecord[];
  attempts: AttemptRecord[];
  stdout: Map<string, string>;
}

/** What CancelJob answered for one job: the job's state and reason then, or no answer at all. */
export interface CancelAnswer {
  jobId: string;
  answer?: { state: string; endReason: string };
  errors: string[];
  /** How it was sent (replica, grace), for the messages. */
  how?: string;
}

/** What the clients were told. */
export interface Told {
  /** request id → job id, for every submit that was answered. */
  accepted: Map<string, string>;
  /** Request ids whose submit never got an answer: the job may or may not exist. */
  unanswered: Set<string>;
  cancels: CancelAnswer[];
}

export interface Verdict {
  violations: string[];
  /** Jobs in the database whose submit was never answered. */
  committedUnanswered: number;
}

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/** The terminal state an end reason leads to (common/job-state.ts terminalStateFor). */
export function stateForReason(reason: string): string {
  return reason === 'SUCCEEDED' || reason === 'CANCELLED' ? reason : 'FAILED';
}

/**
 * `isStuck` says which unended jobs are stuck; the others were still on their
 * way when the wait was cut short, so they are not judged (the caller says so).
 */
export function judge(observed: Observed, told: Told, isStuck: (jobId: string) => boolean = () => true): Verdict {
  const violations: string[] = [];
  const byId = new Map(observed.jobs.map((j) => [j.id, j]));
  const history = groupAttempts(observed.attempts);
  const cancelled = new Map(told.cancels.map((c) => [c.jobId, c]));

  const acceptedIds = new Map<string, string>();
  for (const [requestId, jobId] of told.accepted) {
    const other = acceptedIds.get(jobId);
    if (other !== undefined) violations.push(`requests ${other} and ${requestId} were both answered with job ${jobId}`);
    acceptedIds.set(jobId, requestId);
    const job = byId.get(jobId);
    if (!job) violations.push(`job ${jobId} (request ${requestId}) was accepted but is not in the database`);
    else if (job.request_id !== requestId) violations.push(`job ${jobId} was accepted for request ${requestId} but is stored with request ${job.request_id}`);
  }

  let committedUnanswered = 0;
  for (const job of observed.jobs) {
    if (!acceptedIds.has(job.id)) {
      if (job.request_id !== null && told.unanswered.has(job.request_id)) committedUnanswered++;
      else violations.push(`job ${job.id} (request ${job.request_id}) is in the database but no submit was answered with it`);
    }
    if (job.end_reason === null && !isStuck(job.id)) continue;
    violations.push(...judgeJob(job, history.get(job.id) ?? [], observed.stdout.get(job.id), cancelled.get(job.id)));
  }
  return { violations, committedUnanswered };
}

function groupAttempts(rows: AttemptRecord[]): Map<string, AttemptRecord[]> {
  const byJob = new Map<string, AttemptRecord[]>();
  for (const row of rows) byJob.set(row.job_id, [...(byJob.get(row.job_id) ?? []), row]);
  for (const list of byJob.values()) list.sort((a, b) => a.attempt - b.attempt);
  return byJob;
}

/** Every rule about one stored job; an empty list when it is all well. */
export function judgeJob(job: JobRecord, attempts: AttemptRecord[], stdout: string | undefined, cancel: CancelAnswer | undefined): string[] {
  const name = `job ${job.id}`;
  if (!TERMINAL.has(job.state) || job.end_reason === null) {
    return [`${name} never ended: ${job.state}, attempt ${job.attempt}, node ${job.node_id ?? 'none'}, "${job.message}"`];
  }
  const found: string[] = [];
  if (stateForReason(job.end_reason) !== job.state) found.push(`${name} is ${job.state} but its end reason is ${job.end_reason}`);
  found.push(...judgeHistory(job, attempts));
  if (job.state === 'SUCCEEDED') {
    const want = `${job.id} ${job.attempt}\n`;
    if (stdout !== want) found.push(`${name} SUCCEEDED with stdout ${JSON.stringify(stdout ?? '')}, not ${JSON.stringify(want)}`);
  }
  found.push(...judgeEnd(job, cancel));
  return found;
}

/**
 * One history row per attempt 1..attempt, but for withdrawn ones (an assignment
 * its node never received leaves none: sql/lose-attempts.ts); all but the last
 * lost or handed back; the last ended as the job did.
 */
function judgeHistory(job: JobRecord, attempts: AttemptRecord[]): string[] {
  const name = `job ${job.id}`;
  const numbers = attempts.map((a) => a.attempt);
  const handedBack = attempts.filter((a) => a.outcome === 'HANDED_BACK').length;
  const withdrawn = job.withdrawn_attempts - handedBack;
  const ascending = numbers.every((n, i) => n >= 1 && n <= job.attempt && (i === 0 || n > numbers[i - 1]!));
  const complete = numbers.length === job.attempt - withdrawn && (numbers.length === 0 || numbers.at(-1) === job.attempt);
  if (!ascending || !complete) {
    return [`${name} is at attempt ${job.attempt} (${job.withdrawn_attempts} not counted) but its history has attempts [${numbers.join(', ')}]`];
  }
  const found: string[] = [];
  for (const a of attempts.slice(0, -1)) {
    if (a.outcome !== 'NODE_LOST' && a.outcome !== 'HANDED_BACK') found.push(`${name} attempt ${a.attempt} was followed by another, yet its outcome is ${a.outcome}`);
  }
  const last = attempts.at(-1);
  if (!last) {
    // Never claimed: only a cancel while queued ends a job that never ran.
    if (job.end_reason !== 'CANCELLED') found.push(`${name} never ran, yet it ended ${job.end_reason}`);
    return found;
  }
  // A job cancelled while queued again, or while CANCELLING on a node that was
  // lost (sql/lose-attempts.ts), ends CANCELLED after a lost attempt.
  const lostThenCancelled = job.end_reason === 'CANCELLED' && last.outcome === 'NODE_LOST';
  if (last.outcome !== job.end_reason && !lostThenCancelled) {
    found.push(`${name} ended ${job.end_reason} but its last attempt (${last.attempt}) has outcome ${last.outcome}`);
  }
  return found;
}

/** How the job may have ended given what its cancel (if any) was answered. */
function judgeEnd(job: JobRecord, cancel: CancelAnswer | undefined): string[] {
  const name = `job ${job.id}`;
  const reason = job.end_reason!;
  if (reason === 'NODE_LOST' && job.attempt - job.withdrawn_attempts < job.max_attempts) {
    return [`${name} ended NODE_LOST after ${job.attempt - job.withdrawn_attempts} of its ${job.max_attempts} attempts`];
  }
  if (!cancel) {
    if (reason === 'CANCELLED') return [`${name} ended CANCELLED, but nobody cancelled it`];
    if (reason !== 'SUCCEEDED' && reason !== 'NODE_LOST') return [`${name} ended ${reason} (exit code ${job.exit_code ?? 'none'}, "${job.message}"), but its command exits 0 and nobody cancelled it`];
    return [];
  }
  const answer = cancel.answer;
  const sent = `its cancel${cancel.how ? ` (${cancel.how})` : ''}`;
  const ended = `${name} on node ${job.node_id ?? 'none'} ended ${job.state}/${reason}`;
  if (!answer) {
    // The cancel may or may not have been committed: any end but a stopped process will do.
    if (reason !== 'SUCCEEDED' && reason !== 'NODE_LOST' && reason !== 'CANCELLED') {
      return [`${ended} (exit code ${job.exit_code ?? 'none'}, "${job.message}") after ${sent} got no answer`];
    }
    return [];
  }
  if (answer.state === 'CANCELLING' || answer.state === 'CANCELLED') {
    if (job.state !== 'CANCELLED') {
      return [`${ended} (exit code ${job.exit_code ?? 'none'}, "${job.message}"), but ${sent} was answered ${answer.state}`];
    }
    return [];
  }
  if (TERMINAL.has(answer.state)) {
    if (job.state !== answer.state || reason !== answer.endReason) {
      return [`${ended}, but ${sent} was answered with the job already ended ${answer.state}/${answer.endReason}`];
    }
    return [];
  }
  // QUEUED, ASSIGNED or RUNNING: the cancel was answered without being applied.
  if (job.state !== 'CANCELLED') return [`${ended}: ${sent} was answered ${answer.state}, so it was never applied`];
  return [];
}
