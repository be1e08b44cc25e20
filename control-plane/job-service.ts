// JobService: the public API. Validation happens before anything is written, so a
// refused submission leaves no trace; every answer about a job comes from Postgres.
import type { CallContext } from 'nice-grpc';
import type { Logger } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import {
  JobState,
  LogStream,
  type Job,
  type JobServiceImplementation,
  type LogChunk,
  type SubmitJobRequest,
  type WatchJobRequest,
  type WatchJobResponse,
} from '../common/gen/grid/v1/job.js';
import { AsyncQueue } from '../common/async-queue.js';
import { ErrorReason, failedPrecondition, invalidArgument, isTransientDatabaseError, notFound, reasoned, ServerError, Status } from '../common/errors.js';
import { ALL_STATES, isTerminal, stateFromDb } from '../common/job-state.js';
import { safeNumber } from '../common/units.js';
import type { Sql } from './db/connect.js';
import { type JobEvent, type JobEventBus } from './job-events.js';
import { attemptsOf, getJob, listJobs, outputFilesOf, rowToJob, type JobRow } from './job-store.js';
import type { JobTransitions, NewJob, SubmitOutcome } from './job-transitions.js';
import { outputsKey, type BlobStore } from './blob-store.js';
import { readLogs } from './log-store.js';
import type { RuntimeTable } from './runtime-presets.js';
import { boundedDuration, validateSubmission, type SpecPolicy } from './spec-validation.js';
import type { SecretBox } from './secret-box.js';
import { submitterOf } from './submitter-context.js';
import { waitingReason, type FleetSummary } from './waiting-reason.js';
import { MIN_PREFIX, SHORT_ID_LENGTH, shortIdOf } from '../common/job-id.js';

export interface JobServiceDeps {
  sql: Sql;
  events: JobEventBus;
  transitions: JobTransitions;
  policy: SpecPolicy;
  runtimes: RuntimeTable;
  /** Submissions beyond this many queued jobs get RESOURCE_EXHAUSTED. */
  maxQueued: number;
  /** How often a watch re-reads its job and output from Postgres, in case a notification was lost. */
  watchRecheckMs: number;
  blobs: BlobStore;
  /** Seals spec.secret_env's values; without one, jobs with secrets are refused. */
  secrets?: SecretBox;
  log: Logger;
}

/**
 * A job as answers other than GetJob carry it: its spec without file bytes
 * (script content, input file contents, requirements, stdin), so that a page of a
 * list, or the answer to a submit or a cancel, stays far below any client's
 * message limit however large its jobs' files are (a 12 MiB input is within the
 * spec's cap, and three of them once made every ListJobs RESOURCE_EXHAUSTED).
 */
