// The one owner of job transitions on the control plane, as Nomad's alloc
// runner owns an allocation: submit (placed at once on a free node when nothing
// it could pass is queued, submit-placement.ts), claim, start, finish (with
// output), cancel, lose, withdraw (an assignment never sent), expire and backstop. Each is a set-based compare-and-set (control-plane/sql/,
// guards from common/job-state.ts) over many rows at once, and each does every
// follow-up of what it committed here, in one place: publish to watchers, free
// the node's capacity, deliver a cancel, kill a stale container, ask for a
// dispatch pass. Callers (the agent stream, dispatcher, liveness, deadlines, the
// job API) make one call and read its outcome.
import type { Logger } from 'pino';
import { CancelCause, type Task } from '../common/gen/grid/v1/agent.js';
import { EndReason } from '../common/gen/grid/v1/job.js';
import { Job, JobState } from '../common/gen/grid/v1/job.js';
import { attemptKeyOf, type AttemptRef, type FromNode } from '../common/attempt.js';
import { isTransientDatabaseError } from '../common/errors.js';
import { isTerminal, stateFromDb, stateToDb } from '../common/job-state.js';
import type { Sql } from './db/connect.js';
import { publishJobRow, type JobEventBus } from './job-events.js';
import { cancelGraceOf, getJobs, queueDepth, rowToJob } from './job-store.js';
import { createSubmitPacer } from './submit-pacing.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { appendOutputs, type OutputReport } from './log-store.js';
import type { NodeRegistry } from './node-registry.js';
import type { NodeSession } from './node-session.js';
import { createGroupCommit } from './group-commit.js';
import { type ChangedJob } from './sql/changed-job.js';
import { cancelJobs } from './sql/cancel-jobs.js';
import { claimJobs, taskOf, type ClaimedJob } from './sql/claim-jobs.js';
import { secretOpener, type OpenSecrets } from './secret-box.js';
import type { ControlPlaneMetrics } from './metrics.js';
import { submittedAtOf } from '../common/job-id.js';
import { withSecrets } from './spec-validation.js';
import type { NodeOffer, PlacementStrategy } from './scheduler.js';
import { endPastBackstop } from './sql/end-past-backstop.js';
import { expireQueued } from './sql/expire-queued.js';
import { finishAttempts, type FinishReport } from './sql/finish-attempts.js';
import { handBackAttempts, type HandBackReport } from './sql/hand-back-attempts.js';
import { insertJobs, type InsertedJob, type NewJob } from './sql/insert-jobs.js';
import { loseAttempts, loseNode, withdrawAttempts } from './sql/lose-attempts.js';
import { noteWaiting } from './sql/note-waiting.js';
import { startAttempts, type StartReport } from './sql/start-attempts.js';
import { placeOnArrival, type SubmitPlacement } from './submit-placement.js';

export type { NewJob, StartReport, FinishReport, HandBackReport, OutputReport };

/** A report from a node, as its stream carried it. */
export type NodeReport =
  | { kind: 'started'; report: StartReport }
  | { kind: 'output'; report: OutputReport }
  | { kind: 'finished'; report: FinishReport }
  /** The attempt ended as its node stopped it to give the job back (a drain's deadline). */
  | { kind: 'handedBack'; report: HandBackReport };

/**
 * What became of a report: applied; a duplicate of one already applied (a resent
 * report after a lost ack); or stale, from an attempt that is not current (its
 * container is killed).
 */
export type ReportOutcome = 'applied' | 'duplicate' | 'stale';

export type SubmitOutcome =
  | { kind: 'created' | 'existing'; job: Job }
  | { kind: 'full' }
  /** Only from submitMany: this job's group commit failed (nothing of it stored). */
  | { kind: 'failed'; error: unknown };

export interface ClaimResult {
  claimed: number;
  /** No placeable job was left behind: the queue had fewer than the slots offered. */
  exhausted: boolean;
  /** In how long the first queued job not yet due will be (if the claim read the queue's tail). */
  nextDueInMs?: number;
}

