// The owner of a node's drain: an operator takes a node out of scheduling
// (DrainNode) and puts it back (UndrainNode). The mark lives in PostgreSQL
// (nodes.drain_requested_at), so it outlasts reconnects and holds on every
// replica; this applies it to the node's session here at once, announces it
// to the other replicas (NOTIFY grid_node_drain, the node id), and takes
// theirs. A lost announcement is made good by the next heartbeat persist,
// which reads the mark back (node-liveness.ts hands it to `observed`), and meanwhile the statements
// that assign (claim-jobs.ts, insert-jobs.ts) check the mark themselves, so a
// drained node gets no job once DrainNode has answered. What a drained node
// runs goes on; it is only offered no new work (NodeSession.schedulable).
import type { Logger } from 'pino';
import type { Node } from '../common/gen/grid/v1/node.js';
import { invalidArgument, notFound } from '../common/errors.js';
import type { Sql } from './db/connect.js';
import type { NodeRegistry } from './node-registry.js';
import { setNodeDraining } from './node-store.js';
import { unmarkFitFor } from './sql/note-waiting.js';

const CHANNEL = 'grid_node_drain';

export interface NodeDrain {
  /** Drains the node (again: a no-op); the node as it now stands. */
  drain(nodeId: string): Promise<Node>;
  /** Opens the node to new work again. */
  undrain(nodeId: string): Promise<Node>;
  /** What Postgres was read to say of a node's drain elsewhere (a heartbeat persist): applied here too. */
  observed(nodeId: string, draining: boolean): void;
  stop(): Promise<void>;
}

export async function startNodeDrain(deps: { sql: Sql; registry: NodeRegistry; kick: () => void; log: Logger }): Promise<NodeDrain> {
  const { sql, registry, log } = deps;

  function apply(nodeId: string, draining: boolean): void {
    const session = registry.get(nodeId);
    if (!session || session.draining === draining) return;
    session.setDraining(draining);
    // Undrained: what waited for it may run now.
    if (!draining) deps.kick();
  }

  async function set(nodeId: string, draining: boolean): Promise<Node> {
    if (nodeId === '' || nodeId.includes('\0')) throw invalidArgument('node_id is required: the id of a node, as ListNodes gives it');
    const node = await setNodeDraining(sql, nodeId, draining);
    if (!node) throw notFound(`no node "${nodeId}" has ever connected`);
    // Queued jobs marked as fitting no node may fit this one (see note-waiting.ts): unmarked before it is offered work.
    // Its failure fails no undrain (it is committed): a mark left lasts until the next waiting note (~5 s).
    if (!draining && node.capacity) {
      await unmarkFitFor(sql, [{ cpus: node.capacity.cpus, memoryBytes: Number(node.capacity.memoryBytes) }]).catch((err) =>
        log.warn({ err, node: nodeId }, 'cannot unmark the queued jobs the undrained node can hold; the next waiting note will'),
      );
    }
    apply(nodeId, draining);
    await sql.notify(CHANNEL, nodeId).catch((err) => log.warn({ err, node: nodeId }, 'cannot announce a drain; other replicas see it with the next heartbeat'));
    log.info({ node: nodeId, draining }, draining ? 'node drained' : 'node undrained');
    return node;
  }

  const listening = await sql
    .listen(CHANNEL, (nodeId) => {
      if (!registry.get(nodeId)) return;
      sql<{ draining: boolean }[]>`SELECT drain_requested_at IS NOT NULL AS draining FROM nodes WHERE id = ${nodeId}`.then(
        ([row]) => row && apply(nodeId, row.draining),
        (err) => log.warn({ err, node: nodeId }, 'cannot read a node\'s drain; the next heartbeat will'),
      );
    })
    .catch((err) => {
      log.warn({ err }, 'cannot LISTEN for drains; other replicas\' drains are seen with heartbeats');
      return undefined;
    });

  return {
    drain: (nodeId) => set(nodeId, true),
    undrain: (nodeId) => set(nodeId, false),
    observed: apply,
    async stop() {
      await listening?.unlisten().catch(() => {});
    },
  };
}