export function withoutFileBytes(job: Job): Job {
  const spec = job.spec;
  if (!spec) return job;
  const empty = Buffer.alloc(0);
  return {
    ...job,
    spec: {
      ...spec,
      script: spec.script && { ...spec.script, content: empty },
      inputs: spec.inputs.map((f) => ({ ...f, content: empty })),
      requirements: empty,
      stdin: empty,
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEFAULT_PAGE_SIZE = 50;
/** Requests in one SubmitJobs call at most. */
const MAX_SUBMIT_BATCH = 1000;
const MAX_PAGE_SIZE = 1000;

export function createJobService(deps: JobServiceDeps): JobServiceImplementation {
  const { sql } = deps;

  // The fleet for queued jobs' waiting reasons: read at most once a second, and only when a queued job is answered.
  let fleet: { at: number; summary: Promise<FleetSummary> } | undefined;
  function fleetSummary(): Promise<FleetSummary> {
    if (!fleet || performance.now() - fleet.at > 1000) {
      const summary = sql<{ state: string; cpus: number; memory_bytes: number; labels: Record<string, string> | string; draining: boolean }[]>`
        SELECT state, cpus, memory_bytes, labels, drain_requested_at IS NOT NULL AS draining FROM nodes`.then((rows) => ({
        ready: rows
          .filter((r) => r.state === 'READY' && !r.draining)
          .map((r) => ({ cpus: r.cpus, memoryBytes: Number(r.memory_bytes), labels: typeof r.labels === 'string' ? JSON.parse(r.labels) : r.labels })),
        draining: rows.filter((r) => r.state === 'READY' && r.draining).length,
        disconnected: rows.filter((r) => r.state === 'DISCONNECTED').length,
        lost: rows.filter((r) => r.state === 'LOST').length,
      }));
      fleet = { at: performance.now(), summary };
      summary.catch(() => (fleet = undefined));
    }
    return fleet.summary;
  }
  /** The jobs with their waiting reasons set, where they are queued. */
  async function withReasons<T extends Job>(jobs: T[]): Promise<T[]> {
    if (!jobs.some((j) => j.state === JobState.JOB_STATE_QUEUED)) return jobs;
    const summary = await fleetSummary();
    for (const j of jobs) {
      if (j.state !== JobState.JOB_STATE_QUEUED) continue;
      j.waitingReason = waitingReason(
        { cpus: j.spec?.resources?.cpus ?? 0, memoryBytes: Number(j.spec?.resources?.memoryBytes ?? 0n), constraints: j.spec?.constraints },
        summary,
      );
    }
    return jobs;
  }

  /** The job a call names: by its id, or by a unique prefix of its short id (common/short-id.ts). */
  async function requireJob(jobId: string): Promise<JobRow> {
    const id = UUID.test(jobId) ? jobId.toLowerCase() : await resolveShortId(jobId);
    const row = await getJob(sql, id);
    if (!row) throw notFound(`job ${jobId} does not exist`);
    return row;
  }

  async function resolveShortId(prefix: string): Promise<string> {
    const text = prefix.toLowerCase();
    if (!new RegExp(`^[0-9a-f]{${MIN_PREFIX},${SHORT_ID_LENGTH}}$`).test(text)) {
      throw invalidArgument(
        `job id "${prefix.slice(0, 64)}" is neither a job id (a UUID) nor ${MIN_PREFIX}-${SHORT_ID_LENGTH} hex digits of a short id`,
      );
    }
    const found = await sql<{ id: string }[]>`
      SELECT id FROM jobs WHERE right(id::text, ${SHORT_ID_LENGTH}) LIKE ${text + '%'} ORDER BY id DESC LIMIT 11`;
    if (found.length === 0) throw notFound(`no job's short id starts with ${text}`);
    if (found.length > 1) {
      const shown = found.slice(0, 10).map((r) => shortIdOf(r.id));
      throw reasoned(
        Status.INVALID_ARGUMENT,
        `${text} starts the short id of ${found.length > 10 ? 'more than 10' : found.length} jobs: ${shown.join(', ')}; give more of it`,
        ErrorReason.AMBIGUOUS_JOB_ID,
        { candidates: found.slice(0, 10).map((r) => r.id).join(',') },
      );
    }
    return found[0]!.id;
  }

  function validated(request: SubmitJobRequest, submitter: string): NewJob {
    const { spec, task, secrets } = validateSubmission(request.spec, deps.policy, deps.runtimes);
    if (request.requestId.length > 128) throw invalidArgument('request_id is longer than 128 characters');
    // PostgreSQL text cannot hold NUL: stored, it would be an INTERNAL error.
    if (request.requestId.includes('\0')) throw invalidArgument('request_id contains a NUL byte');
    const id = uuidv7();
    if (Object.keys(secrets).length === 0) return { id, spec, task, requestId: request.requestId, submitter };
    if (!deps.secrets) {
      throw failedPrecondition('spec.secret_env needs a control plane with a secret key to seal the values with (--secret-key-file); this one has none');
    }
    return { id, spec, task, requestId: request.requestId, submitter, secrets, sealedSecrets: deps.secrets.seal(id, secrets) };
  }

  function queueFull(): ServerError {
    return reasoned(
      Status.RESOURCE_EXHAUSTED,
      `the queue is full: it holds ${deps.maxQueued} jobs, this server's limit (--max-queued); retry when some have started`,
      ErrorReason.QUEUE_FULL,
      { max_queued: String(deps.maxQueued) },
    );
  }

  async function submitOne(request: SubmitJobRequest, context: CallContext): Promise<Job> {
    const outcome = await deps.transitions.submit(validated(request, submitterOf(context)), deps.maxQueued);
    if (outcome.kind === 'full') throw queueFull();
    if (outcome.kind === 'failed') throw outcome.error;
    return outcome.job;
  }

  return {
    async submitJob(request, context) {
      return { job: withoutFileBytes(await submitOne(request, context)) };
    },

    async submitJobs(request, context) {
      const count = request.requests.length;
      if (count === 0 || count > MAX_SUBMIT_BATCH) {
        throw invalidArgument(`requests holds ${count} submissions: must be between 1 and ${MAX_SUBMIT_BATCH}`);
      }
      // Each request is judged on its own: a bad spec refuses only itself.
      const submitter = submitterOf(context);
      const checked = request.requests.map((r, i) => {
        try {
          return { job: validated(r, submitter) };
        } catch (err) {
          if (!(err instanceof ServerError)) throw err;
          return { refused: { code: err.code, message: `requests[${i}]: ${err.details}` } };
        }
      });
      const valid = checked.flatMap((c) => (c.job ? [c.job] : []));
      const outcomes = await deps.transitions.submitMany(valid, deps.maxQueued);
      let next = 0;
      return {
        results: checked.map((c) => {
          if (c.refused) return { outcome: { $case: 'refused' as const, value: c.refused } };
          const outcome: SubmitOutcome = outcomes[next++]!;
          if (outcome.kind === 'full') return { outcome: { $case: 'refused' as const, value: { code: Status.RESOURCE_EXHAUSTED, message: queueFull().details } } };
          if (outcome.kind === 'failed') {
            // Not stored: worth retrying if the database was only out of reach.
            deps.log.warn({ err: outcome.error }, 'a job of a SubmitJobs call could not be stored');
            const transient = isTransientDatabaseError(outcome.error);
            const message = transient ? 'the job database is unreachable right now; retry this one' : 'internal error storing this job; details are in the control plane\'s log';
            return { outcome: { $case: 'refused' as const, value: { code: transient ? Status.UNAVAILABLE : Status.INTERNAL, message } } };
          }
          return { outcome: { $case: 'job' as const, value: withoutFileBytes(outcome.job) } };
        }),
      };
    },

    async getJob(request) {
      const row = await requireJob(request.jobId);
      const [job] = await withReasons([rowToJob(row)]);
      // The spec whole, but stdin: it is often a credential piped in, and no reader needs it back.
      if (job.spec) job.spec.stdin = Buffer.alloc(0);
      if (row.attempt > 0) job.outputFiles = await outputFilesOf(sql, { jobId: row.id, attempt: row.attempt });
      return { job, attempts: row.attempt > 0 ? await attemptsOf(sql, row.id) : [] };
    },

    async *downloadOutputs(request) {
      const row = await requireJob(request.jobId);
      const key = outputsKey(row.id, row.attempt);
      if (row.attempt === 0 || (await deps.blobs.size(key)) === 0) {
        throw notFound(
          row.output_files_error
            ? `job ${row.id} has no output files: ${row.output_files_error}`
            : `job ${row.id} has no output files${isTerminal(stateFromDb(row.state)) ? ' (it wrote nothing under /grid/out)' : ' yet: they are collected when it ends'}`,
        );
      }
      for await (const data of deps.blobs.read(key)) yield { data };
    },

    async listJobs(request) {
      const pageSize = request.pageSize || DEFAULT_PAGE_SIZE;
      if (pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
        throw invalidArgument(`page_size is ${request.pageSize}: must be between 1 and ${MAX_PAGE_SIZE}`);
      }
      let beforeId: string | undefined;
      if (request.pageToken) {
        beforeId = Buffer.from(request.pageToken, 'base64url').toString();
        if (!UUID.test(beforeId)) throw invalidArgument('page_token is not one this server gave out');
      }
      // An enum value this server does not know (a newer client's, or a wrong
      // number) is refused by name rather than failing the query.
      request.states.forEach((s, i) => {
        if (s !== JobState.JOB_STATE_UNSPECIFIED && !ALL_STATES.includes(s)) {
          throw invalidArgument(`states[${i}] is ${s}, not a job state (known: ${ALL_STATES.map((k) => `${JobState[k]} = ${k}`).join(', ')})`);
        }
      });
      const states = request.states.filter((s) => s !== JobState.JOB_STATE_UNSPECIFIED);
      if (request.nodeId.length > 128) throw invalidArgument('node_id is longer than 128 characters');
      // PostgreSQL text cannot hold NUL: compared, it would be an INTERNAL error.
      if (request.nodeId.includes('\0')) throw invalidArgument('node_id contains a NUL byte');
      const rows = await listJobs(sql, { states, limit: pageSize + 1, beforeId, submittedAfter: request.submittedAfter, nodeId: request.nodeId || undefined });
      const page = rows.slice(0, pageSize);
      return {
        jobs: await withReasons(page.map((row) => withoutFileBytes(rowToJob(row)))),
        nextPageToken: rows.length > pageSize ? Buffer.from(page.at(-1)!.id).toString('base64url') : '',
      };
    },

    async cancelJob(request) {
      const existing = await requireJob(request.jobId);
      // The request's grace (0 s kills at once), else the job's own stop grace.
      const graceMs = request.grace
        ? boundedDuration('grace', request.grace, undefined, deps.policy.maxStopGraceMs)
        : existing.stop_grace_ms;
      await deps.transitions.cancel([existing.id], graceMs);
      // Read again even when the cancel changed nothing: the job may have ended
      // while the cancel waited for its row, and the state read above would
      // answer RUNNING for a job that is over.
      return { job: withoutFileBytes(rowToJob((await getJob(sql, existing.id)) ?? existing)) };
    },

    watchJob(request, ctx) {
      return watch(request, ctx);
    },

    async *runJob(request, ctx) {
      if (!request.submit) throw invalidArgument('submit is missing: give the SubmitJobRequest to run');
      const job = await submitOne(request.submit, ctx);
      yield* watch({ jobId: job.id, includeLogs: request.includeLogs, includeProgress: request.includeProgress, stdoutOffset: 0n, stderrOffset: 0n, attempt: 0 }, ctx);
    },

    async listRuntimes() {
      return { runtimes: [...deps.runtimes.values()].map((r) => ({ ...r })) };
    },

    async *readJobLogs(request) {
      const row = await requireJob(request.jobId);
      const attempt = request.attempt || row.attempt;
      const stream = request.stream === LogStream.LOG_STREAM_UNSPECIFIED ? undefined : request.stream;
      for (const chunk of await readLogs(sql, { jobId: row.id, attempt, stream })) yield { chunk };
    },
  };

  /**
   * Subscribes before reading Postgres, then drops whatever the read already
   * covered: nothing falls between the snapshot and the live events, and nothing
   * is sent twice. Output is de-duplicated by byte offset, states by row version.
   * Events come from this replica's own commits and, through Postgres, from the
   * other replicas' (job-event-feed.ts); before the final event the output is
   * read once more, so none is missed whatever the events' order. A slow
   * safety re-read (watchRecheckMs) covers a notification lost in an outage.
   * Its jobs come without file bytes (withoutFileBytes): a state change does
   * not resend a job's inputs.
   */
  async function* watch(request: WatchJobRequest, ctx: CallContext): AsyncIterable<WatchJobResponse> {
    const initial = await requireJob(request.jobId);
    const queue = new AsyncQueue<JobEvent>();
    const unsubscribe = deps.events.subscribe(initial.id, (e) => queue.push(e));
    const onAbort = () => queue.end();
    ctx.signal.addEventListener('abort', onAbort);
    if (ctx.signal.aborted) queue.end();
    const recheck = setInterval(() => queue.push({ kind: 'resync', jobId: initial.id }), deps.watchRecheckMs);
    try {
      const row = (await getJob(sql, initial.id))!;
      let [job] = await withReasons([rowToJob(row)]);
      let version = row.version;
      let attempt = job.attempt;
      const resuming = request.attempt === 0 || request.attempt === attempt;
      const next = resuming ? { stdout: offsetOf(request.stdoutOffset), stderr: offsetOf(request.stderrOffset) } : { stdout: 0, stderr: 0 };
      /** The watched attempt's stored output past what was sent. */
      async function* storedOutput(): AsyncIterable<WatchJobResponse> {
        if (!request.includeLogs || attempt === 0) return;
        for (const chunk of await readLogs(sql, { jobId: job.id, attempt, fromOffsets: next })) {
          advance(next, chunk.stream, Number(chunk.offset) + chunk.data.length);
          yield { event: { $case: 'log', value: chunk } };
        }
      }
      yield { event: { $case: 'job', value: withoutFileBytes(job) } };
      yield* storedOutput();
      if (isTerminal(job.state)) {
        yield { event: { $case: 'ended', value: withoutFileBytes(job) } };
        return;
      }
      for await (let event of queue) {
        const resync = event.kind === 'resync';
        if (event.kind === 'resync') {
          const row = await getJob(sql, initial.id);
          if (!row) continue;
          const [fresh] = await withReasons([rowToJob(row)]);
          // A queued job's reason changes with the fleet, not with the job's version.
          if (row.version === version && fresh!.waitingReason !== job!.waitingReason) {
            job = fresh!;
            yield { event: { $case: 'job', value: withoutFileBytes(job) } };
            continue;
          }
          event = { kind: 'state', job: fresh!, version: row.version };
        }
        if (event.kind === 'state') {
          if (event.version > version) {
            version = event.version;
            job = event.job;
            const newAttempt = job.attempt !== attempt;
            if (newAttempt) {
              // A new attempt's output starts again at offset 0.
              attempt = job.attempt;
              next.stdout = 0;
              next.stderr = 0;
            }
            if (isTerminal(job.state)) {
              yield* storedOutput();
              yield { event: { $case: 'ended', value: withoutFileBytes(job) } };
              return;
            }
            yield { event: { $case: 'job', value: withoutFileBytes(job) } };
            // Its first output may have come (and been dropped as another attempt's) before this state.
            if (newAttempt && !resync) yield* storedOutput();
          }
          if (resync) yield* storedOutput();
        } else if (event.kind === 'pull') {
          // Not older than the attempt watched: the state event naming a new attempt may still be on its way.
          if (request.includeProgress && event.progress.attempt >= attempt) yield { event: { $case: 'imagePull', value: event.progress } };
        } else if (request.includeLogs && event.chunk.attempt === attempt) {
          const from = event.chunk.stream === LogStream.LOG_STREAM_STDOUT ? next.stdout : next.stderr;
          // Past a gap (an announcement was lost): read what is stored instead, which includes this chunk.
          if (Number(event.chunk.offset) > from) {
            yield* storedOutput();
            continue;
          }
          const chunk = trimToOffset(event.chunk, from);
          if (!chunk) continue;
          advance(next, chunk.stream, Number(chunk.offset) + chunk.data.length);
          yield { event: { $case: 'log', value: chunk } };
        }
      }
    } finally {
      clearInterval(recheck);
      ctx.signal.removeEventListener('abort', onAbort);
      unsubscribe();
      queue.end();
    }
  }
}

function advance(next: { stdout: number; stderr: number }, stream: LogStream, end: number): void {
  if (stream === LogStream.LOG_STREAM_STDOUT) next.stdout = Math.max(next.stdout, end);
  else next.stderr = Math.max(next.stderr, end);
}

function trimToOffset(chunk: LogChunk, from: number): LogChunk | undefined {
  const offset = Number(chunk.offset);
  const end = offset + chunk.data.length;
  if (end <= from) return undefined;
  if (offset >= from) return chunk;
  return { ...chunk, offset: BigInt(from), data: chunk.data.subarray(from - offset) };
}

function offsetOf(value: bigint): number {
  const n = safeNumber(value);
  if (n === undefined || n < 0) throw invalidArgument(`offset ${value} is out of range`);
  return n;
}
