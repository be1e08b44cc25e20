// The nodes whose Connect stream is open on this control plane, and what each
// holds. A node is given work only through its live session here; when the
// stream ends the session is gone, whatever else of the node still answers.
import { CancelCause, type AttemptRef, type Capacity, type ConnectResponse, type Task } from '../common/gen/grid/v1/agent.js';
import { msToDuration } from '../common/units.js';
import { alreadyExists } from '../common/errors.js';
import { JobState } from '../common/gen/grid/v1/job.js';
import { stateToDb } from '../common/job-state.js';
import { cancelGraceOf, type JobRow } from './job-store.js';
import type { CountedAttempt } from './reconcile.js';

/** An attempt this control plane counts against a node's capacity (what the agent holds is its own list). */
export interface CountedSlot {
  attempt: number;
  cpus: number;
  memoryBytes: number;
  /** When this session started counting it (performance.now(): a clock that never steps back). */
  since: number;
  /** Whether this session has sent the node the job's cancel. */
  cancelSent: boolean;
}

export interface FreeCapacity {
  slots: number;
  cpus: number;
  memoryBytes: number;
}

export interface NodeSession {
  readonly nodeId: string;
  readonly name: string;
  readonly capacity: Capacity;
  readonly connectedAt: Date;
  /** The node's connect count in Postgres: the key of every liveness verdict. */
  generation: number;
  /** Set once the node's attempts are reconciled; only then is it given work. */
  ready: boolean;
  /** Set once liveness has judged this session (lost); nothing more is decided for it. */
  judged: boolean;
  /**
   * Set (performance.now()) when a claim for this node failed without an answer:
   * it may have committed, so what the node holds is unknown, and it is offered
   * no work until a reconciliation read after this time has counted it again.
   */
  capacityUnknownSince: number | undefined;
  lastSeenAt: Date;
  /** The attempts this session counts against the node's capacity, by job id. */
  readonly counted: Map<string, CountedSlot>;
  /** Queues a message on the node's stream; false once the stream has ended. */
  send(message: ConnectResponse): boolean;
  /** Ends the stream from the control plane's side. */
  close(): void;
}

/** Reconciled and not judged lost: a session that is given work and whose silence counts. */
export function isLive(session: NodeSession): boolean {
  return session.ready && !session.judged;
}

export function freeCapacity(session: NodeSession): FreeCapacity {
  if (session.capacityUnknownSince !== undefined) return { slots: 0, cpus: 0, memoryBytes: 0 };
  let cpus = session.capacity.cpus;
  let memoryBytes = Number(session.capacity.memoryBytes);
  for (const h of session.counted.values()) {
    cpus -= h.cpus;
    memoryBytes -= h.memoryBytes;
  }
  return { slots: session.capacity.slots - session.counted.size, cpus, memoryBytes };
}

export class NodeRegistry {
  private sessions = new Map<string, NodeSession>();

  /** Refuses a second stream for a node: never two streams for one node. */
  add(session: NodeSession): void {
    if (this.sessions.has(session.nodeId)) {
      throw alreadyExists(
        `node "${session.nodeId}" is already connected on another stream; ` +
          'each agent needs its own --node-id (is a second agent running with the same one?)',
      );
    }
    this.sessions.set(session.nodeId, session);
  }

  /** Removes the session if it is still the registered one for its node. */
  remove(session: NodeSession): void {
    if (this.sessions.get(session.nodeId) === session) this.sessions.delete(session.nodeId);
  }

  get(nodeId: string): NodeSession | undefined {
    return this.sessions.get(nodeId);
  }

  all(): NodeSession[] {
    return [...this.sessions.values()];
  }

  live(): NodeSession[] {
    return this.all().filter(isLive);
  }
}

/** Counts an attempt's resources against its node's capacity (again, or an older attempt of the job: a no-op). */
export function hold(session: NodeSession, attempt: AttemptRef, resources: { cpus: number; memoryBytes: number | bigint }): void {
  if ((session.counted.get(attempt.jobId)?.attempt ?? 0) >= attempt.attempt) return;
  session.counted.set(attempt.jobId, {
    attempt: attempt.attempt,
    cpus: resources.cpus,
    memoryBytes: Number(resources.memoryBytes),
    since: performance.now(),
    cancelSent: false,
  });
}

/** Stops counting an attempt against its node, if it is the one counted; true if it was. */
export function release(session: NodeSession, attempt: AttemptRef): boolean {
  if (session.counted.get(attempt.jobId)?.attempt !== attempt.attempt) return false;
  session.counted.delete(attempt.jobId);
  return true;
}

/** What this session counts against its node, for reconcile(). */
export function countedOf(session: NodeSession): CountedAttempt[] {
  return [...session.counted].map(([jobId, h]) => ({ jobId, attempt: h.attempt, since: h.since, cancelSent: h.cancelSent }));
}

/** Asks a node to run an attempt; false once the stream has ended. */
export function sendAssignment(session: NodeSession, attempt: AttemptRef, task: Task): boolean {
  return session.send({ message: { $case: 'assignment', value: { attempt, task } } });
}

/**
 * Asks a node to stop an attempt: stop signal, `graceMs`, then SIGKILL (0: kill
 * at once). A job's cancel is noted on the attempt this session counts, so that
 * reconciliation sends it only to a node that never got it.
 */
export function sendCancel(
  session: NodeSession,
  attempt: { jobId: string; attempt: number },
  graceMs: number,
  cause: CancelCause,
): void {
  const counted = session.counted.get(attempt.jobId);
  if (cause === CancelCause.CANCEL_CAUSE_CANCELLED && counted?.attempt === attempt.attempt) counted.cancelSent = true;
  session.send({ message: { $case: 'cancel', value: { attempt, grace: msToDuration(graceMs), cause } } });
}

/**
 * Delivers the cancel of a committed row that is CANCELLING to the node running
 * its attempt, when that node's stream is on this replica (a replica that does
 * not hold it learns of the cancel from Postgres, see job-event-feed.ts).
 * Returns whether the node has been sent it, now or before.
 */
export function deliverCancel(registry: NodeRegistry, row: JobRow): boolean {
  if (row.state !== stateToDb(JobState.JOB_STATE_CANCELLING) || !row.node_id) return false;
  const session = registry.get(row.node_id);
  if (!session || session.judged) return false;
  const counted = session.counted.get(row.id);
  if (counted?.attempt === row.attempt && counted.cancelSent) return true;
  sendCancel(session, { jobId: row.id, attempt: row.attempt }, cancelGraceOf(row), CancelCause.CANCEL_CAUSE_CANCELLED);
  return true;
}