export interface JobTransitions {
  /** Stores validated jobs (group-committed with concurrent submits). */
  submit(job: NewJob, maxQueued: number): Promise<SubmitOutcome>;
  /** Each job group-committed as submit() does; a failure is that job's outcome, not the call's. */
  submitMany(jobs: NewJob[], maxQueued: number): Promise<SubmitOutcome[]>;
  /** One claim for the free slots of all these sessions; assignments sent, capacity held. */
  claim(sessions: NodeSession[]): Promise<ClaimResult>;
  /** A node's reports, in stream order, applied in one commit with other nodes' (group commit). */
  report(session: NodeSession, reports: NodeReport[]): Promise<ReportOutcome[]>;
  /** Cancels jobs by the state each is in; returns the rows it changed. */
  cancel(ids: string[], graceMs: number): Promise<ChangedJob[]>;
  /** Attempts a node no longer has: lost. (Ones it never got are withdrawn, in deliver.) */
  lose(session: NodeSession, attempts: AttemptRef[]): Promise<ChangedJob[]>;
  /** The verdict on a lost node, fenced by its generation; undefined when it has moved on. */
  loseNode(nodeId: string, generation: number, why: string): Promise<ChangedJob[] | undefined>;
  /** Queued jobs past their queue timeout. */
  expire(limit: number): Promise<ChangedJob[]>;
  /** Active attempts past their backstop. */
  backstop(limit: number): Promise<ChangedJob[]>;
  /** Keeps why queued jobs wait (no node, none large enough) in their message. */
  noteWaiting(): Promise<number>;
  /** Sends a committed CANCELLING row's cancel to its node if its stream is here and has not had it. */
  deliverCancel(row: ChangedJob): boolean;
  /** Waits for group commits in flight. */
  drain(): Promise<void>;
}

const CANCELLING = stateToDb(JobState.JOB_STATE_CANCELLING);
const QUEUED = stateToDb(JobState.JOB_STATE_QUEUED);
const MAX_GROUP = 1000;
/** Under overload, how long a submitted job should wait for a node at most (about). */
const QUEUE_DELAY_TARGET_MS = 1000;
const HOLD_POLL_MS = 25;
/** A group of submits is held this long at most. */
const HOLD_MAX_MS = 10_000;

