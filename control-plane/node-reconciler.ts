// Keeps what each node holds and what Postgres says in agreement: when its agent
// (re)connects, and continuously after that. Every interval one statement reads
// the active attempts of all the nodes whose streams are on this replica; each
// node's next heartbeat, which lists what its agent holds, is then compared with
// that read (reconcile.ts says what to do). So any divergence, whatever caused
// it — an assignment whose claim committed while its answer was lost with a
// database connection, a container of an attempt another replica ended, a
// cancel whose notice never arrived — is repaired within an interval and a
// heartbeat, not only when the agent reconnects.
import type { Logger } from 'pino';
import { CancelCause, type AttemptRef } from '../common/gen/grid/v1/agent.js';
import { stateFromDb } from '../common/job-state.js';
import type { Sql } from './db/connect.js';
import type { Dispatcher } from './dispatcher.js';
import { secretOpener, type OpenSecrets } from './secret-box.js';
import { activeAttemptsOnNodes, assignedTasks, cancelGraceOf, type ActiveAttemptRow } from './job-store.js';
import type { JobTransitions } from './job-transitions.js';
import type { NodeRegistry } from './node-registry.js';
import type { NodeSession } from './node-session.js';
import { reconcile, type Reconciliation } from './reconcile.js';
import { createGroupCommit } from './group-commit.js';

export interface NodeReconciler {
  /** Reconciles a node whose agent just said hello (holding `held`), then opens it to work. */
  connected(session: NodeSession, held: AttemptRef[]): Promise<void>;
  /** The agent's heartbeat, listing what it holds now. */
  heartbeat(session: NodeSession, held: AttemptRef[]): void;
  stop(): Promise<void>;
}

/** A node's active attempts as one read of Postgres had them. */
interface ActiveSnapshot {
  /** When the read was sent (performance.now()). */
  takenAt: number;
  rows: ActiveAttemptRow[];
}

const MIN_INTERVAL_MS = 100;

