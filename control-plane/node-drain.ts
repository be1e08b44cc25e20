// The owner of a node's drain: an operator takes a node out of scheduling
// (DrainNode) and puts it back (UndrainNode). The mark lives in PostgreSQL
// (nodes.drain_requested_at), so it outlasts reconnects and holds on every
// replica; this applies it to the node's session here at once, announces it
// to the other replicas (NOTIFY grid_node_drain, the node id), and takes
// theirs. A lost announcement is made good by the next heartbeat persist,
// which reads the mark back (node-liveness.ts hands it to `observed`), and meanwhile the statements
// that assign (claim-jobs.ts, insert-jobs.ts) check the mark themselves, so a
// drained node gets no job once DrainNode has answered. What a drained node
// runs goes on; it is only offered no new work (NodeSession.schedulable), until
// the drain's deadline, if it has one: then the replica holding the node's
// stream asks the node to stop each attempt it still holds and hand it back
// (CANCEL_CAUSE_HANDED_BACK; job-transitions.ts requeues the job on the report).
// That check runs on every tick against what the session counts, so attempts
// assigned in flight, and a node that reconnects to another replica, are
// handed back too.
import type { Logger } from 'pino';
import { CancelCause } from '../common/gen/grid/v1/agent.js';
import type { Node } from '../common/gen/grid/v1/node.js';
import { invalidArgument, notFound } from '../common/errors.js';
import type { Sql } from './db/connect.js';
import type { NodeRegistry } from './node-registry.js';
import { readDrain, setNodeDraining, type DrainMark } from './node-store.js';
import { unmarkFitFor } from './sql/note-waiting.js';
import { handsBack } from '../common/version.js';

const CHANNEL = 'grid_node_drain';
/** A drain deadline further off than this is surely a mistake (and would overflow a timestamp well before). */
const MAX_DEADLINE_MS = 30 * 24 * 3600 * 1000;

export interface NodeDrain {
  /**
   * Drains the node (again: a no-op, or a new deadline); the node as it now
   * stands. `deadlineMs` from now, what still runs on it is handed back;
   * undefined keeps the deadline set before, if any.
   */
  drain(nodeId: string, deadlineMs?: number): Promise<Node>;
  /** Opens the node to new work again (and drops its deadline). */
  undrain(nodeId: string): Promise<Node>;
  /** What Postgres was read to say of a node's drain elsewhere (a heartbeat persist): applied here too. */
  observed(nodeId: string, drain: DrainMark): void;
  stop(): Promise<void>;
}

export async function startNodeDrain(deps: {
  sql: Sql;
  registry: NodeRegistry;
  kick: () => void;
  log: Logger;
  /** How often deadlines are checked against what this replica's sessions hold. */
  checkIntervalMs: number;
}): Promise<NodeDrain> {
  const { sql, registry, log } = deps;

  function apply(nodeId: string, drain: DrainMark): void {
    const session = registry.get(nodeId);
    if (!session || (session.draining === drain.draining && session.drainDeadlineAt?.getTime() === drain.deadlineAt?.getTime())) return;
    session.setDrain(drain);
    // Undrained: what waited for it may run now.
    if (!drain.draining) deps.kick();
    handBackDue();
  }

  const warnedOld = new WeakSet<object>();

  /** Asks each node past its drain's deadline to hand back what it still holds (once per attempt and stream). */
  function handBackDue(): void {
    const now = Date.now();
    for (const session of registry.all()) {
      if (session.judged) continue;
      const due = session.handBacksDue(now);
      if (due.length === 0) continue;
      if (!handsBack(session.agentVersion)) {
        // It would take the hand-back for a cancel: its jobs run on, to be ended by themselves.
        if (!warnedOld.has(session)) log.warn({ node: session.nodeId, agent_version: session.agentVersion }, 'drain deadline passed, but this agent is too old to hand jobs back; they run on');
        warnedOld.add(session);
        continue;
      }
      log.info({ node: session.nodeId, jobs: due.map((a) => ({ job_id: a.jobId, attempt: a.attempt })) }, 'drain deadline passed; asking the node to hand its jobs back');
      // The grace is the task's own: the agent applies its stop_grace to a hand-back.
      for (const attempt of due) session.sendCancel(attempt, 0, CancelCause.CANCEL_CAUSE_HANDED_BACK);
    }
  }

  async function set(nodeId: string, draining: boolean, deadlineMs?: number): Promise<Node> {
    if (nodeId === '' || nodeId.includes('\0')) throw invalidArgument('node_id is required: the id of a node, as ListNodes gives it');
    if (deadlineMs !== undefined && !(deadlineMs >= 0 && deadlineMs <= MAX_DEADLINE_MS)) {
      throw invalidArgument(`deadline is ${deadlineMs / 1000} s: it must be between 0 (at once) and ${MAX_DEADLINE_MS / 86_400_000} days`);
    }
    const node = await setNodeDraining(sql, nodeId, draining, deadlineMs);
    if (!node) throw notFound(`no node "${nodeId}" has ever connected`);
    // Queued jobs marked as fitting no node may fit this one (see note-waiting.ts): unmarked before it is offered work.
    // Its failure fails no undrain (it is committed): a mark left lasts until the next waiting note (~5 s).
    if (!draining && node.capacity) {
      await unmarkFitFor(sql, [{ cpus: node.capacity.cpus, memoryBytes: Number(node.capacity.memoryBytes), labels: node.labels }]).catch((err) =>
        log.warn({ err, node: nodeId }, 'cannot unmark the queued jobs the undrained node can hold; the next waiting note will'),
      );
    }
    apply(nodeId, { draining: node.draining, deadlineAt: node.drainDeadline ?? null });
    await sql.notify(CHANNEL, nodeId).catch((err) => log.warn({ err, node: nodeId }, 'cannot announce a drain; other replicas see it with the next heartbeat'));
    log.info({ node: nodeId, draining, deadline: node.drainDeadline }, draining ? 'node drained' : 'node undrained');
    return node;
  }

  const listening = await sql
    .listen(CHANNEL, (nodeId) => {
      if (!registry.get(nodeId)) return;
      readDrain(sql, nodeId).then(
        (drain) => drain && apply(nodeId, drain),
        (err) => log.warn({ err, node: nodeId }, 'cannot read a node\'s drain; the next heartbeat will'),
      );
    })
    .catch((err) => {
      log.warn({ err }, 'cannot LISTEN for drains; other replicas\' drains are seen with heartbeats');
      return undefined;
    });

  const ticks = setInterval(handBackDue, deps.checkIntervalMs);

  return {
    drain: (nodeId, deadlineMs) => set(nodeId, true, deadlineMs),
    undrain: (nodeId) => set(nodeId, false),
    observed: apply,
    async stop() {
      clearInterval(ticks);
      await listening?.unlisten().catch(() => {});
    },
  };
}
