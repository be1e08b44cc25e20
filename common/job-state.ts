// The job state machine: which state may follow which, and which terminal state
// an end reason leads to. Pure: control-plane/sql/ turns these tables into
// compare-and-set updates, so Postgres enforces exactly what is unit-tested here.
import { EndReason, JobState } from './gen/grid/v1/job.js';

export { EndReason, JobState };

export const TERMINAL_STATES: readonly JobState[] = [
  JobState.JOB_STATE_SUCCEEDED,
  JobState.JOB_STATE_FAILED,
  JobState.JOB_STATE_CANCELLED,
];

/** States that hold a slot on a node. */
export const ACTIVE_STATES: readonly JobState[] = [
  JobState.JOB_STATE_ASSIGNED,
  JobState.JOB_STATE_RUNNING,
  JobState.JOB_STATE_CANCELLING,
];

const Q = JobState.JOB_STATE_QUEUED;
const A = JobState.JOB_STATE_ASSIGNED;
const R = JobState.JOB_STATE_RUNNING;
const C = JobState.JOB_STATE_CANCELLING;
const S = JobState.JOB_STATE_SUCCEEDED;
const F = JobState.JOB_STATE_FAILED;
const X = JobState.JOB_STATE_CANCELLED;

/**
 * Allowed transitions, from → to. Why the less obvious ones exist:
 * - ASSIGNED/RUNNING → QUEUED: the node was lost and the job has attempts left,
 *   a draining node handed the job back at its deadline, or the attempt failed
 *   and the job has retries left (finishTargetOf).
 * - ASSIGNED → SUCCEEDED/FAILED: a job can end before its start report is handled
 *   (image unavailable, or an agent that restarted and reports a finished container).
 * - CANCELLING → CANCELLED only: a committed cancel decides how the job ends (endReasonFor).
 * - QUEUED → FAILED: queue timeout.
 */
const TRANSITIONS: ReadonlyMap<JobState, readonly JobState[]> = new Map([
  [Q, [A, X, F]],
  [A, [R, Q, C, S, F]],
  [R, [Q, C, S, F]],
  [C, [X]],
  [S, []],
  [F, []],
  [X, []],
]);

export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}

export function canTransition(from: JobState, to: JobState): boolean {
  return TRANSITIONS.get(from)?.includes(to) ?? false;
}

/** The states a job may be in for a move to `to` to be allowed: the CAS guard. */
export function sourcesOf(to: JobState): JobState[] {
  return [...TRANSITIONS].filter(([, targets]) => targets.includes(to)).map(([from]) => from);
}

/** The terminal state a reason ends a job in. */
export function terminalStateFor(reason: EndReason): JobState {
  switch (reason) {
    case EndReason.END_REASON_SUCCEEDED:
      return S;
    case EndReason.END_REASON_CANCELLED:
      return X;
    case EndReason.END_REASON_UNSPECIFIED:
    case EndReason.UNRECOGNIZED:
      throw new Error(`end reason ${reason} is not a reason a job can end with`);
    default:
      return F;
  }
}

/**
 * The reason a job in `from` ends with when its node reports that the current
 * attempt ended with `reported`. Once a cancel is committed (CANCELLING) the job
 * ends CANCELLED, whatever the process did and whichever agent process reports
 * it: the cancel was promised to its caller, and an agent restarted after it
 * stopped the container cannot tell that stop from an exit (it sees exit 137).
 */
export function endReasonFor(from: JobState, reported: EndReason): EndReason {
  return from === C ? EndReason.END_REASON_CANCELLED : reported;
}

/**
 * The ends a job asked to be retried on (`spec.retries`): its process failed
 * (a non-zero exit, or killed for its memory) or ran past its timeout. Not a
 * cancel, nor what a retry could not change (no image, no start, the queue
 * timeout); a lost node has its own budget (max_attempts, lostTargetOf).
 */
export const RETRYABLE_REASONS: readonly EndReason[] = [
  EndReason.END_REASON_FAILED,
  EndReason.END_REASON_TIMED_OUT,
  EndReason.END_REASON_OOM_KILLED,
];

/**
 * The node reports that the current attempt of a job in `from` ended with
 * `reported`: the job ends (endReasonFor), unless that end is one it is retried
 * on and it has retries left: then it is queued again, for a new attempt.
 */
export function finishTargetOf(from: JobState, reported: EndReason, retriesLeft: boolean): Move | undefined {
  if (!ACTIVE_STATES.includes(from)) return undefined;
  const reason = endReasonFor(from, reported);
  if (retriesLeft && RETRYABLE_REASONS.includes(reason) && canTransition(from, Q)) return { state: Q };
  return allowed(from, { state: terminalStateFor(reason), reason });
}

/**
 * The state a cancel moves a job in `from` to: a queued job ends CANCELLED at
 * once, one on a node waits for the node to stop it (CANCELLING). Undefined:
 * nothing to cancel (ended, or already cancelling).
 */
export function cancelTargetOf(from: JobState): JobState | undefined {
  const to = from === Q ? X : C;
  return canTransition(from, to) ? to : undefined;
}