export function createJobTransitions(deps: {
  sql: Sql;
  /** Reads the queue's head for claims (db/connect.ts connectQueueHeadReader); default: sql. */
  queueHeadSql?: Sql;
  /** How claims choose among the nodes a job may run on (scheduler.ts); default: spread. */
  placement?: PlacementStrategy;
  /** At most this many active jobs per submitter (submitter-context.ts); 0 or none: no cap. */
  maxRunningPerSubmitter?: number;
  registry: NodeRegistry;
  events: JobEventBus;
  log: Logger;
  backstopMarginMs: number;
  /** Unseals a claimed job's secret env values for its node (secret-box.ts); none: no key. */
  openSecrets?: OpenSecrets;
  /** Counters and histograms for Prometheus (metrics.ts); none: not counted. */
  metrics?: ControlPlaneMetrics;
  /** Asks for a dispatch pass: `queued` when jobs may have become claimable, `capacity` when slots were freed. */
  kick(why: 'queued' | 'capacity'): void;
}): JobTransitions {
  const { sql, registry, events, log } = deps;
  const openSecrets = deps.openSecrets ?? secretOpener(undefined);
  const metrics = deps.metrics;
  /** Runs a hot-path statement group, timed for grid_postgres_statement_seconds. */
  async function timed<T>(statement: string, run: () => Promise<T>): Promise<T> {
    const end = metrics?.statementSeconds.startTimer({ statement });
    try {
      return await run();
    } finally {
      end?.();
    }
  }

  /** Watchers get the whole job: read (one statement) only for the changed jobs someone watches. */
  function publish(rows: { id: string }[]): void {
    const watched = [...new Set(rows.map((r) => r.id).filter((id) => events.hasListeners(id)))];
    if (watched.length === 0) return;
    getJobs(sql, watched).then(
      (full) => full.forEach((row) => publishJobRow(events, row)),
      // Watchers re-read on their own within their recheck interval.
      (err) => log.warn({ err }, 'cannot read changed jobs for their watchers'),
    );
  }

  /** One log line per job that a transition just ended (never for a duplicate report): what operators grep for. */
  function announceEnds(rows: ChangedJob[]): void {
    for (const row of rows) {
      if (!isTerminal(stateFromDb(row.state))) continue;
      log.info(
        { job_id: row.id, attempt: row.attempt, node: row.node_id ?? undefined, state: row.state, reason: row.end_reason ?? undefined, exit_code: row.exit_code ?? undefined },
        'job ended',
      );
      metrics?.jobsEnded.inc({ reason: row.end_reason ?? 'UNKNOWN' });
    }
  }

  function deliverCancel(row: ChangedJob): boolean {
    if (row.state !== CANCELLING || !row.node_id) return false;
    const session = registry.get(row.node_id);
    if (!session || session.judged) return false;
    const attempt = { jobId: row.id, attempt: row.attempt };
    if (session.cancelSentFor(attempt)) return true;
    session.sendCancel(attempt, cancelGraceOf(row), CancelCause.CANCEL_CAUSE_CANCELLED);
    return true;
  }

  // Backpressure: while dispatch runs, a submit waits rather than grow the
  // queue past about a second of dispatch (submit-pacing.ts).
  const pacer = createSubmitPacer({ targetDelayMs: QUEUE_DELAY_TARGET_MS, minHighWater: 1000, windowMs: 5000 });
  let queued = 0;
  // Whether the last claim left placeable work behind (every free slot taken):
  // only then is the queue a backlog that dispatch is working through. Jobs no
  // node can hold, or that wait for room, are not a reason to hold submits.
  let backlog = false;
  // Jobs of groups let through and not yet stored: a group held behind them
  // counts them, or two groups in flight would both pass the same high water.
  let admitted = 0;
  // Of those, jobs of groups not placed whole at submit: they may be stored queued.
  let admittedMayQueue = 0;
  /**
   * Holds a group of submits while dispatch is behind, at most HOLD_MAX_MS (then
   * it goes in: the hold paces, --max-queued limits) and never once the queue
   * is at `maxQueued` (those are refused at once, RESOURCE_EXHAUSTED). Returns
   * once the group may go in, counted in `admitted` until the caller stores it.
   */
  async function admit(count: number, maxQueued: number): Promise<void> {
    const until = performance.now() + HOLD_MAX_MS;
    let held = false;
    while (backlog && queued < maxQueued && performance.now() < until && pacer.shouldHold(queued + admitted, performance.now())) {
      if (!held) log.debug({ queued, admitted, high_water: Math.round(pacer.highWater(performance.now())) }, 'queue past its high water; holding submits');
      held = true;
      await sleep(HOLD_POLL_MS);
      queued = await queueDepth(sql);
    }
    admitted += count;
  }

  // The calls with jobs in a group between admission and its commit (a
  // SubmitJobs call may span two groups in flight at once), each with how many.
  const callsInFlight = new Map<object, number>();
  const submits = createGroupCommit<{ job: NewJob; maxQueued: number; call: object }, SubmitOutcome>({
    maxItems: MAX_GROUP,
    concurrency: 2,
    isolate: (err) => !isTransientDatabaseError(err),
    async run(items) {
      // One limit per group: every caller of one server passes the same.
      const maxQueued = Math.min(...items.map((i) => i.maxQueued));
      // A call's groups are registered in the order they are flushed, before
      // anything awaits (admit may hold them, and end their holds in any order).
      const calls = [...new Set(items.map((i) => i.call))];
      const splitCall = calls.some((c) => callsInFlight.has(c));
      for (const c of calls) callsInFlight.set(c, (callsInFlight.get(c) ?? 0) + 1);
      const leaveCalls = () => {
        for (const c of calls) {
          const left = callsInFlight.get(c)! - 1;
          if (left === 0) callsInFlight.delete(c);
          else callsInFlight.set(c, left);
        }
      };
      try {
        await admit(items.length, maxQueued);
      } catch (err) {
        leaveCalls();
        throw err;
      }
      const jobs = items.map((i) => i.job);
      let placement: SubmitPlacement | undefined;
      let inserted;
      // Placed only while no other group between admission and its commit may
      // queue jobs: those (uncommitted, so not in this insert's queue depth)
      // would be passed by this one's placed jobs. A group placed whole queues
      // none unless its insert finds work queued (then it queues all), so under
      // load concurrent placed groups do not turn each other into queued ones;
      // such a group's jobs, not yet committed when this one was placed, may
      // be passed, as concurrent submits' order is not defined. One call's
      // order is: a group holding jobs of a call with an earlier group still
      // in flight is queued.
      // Under a per-submitter cap every job goes through a claim, the one place that counts what its submitter runs.
      if (admittedMayQueue === 0 && !splitCall && !deps.maxRunningPerSubmitter) placement = placeOnArrival(registry, jobs, deps.placement);
      const mayQueue = (placement?.nodeOf.size ?? 0) < jobs.length ? items.length : 0;
      admittedMayQueue += mayQueue;
      try {
        inserted = await timed('submit', () => insertJobs(sql, jobs, maxQueued, placement?.nodeOf));
      } catch (err) {
        placement?.release();
        // It may have committed with its answer lost, as a claim can (see claimFor).
        for (const s of placement?.sessions ?? []) s.capacityUnknown();
        throw err;
      } finally {
        admitted -= items.length;
        admittedMayQueue -= mayQueue;
        leaveCalls();
      }
      const { outcomes, queuedBefore } = inserted;
      const created = outcomes.flatMap((o) => (o.kind === 'created' ? [o.row] : []));
      metrics?.jobsSubmitted.inc(created.length);
      const assigned = created.filter((r) => r.state !== QUEUED);
      if (queuedBefore !== undefined) queued = queuedBefore + created.length - assigned.length;
      const lost = placement ? await deliverPlaced(placement, jobs, assigned) : [];
      const existing = outcomes.flatMap((o) => (o.kind === 'existing' ? [o.id] : []));
      const rows = new Map((await getJobs(sql, existing)).map((r) => [r.id, r]));
      // Placed jobs whose stream ended meanwhile were queued again (or ended):
      // answered as they are now, if that can be read (they are stored either way).
      const moved = new Map((await getJobs(sql, lost).catch(() => [])).map((r) => [r.id, r]));
      const result = outcomes.map((o, i): SubmitOutcome => {
        if (o.kind === 'full') return o;
        if (o.kind === 'existing') return { kind: 'existing', job: rowToJob(rows.get(o.id)!) };
        const { job } = items[i]!;
        log.debug({ job_id: o.row.id, image: job.task.image, node: o.row.node_id ?? undefined }, 'job submitted');
        const now = moved.get(o.row.id);
        return { kind: 'created', job: now ? rowToJob(now) : createdJob(job, o.row) };
      });
      if (created.length > assigned.length) deps.kick('queued');
      return result;
    },
  });

  /**
   * A placed group's insert answered: its held room is let go, and held again
   * (and sent) for the jobs it stored ASSIGNED. Returns the ids of those whose
   * stream ended meanwhile (withdrawn, see deliver).
   */
  async function deliverPlaced(placement: SubmitPlacement, jobs: NewJob[], assigned: InsertedJob[]): Promise<string[]> {
    placement.release();
    let lost: string[] = [];
    if (assigned.length > 0) {
      const tasks = new Map(jobs.map((j) => [j.id, withSecrets(j.task, j.secrets)]));
      pacer.claimed(assigned.length, performance.now());
      lost = await deliver(
        assigned.map((r) => ({ id: r.id, attempt: r.attempt, node_id: r.node_id!, task: tasks.get(r.id)! })),
        new Map(placement.sessions.map((s) => [s.nodeId, s])),
      );
    }
    // Room held for jobs the insert did not place (the queue was not empty, a
    // repeated request id, the queue full) is free again: a pass meanwhile saw it taken.
    if (placement.nodeOf.size > assigned.length - lost.length) deps.kick('capacity');
    return lost;
  }

  const reports = createGroupCommit<{ session: NodeSession; reports: NodeReport[] }, ReportOutcome[]>({
    maxItems: MAX_GROUP,
    concurrency: 2,
    isolate: (err) => !isTransientDatabaseError(err),
    run: applyReports,
  });

  /** Every report of the groups, set-based: starts, then output, then ends (and hand-backs), so each stream's order holds. */
  async function applyReports(groups: { session: NodeSession; reports: NodeReport[] }[]): Promise<ReportOutcome[][]> {
    // Each report with the node that sent it: the node is part of the fence.
    const starts: FromNode<StartReport>[] = [];
    const outputs: FromNode<OutputReport>[] = [];
    const finishes: FromNode<FinishReport>[] = [];
    const handBacks: FromNode<HandBackReport>[] = [];
    for (const { session, reports } of groups) {
      for (const r of reports) {
        if (r.kind === 'started') starts.push({ ...r.report, nodeId: session.nodeId });
        else if (r.kind === 'output') outputs.push({ ...r.report, nodeId: session.nodeId });
        else if (r.kind === 'finished') finishes.push({ ...r.report, nodeId: session.nodeId });
        else handBacks.push({ ...r.report, nodeId: session.nodeId });
      }
    }
    // One statement each, in this order, not one transaction: no transaction
    // keeps postgres.js's reserved connections (whose death can crash the
    // process, porsager/postgres#1208) off the hot path, and every report is
    // idempotent, so a group retried after a partial commit applies the rest
    // and answers the rest as duplicates.
    const started = await timed('report_starts', () => startAttempts(sql, starts, deps.backstopMarginMs));
    const stored = await timed('report_output', () => appendOutputs(sql, outputs));
    const finished = await timed('report_ends', () => finishAttempts(sql, finishes));
    const handedBack = await timed('report_hand_backs', () => handBackAttempts(sql, handBacks));
    for (const row of started) if (row.assigned_ms !== null) metrics?.dispatchSeconds.observe({ phase: 'assigned_to_started' }, Math.max(0, row.assigned_ms) / 1000);
    const keysOf = (rows: { id: string; attempt: number }[]) => new Set(rows.map((r) => attemptKeyOf({ jobId: r.id, attempt: r.attempt })));
    // Applied keys name the node too: two nodes' reports about one attempt can share a group,
    // and only the one from the attempt's node applies.
    const nodeKeyOf = (nodeId: string, a: AttemptRef) => `${nodeId}/${attemptKeyOf(a)}`;
    const nodeKeysOf = (rows: { id: string; attempt: number; node_id: string | null }[]) =>
      new Set(rows.map((r) => nodeKeyOf(r.node_id ?? '', { jobId: r.id, attempt: r.attempt })));
    // A requeued row names no node in node_id: handed_back_by (finished_by, for a retry) does.
    const applied = {
      started: nodeKeysOf(started),
      finished: nodeKeysOf(finished.map((r) => ({ ...r, node_id: r.finished_by }))),
      handedBack: nodeKeysOf(handedBack.map((r) => ({ ...r, node_id: r.handed_back_by }))),
    };
    // The reports not applied: a duplicate if their attempt already ended, else stale.
    const wasApplied = (key: string) => applied.started.has(key) || applied.finished.has(key) || applied.handedBack.has(key);
    const refused = [
      ...new Set([
        ...[...starts, ...finishes, ...handBacks].filter((r) => !wasApplied(nodeKeyOf(r.nodeId, r.attempt))).map((r) => r.attempt.jobId),
        ...outputs.filter((_, i) => stored[i] === undefined).map((r) => r.attempt.jobId),
      ]),
    ];
    const ended =
      refused.length === 0
        ? []
        : await sql<{ id: string; attempt: number }[]>`SELECT id, attempt FROM jobs WHERE id = ANY(${refused}::uuid[]) AND end_reason IS NOT NULL`;

    const over = keysOf(ended);
    const claimed = new Set<string>();
    let output = 0;
    let freed = false;
    const results = groups.map(({ session, reports }) =>
      reports.map((r): ReportOutcome => {
        const key = attemptKeyOf(r.report.attempt);
        const fromNode = nodeKeyOf(session.nodeId, r.report.attempt);
        let outcome: ReportOutcome;
        if (r.kind === 'output') {
          const chunks = stored[output++];
          // Output of an attempt that has ended: a resend after a lost ack, not a stale attempt.
          outcome = chunks ? 'applied' : over.has(key) ? 'duplicate' : 'stale';
          for (const chunk of chunks ?? []) events.publish(r.report.attempt.jobId, { kind: 'log', jobId: r.report.attempt.jobId, chunk });
        } else {
          // Only the first of several reports of one attempt's start (or end) in this commit applied it.
          const first = !claimed.has(`${r.kind}/${fromNode}`);
          claimed.add(`${r.kind}/${fromNode}`);
          const applies = applied[r.kind].has(fromNode);
          outcome = applies && first ? 'applied' : applies || over.has(key) ? 'duplicate' : 'stale';
        }
        // The attempt is over on the node, whatever became of the report.
        if (r.kind === 'finished' || r.kind === 'handedBack') {
          freed = session.release(r.report.attempt) || freed;
          session.endReported(r.report.attempt);
        }
        if (outcome === 'stale') {
          // Stale, or not this node's at all: either way it changes nothing, and
          // whatever the node runs for it is stopped.
          log.warn(
            { node: session.nodeId, job_id: r.report.attempt.jobId, attempt: r.report.attempt.attempt, report: r.kind },
            'refused a report about an attempt that is not this node\'s current one (stale, or another node\'s)',
          );
          session.sendCancel(r.report.attempt, 0, CancelCause.CANCEL_CAUSE_STALE);
        }
        return outcome;
      }),
    );
    // A duplicate may be the retry of a commit whose answer was lost: publish it
    // too (watchers drop what they already have by version).
    publish([...started, ...finished, ...handedBack, ...ended]);
    announceEnds([...finished, ...handedBack]);
    for (const row of handedBack) if (row.state === QUEUED) log.info({ job_id: row.id, attempt: row.attempt }, 'job handed back by its draining node; queued again');
    const retried = finished.filter((r) => r.state === QUEUED);
    for (const row of retried) log.info({ job_id: row.id, attempt: row.attempt, node: row.finished_by, exit_code: row.exit_code ?? undefined }, 'attempt failed; job queued for a retry');
    if (freed) deps.kick('capacity');
    if (handedBack.some((r) => r.state === QUEUED) || retried.length > 0) deps.kick('queued');
    return results;
  }

  /** One claim for the offered sessions' free slots; sends and counts what it claimed. */
  async function claimFor(offered: NodeSession[], offers: NodeOffer[]): Promise<ClaimResult> {
    let claim;
    try {
      claim = await timed('claim', () => claimJobs(sql, offers, { headSql: deps.queueHeadSql, strategy: deps.placement, runningCap: deps.maxRunningPerSubmitter }));
    } catch (err) {
      // The claim may have committed with its answer lost: until each node is
      // reconciled, what it holds is unknown, and its slots are not offered.
      for (const s of offered) s.capacityUnknown();
      throw err;
    }
    pacer.claimed(claim.rows.length, performance.now());
    queued = Math.max(0, queued - claim.rows.length);
    backlog = !claim.exhausted && claim.rows.length > 0;
    const sendable: { id: string; attempt: number; node_id: string; task: Task }[] = [];
    const unsealable: { row: ClaimedJob; err: Error }[] = [];
    for (const row of claim.rows) {
      try {
        sendable.push({ id: row.id, attempt: row.attempt, node_id: row.node_id!, task: taskOf(row, openSecrets) });
      } catch (err) {
        unsealable.push({ row, err: err as Error });
      }
    }
    const undelivered = await deliver(sendable, new Map(offered.map((s) => [s.nodeId, s])));
    await failUnsealable(unsealable);
    // A node was drained meanwhile (its announcement still on its way): offer it no more.
    for (const s of offered) if (claim.drained.includes(s.nodeId)) s.setDrain({ draining: true, deadlineAt: s.drainDeadlineAt });
    // Another replica took some of the jobs placed, or a node was drained: read the queue again.
    if (claim.raced) deps.kick('queued');
    return { claimed: sendable.length - undelivered.length, exhausted: claim.exhausted, nextDueInMs: claim.nextDueInMs };
  }

  /**
   * A claimed job whose secrets this replica cannot unseal (no key, or another
   * key than the one that sealed them) would sit ASSIGNED, never sent: it ends
   * START_FAILED instead, as if its node had reported so, saying why.
   */
  async function failUnsealable(failed: { row: { id: string; attempt: number; node_id: string | null }; err: Error }[]): Promise<void> {
    if (failed.length === 0) return;
    log.error({ jobs: failed.map((f) => f.row.id), err: failed[0]!.err }, 'cannot unseal the secret env values of claimed jobs; they fail');
    const ended = await finishAttempts(
      sql,
      failed.map(({ row, err }) => ({
        attempt: { jobId: row.id, attempt: row.attempt },
        nodeId: row.node_id!,
        reason: EndReason.END_REASON_START_FAILED,
        message: `${err.message}: every control-plane replica needs the same --secret-key-file`,
        endedAt: new Date(),
      })),
    );
    publish(ended);
    announceEnds(ended);
  }

  /**
   * Sends committed assignments (of a claim, or of a submit placed at once) to
   * their nodes and holds their room; returns the ids of the jobs that could not
   * be sent. Those are withdrawn (queued again with no attempt spent, or
   * CANCELLED if cancelled meanwhile) unless they started (a replacing stream
   * had them after all: its reports settle them). Never throws: what it was given is committed.
   */
  async function deliver(rows: { id: string; attempt: number; node_id: string; task: Task }[], bySession: Map<string, NodeSession>): Promise<string[]> {
    const undelivered: (AttemptRef & { nodeId: string })[] = [];
    for (const row of rows) {
      const session = bySession.get(row.node_id)!;
      const attempt = { jobId: row.id, attempt: row.attempt };
      // The stream may have ended, been judged or been replaced while the statement
      // was in flight; such a job must not stay ASSIGNED to a node that never hears of it.
      if (!registry.isCurrent(session) || !session.sendAssignment(attempt, row.task)) {
        undelivered.push({ ...attempt, nodeId: session.nodeId });
        continue;
      }
      session.hold(attempt, row.task);
      log.debug({ job_id: row.id, attempt: row.attempt, node: session.nodeId }, 'assigned');
      metrics?.dispatchSeconds.observe({ phase: 'submitted_to_assigned' }, Math.max(0, Date.now() - submittedAtOf(row.id)) / 1000);
    }
    publish(rows);
    // A stream that replaced this one may have been sent the attempt already, by
    // its reconcile (it read the claim's commit): then it was delivered after all.
    const unsent = undelivered.filter((a) => !registry.get(a.nodeId)?.holds(a));
    if (unsent.length > 0) {
      log.warn({ jobs: unsent.length }, 'node streams ended as jobs were assigned; withdrawing them');
      try {
        publish(await withdrawAttempts(sql, unsent));
      } catch (err) {
        // Still ASSIGNED to a node whose stream ended: its liveness verdict (or
        // the reconcile of its next stream) settles them.
        log.warn({ err }, 'cannot queue the undelivered jobs again now; the node\'s verdict will');
      }
      deps.kick('queued');
    }
    return undelivered.map((a) => a.jobId);
  }

  return {
    async submit(job, maxQueued) {
      return submits.add({ job, maxQueued, call: {} });
    },

    async submitMany(jobs, maxQueued) {
      // Each job's own outcome: one call's jobs may span two group commits, and
      // one failing must not hide that the others were stored.
      const call = {};
      const settled = await Promise.allSettled(jobs.map((job) => submits.add({ job, maxQueued, call })));
      return settled.map((s): SubmitOutcome => (s.status === 'fulfilled' ? s.value : { kind: 'failed', error: s.reason }));
    },

    async claim(sessions) {
      const offered = sessions.filter((s) => s.schedulable);
      // Full nodes are offered too (with no free slot): a job only they can hold
      // then waits for them instead of looking like nothing is left to place.
      const offers = offered.map((s) => ({ nodeId: s.nodeId, free: s.freeCapacity(), size: s.size(), labels: s.labels }));
      if (!offers.some((o) => o.free.slots > 0)) return { claimed: 0, exhausted: false };
      // Only a node that can be given jobs by this claim has one in flight.
      const receiving = offered.filter((_, i) => offers[i]!.free.slots > 0);
      for (const s of receiving) s.claimStarted();
      try {
        return await claimFor(offered, offers);
      } finally {
        for (const s of receiving) s.claimSettled();
      }
    },

    report(session, list) {
      return reports.add({ session, reports: list });
    },

    async cancel(ids, graceMs) {
      const rows = await cancelJobs(sql, ids, graceMs, deps.backstopMarginMs);
      publish(rows);
      announceEnds(rows);
      // A node whose stream is on another replica gets it from there (job-event-feed.ts);
      // a disconnected one when it reconnects.
      for (const row of rows) deliverCancel(row);
      return rows;
    },

    async lose(session, attempts) {
      const rows = await loseAttempts(sql, { attempts: attempts.map((a) => ({ ...a, nodeId: session.nodeId })) });
      if (rows.length > 0) log.warn({ node: session.nodeId, attempts: rows.map((r) => ({ job_id: r.id, attempt: r.attempt })) }, 'node no longer has some of its attempts; they are lost');
      for (const row of rows) session.release({ jobId: row.id, attempt: row.attempt });
      publish(rows);
      announceEnds(rows);
      if (rows.length > 0) deps.kick('queued');
      return rows;
    },

    async loseNode(nodeId, generation, why) {
      const rows = await loseNode(sql, nodeId, generation);
      if (!rows) return undefined;
      log.warn({ node: nodeId, why, attempts_lost: rows.length }, 'node lost');
      publish(rows);
      announceEnds(rows);
      if (rows.some((r) => r.state === QUEUED)) deps.kick('queued');
      return rows;
    },

    async expire(limit) {
      const rows = await expireQueued(sql, limit);
      for (const row of rows) log.info({ job_id: row.id }, 'queue timeout');
      publish(rows);
      announceEnds(rows);
      return rows;
    },

    async backstop(limit) {
      const rows = await endPastBackstop(sql, limit);
      let freed = false;
      for (const row of rows) {
        log.warn({ job_id: row.id, attempt: row.attempt, node: row.node_id, reason: row.end_reason }, 'ended by the backstop');
        const session = row.node_id ? registry.get(row.node_id) : undefined;
        if (!session) continue;
        freed = session.release({ jobId: row.id, attempt: row.attempt }) || freed;
        // The attempt is over as far as Grid is concerned: its container must go.
        session.sendCancel({ jobId: row.id, attempt: row.attempt }, 0, CancelCause.CANCEL_CAUSE_STALE);
      }
      publish(rows);
      announceEnds(rows);
      if (freed) deps.kick('capacity');
      return rows;
    },

    deliverCancel,

    noteWaiting: () => noteWaiting(sql, deps.maxRunningPerSubmitter),

    async drain() {
      await Promise.all([submits.drain(), reports.drain()]);
    },
  };
}

/** The job a submit created, as stored (QUEUED, or ASSIGNED at once): built from what was inserted, without reading it back. */
function createdJob(job: NewJob, row: InsertedJob): Job {
  return Job.fromPartial({
    id: row.id,
    state: stateFromDb(row.state),
    spec: job.spec,
    attempt: row.attempt,
    maxAttempts: job.spec.maxAttempts,
    attemptsCounted: row.attempt,
    submitter: job.submitter ?? '',
    retriesUsed: 0,
    notBefore: job.spec.notBefore && job.spec.notBefore.getTime() > row.submitted_at.getTime() ? job.spec.notBefore : undefined,
    cronName: job.cron?.name ?? '',
    cronTick: job.cron?.tick,
    nodeId: row.node_id ?? '',
    submittedAt: row.submitted_at,
    assignedAt: row.assigned_at ?? undefined,
  });
}
