// One node's stream on this control plane, and what this control plane counts
// against the node's capacity. Only its own methods change it: a session is
// opened (its generation), made ready once reconciled, heard from, judged; the
// job-transition owner holds and releases its slots.
import type { Labels } from '../common/label-constraints.js';
import { CancelCause, type AttemptRef, type Capacity, type ConnectResponse, type Task } from '../common/gen/grid/v1/agent.js';
import { msToDuration } from '../common/units.js';
import { attemptKeyOf } from '../common/attempt.js';
import type { CountedAttempt } from './reconcile.js';

/** An attempt this control plane counts against a node's capacity (what the agent holds is its own list). */
interface CountedSlot {
  attempt: number;
  cpus: number;
  memoryBytes: number;
  /** When this session started counting it (performance.now(): a clock that never steps back). */
  since: number;
  /** Whether this session has sent the node the job's cancel. */
  cancelSent: boolean;
  /** Whether this session has asked the node to hand the attempt back (a drain's deadline). */
  handBackSent: boolean;
}

export interface FreeCapacity {
  slots: number;
  cpus: number;
  memoryBytes: number;
}

export class NodeSession {
  readonly connectedAt = new Date();
  private seenAt = this.connectedAt;
  private gen = 0;
  private isReady = false;
  private isJudged = false;
  private isDraining = false;
  private drainDeadline: Date | null = null;
  private agentDraining = false;
  private unknownSince: number | undefined;
  private readonly counted = new Map<string, CountedSlot>();
  /** Claims for this node in flight, and when the last one settled (performance.now()). */
  private claiming = 0;
  private claimSettledAt = -Infinity;
  // Of `claiming`, the claims whose room is not held yet (not placements).
  private claimingUnheld = 0;
  /** Attempts whose end the agent reported on this stream, until a heartbeat no longer lists them. */
  private readonly ended = new Map<string, AttemptRef>();
  /** When attempts stopped being counted (performance.now()), until no read predates it. */
  private readonly releasedAt = new Map<string, { ref: AttemptRef; at: number }>();

  constructor(
    readonly nodeId: string,
    readonly name: string,
    readonly capacity: Capacity,
    /** Hello.agent_instance: the agent process behind this stream ('' if it did not say). */
    readonly agentInstance: string,
    /** Hello.agent_version. */
    readonly agentVersion: string,
    /** Queues a message on the node's stream; false once the stream has ended. */
    private readonly send: (message: ConnectResponse) => boolean,
    /** Ends the stream from the control plane's side. */
    readonly close: () => void,
    /** Hello.labels: what job constraints and affinities are tested against (scheduler.ts). */
    readonly labels: Labels = {},
  ) {}

  /** The node's connect count in Postgres: the key of every liveness verdict. */
  get generation(): number {
    return this.gen;
  }

  get lastSeenAt(): Date {
    return this.seenAt;
  }

  /** Set once the node's attempts are reconciled; only then is it given work. */
  get ready(): boolean {
    return this.isReady;
  }

  /** Set once liveness has judged this session (lost); nothing more is decided for it. */
  get judged(): boolean {
    return this.isJudged;
  }

  /** Reconciled and not judged lost: given work, and its silence counts. */
  get live(): boolean {
    return this.isReady && !this.isJudged;
  }

  /** Drained by an operator (node-drain.ts): live, heard from, but given no new job. */
  get draining(): boolean {
    return this.isDraining;
  }

  /** Live, not drained, and its agent not stopping: work may be placed on it. */
  get schedulable(): boolean {
    return this.live && !this.isDraining && !this.agentDraining;
  }

  /** The agent said it is stopping (Hello or Heartbeat .draining); true if that is news. */
  setAgentDraining(draining: boolean): boolean {
    if (this.agentDraining === draining) return false;
    this.agentDraining = draining;
    return true;
  }

  /** When a drained node hands back what it still runs (null: no deadline, or not draining). */
  get drainDeadlineAt(): Date | null {
    return this.drainDeadline;
  }

  /** What Postgres says of the node's drain (read on connect, with heartbeats, or announced). */
  setDrain(drain: { draining: boolean; deadlineAt: Date | null }): void {
    this.isDraining = drain.draining;
    this.drainDeadline = drain.draining ? drain.deadlineAt : null;
  }

