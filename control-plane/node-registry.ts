// The nodes whose Connect stream is open on this control plane, and what each
// holds. A node is given work only through its live session here; when the
// stream ends the session is gone, whatever else of the node still answers.
import type { AttemptRef, CancelCause, Capacity, ConnectResponse, Task } from '../common/gen/grid/v1/agent.js';
import { msToDuration } from '../common/units.js';
import { alreadyExists } from '../common/errors.js';

export interface HeldAttempt {
  attempt: number;
  cpus: number;
  memoryBytes: number;
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
  lastSeenAt: Date;
  /** Attempts holding a slot on this node, by job id. */
  readonly held: Map<string, HeldAttempt>;
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
  let cpus = session.capacity.cpus;
  let memoryBytes = Number(session.capacity.memoryBytes);
  for (const h of session.held.values()) {
    cpus -= h.cpus;
    memoryBytes -= h.memoryBytes;
  }
  return { slots: session.capacity.slots - session.held.size, cpus, memoryBytes };
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

/** Counts an attempt's resources against its node's capacity. */
export function hold(session: NodeSession, attempt: AttemptRef, task: Task): void {
  session.held.set(attempt.jobId, { attempt: attempt.attempt, cpus: task.cpus, memoryBytes: Number(task.memoryBytes) });
}

/** Asks a node to run an attempt; false once the stream has ended. */
export function sendAssignment(session: NodeSession, attempt: AttemptRef, task: Task): boolean {
  return session.send({ message: { $case: 'assignment', value: { attempt, task } } });
}

/** Asks a node to stop an attempt: stop signal, `graceMs`, then SIGKILL (0: kill at once). */
export function sendCancel(
  session: NodeSession,
  attempt: { jobId: string; attempt: number },
  graceMs: number,
  cause: CancelCause,
): void {
  session.send({ message: { $case: 'cancel', value: { attempt, grace: msToDuration(graceMs), cause } } });
}