export function startNodeReconciler(deps: {
  sql: Sql;
  registry: NodeRegistry;
  transitions: () => JobTransitions;
  dispatcher: Dispatcher;
  log: Logger;
  intervalMs: number;
  /** Unseals the secret env values of a task sent again (secret-box.ts); none: no key. */
  openSecrets?: OpenSecrets;
}): NodeReconciler {
  const { sql, registry, log } = deps;
  // The latest read for each session, waiting for the session's next heartbeat.
  const snapshots = new WeakMap<NodeSession, ActiveSnapshot>();
  let reading: Promise<void> | undefined;
  const applying = new Set<Promise<void>>();
  // The reads of nodes connecting at once share one statement (a reconnect
  // storm). Each read's takenAt is taken before it is queued: earlier than the
  // statement, which only makes reconcile() treat more counted attempts as newer.
  const connectReads = createGroupCommit<string, ActiveAttemptRow[]>({
    maxItems: 1000,
    concurrency: 1,
    isolate: () => false,
    async run(nodeIds) {
      const byNode = new Map<string, ActiveAttemptRow[]>(nodeIds.map((id) => [id, []]));
      for (const row of await activeAttemptsOnNodes(sql, nodeIds)) byNode.get(row.node_id)?.push(row);
      return nodeIds.map((id) => byNode.get(id)!);
    },
  });

  async function readAll(): Promise<void> {
    const sessions = registry.live();
    if (sessions.length === 0) return;
    const takenAt = performance.now();
    const rows = await activeAttemptsOnNodes(sql, sessions.map((s) => s.nodeId));
    const byNode = new Map<string, ActiveAttemptRow[]>(sessions.map((s) => [s.nodeId, []]));
    for (const row of rows) byNode.get(row.node_id)?.push(row);
    for (const session of sessions) {
      if (registry.get(session.nodeId) === session) snapshots.set(session, { takenAt, rows: byNode.get(session.nodeId)! });
    }
  }

  const timer = setInterval(() => {
    if (reading) return;
    reading = readAll()
      .catch((err) => log.warn({ err }, 'cannot read what the nodes should be running; will try again'))
      .finally(() => (reading = undefined));
  }, Math.max(MIN_INTERVAL_MS, deps.intervalMs)).unref();

  /** Carries out a reconciliation: sends, counts and frees on the node, loses attempts in Postgres. */
  async function apply(session: NodeSession, plan: Reconciliation, rows: ActiveAttemptRow[]): Promise<void> {
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const a of plan.keep) session.hold(a, { cpus: byId.get(a.jobId)!.cpus, memoryBytes: byId.get(a.jobId)!.memory_bytes });
    for (const a of plan.cancel) session.sendCancel(a, cancelGraceOf(byId.get(a.jobId)!), CancelCause.CANCEL_CAUSE_CANCELLED);
    for (const stale of plan.kill) session.sendCancel(stale, 0, CancelCause.CANCEL_CAUSE_STALE);
    let freed = false;
    for (const c of plan.release) freed = session.release(c) || freed;
    if (plan.resend.length > 0) {
      // Read again: only attempts still assigned to this node are sent.
      const sent: AttemptRef[] = [];
      for (const { key, task } of await assignedTasks(sql, session.nodeId, plan.resend, deps.openSecrets ?? secretOpener(undefined))) {
        // Sent meanwhile (by the claim that made it): never twice.
        if (session.holds(key)) continue;
        if (session.judged || !session.sendAssignment(key, task)) break;
        session.hold(key, task);
        sent.push(key);
      }
      if (sent.length > 0) log.info({ attempts: sent }, 'node did not have some of its assignments; sent them again');
    }
    // Losing is a transition: its owner frees what it held and asks for dispatch.
    if (plan.lose.length > 0) await deps.transitions().lose(session, plan.lose);
    if (freed) deps.dispatcher.kick('capacity');
  }

  function planFor(session: NodeSession, read: ActiveSnapshot, held: AttemptRef[]): Reconciliation {
    return reconcile({
      active: read.rows.map((r) => ({ jobId: r.id, attempt: r.attempt, state: stateFromDb(r.state) })),
      held,
      counted: session.countedAttempts(),
      reportedEnded: session.endsStillHeld(held),
      releasedSince: session.releasedSince(read.takenAt),
      takenAt: read.takenAt,
    });
  }

  return {
    async connected(session, held) {
      const takenAt = performance.now();
      const rows = await connectReads.add(session.nodeId);
      const plan = planFor(session, { takenAt, rows }, held);
      await apply(session, plan, rows);
      session.markReady();
      log.info(
        { node_name: session.name, capacity: session.capacity, generation: session.generation, kept: plan.keep.length, killed: plan.kill.length },
        'node connected',
      );
      // New capacity (maybe a larger node than any before): worth a claim.
      deps.dispatcher.kick('queued');
    },

    heartbeat(session, held) {
      const snapshot = snapshots.get(session);
      if (!snapshot) return;
      snapshots.delete(session);
      if (!session.live) return;
      const planned = planFor(session, snapshot, held);
      const counted = (a: AttemptRef) => session.holds(a);
      const settled = session.claimsSettledBefore(snapshot.takenAt);
      const plan: Reconciliation = {
        ...planned,
        // After a connect every active attempt is counted; one that is not any more
        // has ended since the read (its end freed it): not to be counted or lost again.
        keep: planned.keep.filter(counted),
        lose: planned.lose.filter(counted),
        // A claim whose answer was still being handled when the read was sent
        // may show jobs not counted yet: not lost, about to be sent.
        resend: settled ? planned.resend : [],
        // A submit placed at once counts its job before its insert commits: a read
        // sent meanwhile does not show it, and its room must not be freed for another.
        release: settled ? planned.release : [],
      };
      const changes = plan.resend.length + plan.lose.length + plan.kill.length + plan.cancel.length + plan.release.length;
      if (changes === 0 && !session.capacityUnknownNow()) return;
      if (changes > 0) {
        log.info(
          { node: session.nodeId, resend: plan.resend.length, lose: plan.lose.length, kill: plan.kill.length, cancel: plan.cancel.length, release: plan.release.length },
          'node and database disagreed; reconciling',
        );
      }
      const applied = apply(session, plan, snapshot.rows)
        .then(() => {
          // A failed claim's outcome is now known: what Postgres had then, this
          // read shows, and this plan counted it (resent) — unless another claim
          // or placement was in flight meanwhile, when the resend was held back.
          if (settled && session.capacityKnownAsOf(snapshot.takenAt)) deps.dispatcher.kick('queued');
        })
        .catch((err) => log.warn({ err, node: session.nodeId }, 'cannot reconcile the node yet; will try again'))
        .finally(() => applying.delete(applied));
      applying.add(applied);
    },

    async stop() {
      clearInterval(timer);
      await reading;
      await Promise.all(applying);
    },
  };
}