  /**
   * The attempts counted here that the node should hand back by `now` (its drain's
   * deadline has passed) and has not been asked to yet; a cancelled one is stopping anyway.
   */
  handBacksDue(now: number): AttemptRef[] {
    if (!this.isDraining || this.drainDeadline === null || this.drainDeadline.getTime() > now) return [];
    return [...this.counted].filter(([, c]) => !c.handBackSent && !c.cancelSent).map(([jobId, c]) => ({ jobId, attempt: c.attempt }));
  }

  /** Postgres recorded this stream as the node's `generation`th connection. */
  opened(generation: number): void {
    this.gen = generation;
  }

  /** Reconciled: open to work. Nothing was read from the stream meanwhile, so its silence counts from now. */
  markReady(): void {
    this.isReady = true;
    this.heard();
  }

  /** A message arrived from the node. */
  heard(): void {
    this.seenAt = new Date();
  }

  /** Judged lost (or no longer this stream's in Postgres): nothing more is decided for it. False if it already was. */
  judge(): boolean {
    if (this.isJudged) return false;
    this.isJudged = true;
    return true;
  }

  /**
   * A claim for this node (or the insert of a submit placed on it) failed
   * without an answer: it may have committed, so
   * what the node holds is unknown, and it is offered no work until a
   * reconciliation read sent after this moment has counted it again.
   */
  capacityUnknown(): void {
    this.unknownSince = performance.now();
  }

  /** Whether a failed claim left what the node holds unknown. */
  capacityUnknownNow(): boolean {
    return this.unknownSince !== undefined;
  }

  /** A read sent at `readAt` (performance.now()) was applied; true if it settled an unknown capacity. */
  capacityKnownAsOf(readAt: number): boolean {
    if (this.unknownSince === undefined || readAt <= this.unknownSince) return false;
    this.unknownSince = undefined;
    return true;
  }

  freeCapacity(): FreeCapacity {
    if (this.unknownSince !== undefined) return { slots: 0, cpus: 0, memoryBytes: 0 };
    let cpus = this.capacity.cpus;
    let memoryBytes = Number(this.capacity.memoryBytes);
    for (const h of this.counted.values()) {
      cpus -= h.cpus;
      memoryBytes -= h.memoryBytes;
    }
    return { slots: this.capacity.slots - this.counted.size, cpus, memoryBytes };
  }

  /** The whole node: a job larger than this never runs on it. */
  size(): { cpus: number; memoryBytes: number } {
    return { cpus: this.capacity.cpus, memoryBytes: Number(this.capacity.memoryBytes) };
  }

  /** Counts an attempt's resources against the node (again, or an older attempt of the job: a no-op). */
  hold(attempt: AttemptRef, resources: { cpus: number; memoryBytes: number | bigint }): void {
    if ((this.counted.get(attempt.jobId)?.attempt ?? 0) >= attempt.attempt) return;
    this.counted.set(attempt.jobId, {
      attempt: attempt.attempt,
      cpus: resources.cpus,
      memoryBytes: Number(resources.memoryBytes),
      since: performance.now(),
      cancelSent: false,
      handBackSent: false,
    });
  }

  /** Stops counting an attempt, if it is the one counted; true if it was. */
  release(attempt: AttemptRef): boolean {
    if (this.counted.get(attempt.jobId)?.attempt !== attempt.attempt) return false;
    this.counted.delete(attempt.jobId);
    this.releasedAt.set(attemptKeyOf(attempt), { ref: attempt, at: performance.now() });
    return true;
  }

  /**
   * The attempts released at or after `takenAt` (a read of Postgres sent then):
   * see NodeView.releasedSince. Older ones are forgotten, as every read sent
   * after their release shows them as they are.
   */
  releasedSince(takenAt: number): AttemptRef[] {
    for (const [key, r] of this.releasedAt) if (r.at < takenAt) this.releasedAt.delete(key);
    return [...this.releasedAt.values()].map((r) => r.ref);
  }