/** Where a transition takes a job: its new state, and the reason when that ends it. */
export interface Move {
  state: JobState;
  reason?: EndReason;
}

function allowed(from: JobState, move: Move | undefined): Move | undefined {
  return move && (move.state === from || canTransition(from, move.state)) ? move : undefined;
}

/** A claim hands a queued job to a node. */
export function claimTargetOf(from: JobState): Move | undefined {
  return from === Q ? allowed(from, { state: A }) : undefined;
}

/**
 * The node started the attempt's container: an assigned job runs; a running or
 * cancelling one stays as it is (a resent report, or a cancel that came first)
 * and only its start time is recorded.
 */
export function startTargetOf(from: JobState): Move | undefined {
  if (from === A) return allowed(from, { state: R });
  return from === R || from === C ? { state: from } : undefined;
}

/**
 * The node running an attempt was lost (or no longer has it): a cancelling job
 * ends CANCELLED (its cancel was promised), one with attempts left is queued
 * again, the rest end NODE_LOST.
 */
export function lostTargetOf(from: JobState, attemptsLeft: boolean): Move | undefined {
  if (!ACTIVE_STATES.includes(from)) return undefined;
  if (from === C) return allowed(from, { state: X, reason: EndReason.END_REASON_CANCELLED });
  return allowed(from, attemptsLeft ? { state: Q } : { state: F, reason: EndReason.END_REASON_NODE_LOST });
}

/**
 * An assignment committed but never sent to its node (its stream ended first):
 * nothing ran, so an assigned job is queued again and one cancelled meanwhile
 * ends CANCELLED. A running job is never withdrawn: its node had it.
 */
export function withdrawTargetOf(from: JobState): Move | undefined {
  if (from === A) return allowed(from, { state: Q });
  if (from === C) return allowed(from, { state: X, reason: EndReason.END_REASON_CANCELLED });
  return undefined;
}

/**
 * A draining node stopped the attempt at its deadline and handed the job back
 * (nothing the job did ended it): queued again for another node, whatever its
 * budget, as no attempt of it was spent. A cancel committed first still decides.
 */
export function handBackTargetOf(from: JobState): Move | undefined {
  if (from === A || from === R) return allowed(from, { state: Q });
  if (from === C) return allowed(from, { state: X, reason: EndReason.END_REASON_CANCELLED });
  return undefined;
}

/**
 * An active attempt whose node never reported past its backstop (the timeout, or
 * a cancel's grace, plus a margin): a cancelling job ends CANCELLED, any other
 * TIMED_OUT.
 */
export function backstopTargetOf(from: JobState): Move | undefined {
  if (!ACTIVE_STATES.includes(from)) return undefined;
  return allowed(from, from === C ? { state: X, reason: EndReason.END_REASON_CANCELLED } : { state: F, reason: EndReason.END_REASON_TIMED_OUT });
}

/** A queued job past its queue timeout. */
export function expireTargetOf(from: JobState): Move | undefined {
  return from === Q ? allowed(from, { state: F, reason: EndReason.END_REASON_QUEUE_TIMEOUT }) : undefined;
}

/** The end reason of a process that exited by itself with `exitCode`. */
export function reasonForExit(exitCode: number, oomKilled: boolean): EndReason {
  if (oomKilled) return EndReason.END_REASON_OOM_KILLED;
  return exitCode === 0 ? EndReason.END_REASON_SUCCEEDED : EndReason.END_REASON_FAILED;
}

// Postgres stores states and reasons as the enum names without their prefix,
// readable in psql and independent of the proto numbering.
const STATE_PREFIX = 'JOB_STATE_';
const REASON_PREFIX = 'END_REASON_';

export function stateToDb(state: JobState): string {
  return JobState[state].slice(STATE_PREFIX.length);
}

/** ACTIVE_STATES as the jobs.state column spells them, for SQL. */
export const ACTIVE_DB_STATES: readonly string[] = ACTIVE_STATES.map(stateToDb);

export function stateFromDb(text: string): JobState {
  const state = JobState[(STATE_PREFIX + text) as keyof typeof JobState];
  if (state === undefined) throw new Error(`unknown job state in database: ${text}`);
  return state;
}

export function reasonToDb(reason: EndReason): string {
  return EndReason[reason].slice(REASON_PREFIX.length);
}

export function reasonFromDb(text: string | null): EndReason {
  if (text === null) return EndReason.END_REASON_UNSPECIFIED;
  const reason = EndReason[(REASON_PREFIX + text) as keyof typeof EndReason];
  if (reason === undefined) throw new Error(`unknown end reason in database: ${text}`);
  return reason;
}

export function stateName(state: JobState): string {
  return stateToDb(state);
}

export function reasonName(reason: EndReason): string {
  return reason === EndReason.END_REASON_UNSPECIFIED ? '' : reasonToDb(reason);
}

/** Every state, for tests and CHECK constraints. */
export const ALL_STATES: readonly JobState[] = [Q, A, R, C, S, F, X];