  /**
   * A claim for this node is sent (or, `roomHeld`, a submit placed on it, its
   * room held before the insert): until it settles, Postgres may show jobs this
   * session has not counted yet, and (a placement) this session may count jobs
   * Postgres does not show yet.
   */
  claimStarted(roomHeld = false): void {
    this.claiming++;
    if (!roomHeld) this.claimingUnheld++;
  }

  /** That claim's answer was handled (its jobs counted and sent), or it failed. */
  claimSettled(roomHeld = false): void {
    this.claiming--;
    if (!roomHeld) this.claimingUnheld--;
    this.claimSettledAt = performance.now();
  }

  /**
   * A claim for this node is in flight whose room is counted only once it
   * answers: until then the node's free room is not known. (Placements in
   * flight hold theirs, so freeCapacity already leaves it out.)
   */
  get roomUndecided(): boolean {
    return this.claimingUnheld > 0;
  }

  /**
   * Whether every claim for this node settled before `readAt`: only then does an
   * assigned attempt this session does not count mean a claim whose answer was
   * lost, rather than one whose answer is still being handled.
   */
  claimsSettledBefore(readAt: number): boolean {
    return this.claiming === 0 && this.claimSettledAt < readAt;
  }

  /** The agent reported this attempt's end on this stream (it holds it until the ack arrives). */
  endReported(attempt: AttemptRef): void {
    this.ended.set(attemptKeyOf(attempt), attempt);
  }

  /**
   * The ends reported here that the agent still listed in its latest heartbeat
   * (`held`); the others have had their ack and are forgotten.
   */
  endsStillHeld(held: AttemptRef[]): AttemptRef[] {
    const listed = new Set(held.map(attemptKeyOf));
    for (const key of this.ended.keys()) if (!listed.has(key)) this.ended.delete(key);
    return [...this.ended.values()];
  }

  /** Whether this attempt is the one counted for its job. */
  holds(attempt: AttemptRef): boolean {
    return this.counted.get(attempt.jobId)?.attempt === attempt.attempt;
  }

  /** Whether this session has sent the node the cancel of this attempt. */
  cancelSentFor(attempt: AttemptRef): boolean {
    const c = this.counted.get(attempt.jobId);
    return c?.attempt === attempt.attempt && c.cancelSent;
  }

  /** What this session counts against the node, for reconcile(). */
  countedAttempts(): CountedAttempt[] {
    return [...this.counted].map(([jobId, h]) => ({ jobId, attempt: h.attempt, since: h.since, cancelSent: h.cancelSent }));
  }

  /** Asks the node to run an attempt; false once the stream has ended. */
  sendAssignment(attempt: AttemptRef, task: Task): boolean {
    return this.send({ message: { $case: 'assignment', value: { attempt, task } } });
  }

  /**
   * Asks the node to stop an attempt: stop signal, `graceMs`, then SIGKILL (0:
   * kill at once). A job's cancel is noted on the attempt counted, so that
   * reconciliation sends it only to a node that never got it; a hand-back too,
   * so that it is asked once per stream.
   */
  sendCancel(attempt: AttemptRef, graceMs: number, cause: CancelCause): void {
    const counted = this.counted.get(attempt.jobId);
    if (cause === CancelCause.CANCEL_CAUSE_CANCELLED && counted?.attempt === attempt.attempt) counted.cancelSent = true;
    if (cause === CancelCause.CANCEL_CAUSE_HANDED_BACK && counted?.attempt === attempt.attempt) counted.handBackSent = true;
    this.send({ message: { $case: 'cancel', value: { attempt, grace: msToDuration(graceMs), cause } } });
  }

  /** Welcomes the node on its stream (this control plane takes batched messages, see common/message-batches.ts). */
  sendWelcome(heartbeatIntervalMs: number, serverVersion: string): void {
    this.send({ message: { $case: 'welcome', value: { heartbeatInterval: msToDuration(heartbeatIntervalMs), serverVersion, acceptsBatches: true } } });
  }

  /** Acknowledges a report once its change is committed (or refused). */
  sendAck(seq: bigint, accepted: boolean): void {
    if (seq > 0n) this.send({ message: { $case: 'ack', value: { seq, accepted } } });
  }
}
