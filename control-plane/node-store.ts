// The nodes table: what every control plane knows of the fleet. Liveness itself
// is kept in memory (node-registry.ts); this is its durable, shared record.
import type { Hello } from '../common/gen/grid/v1/agent.js';
import { NodeState, type Node } from '../common/gen/grid/v1/node.js';
import { ACTIVE_STATES, stateToDb } from '../common/job-state.js';
import type { Sql } from './db/connect.js';

interface NodeRow {
  id: string;
  name: string;
  state: string;
  slots: number;
  cpus: number;
  memory_bytes: number;
  labels: Record<string, string>;
  agent_version: string;
  connected_at: Date | null;
  last_seen_at: Date | null;
  running_jobs: number;
}

export async function recordNodeConnected(sql: Sql, nodeId: string, hello: Hello): Promise<void> {
  const c = hello.capacity!;
  await sql`
    INSERT INTO nodes (id, name, state, slots, cpus, memory_bytes, labels, agent_version, connected_at, last_seen_at)
    VALUES (${nodeId}, ${hello.name}, 'READY', ${c.slots}, ${c.cpus}, ${Number(c.memoryBytes)},
            ${sql.json(hello.labels)}, ${hello.agentVersion}, now(), now())
    ON CONFLICT (id) DO UPDATE SET
      name = EXCLUDED.name, state = 'READY', slots = EXCLUDED.slots, cpus = EXCLUDED.cpus,
      memory_bytes = EXCLUDED.memory_bytes, labels = EXCLUDED.labels,
      agent_version = EXCLUDED.agent_version, connected_at = now(), last_seen_at = now()`;
}

export async function recordNodeDisconnected(sql: Sql, nodeId: string, lastSeenAt: Date): Promise<void> {
  await sql`UPDATE nodes SET state = 'DISCONNECTED', last_seen_at = ${lastSeenAt} WHERE id = ${nodeId}`;
}

export async function listNodes(sql: Sql): Promise<Node[]> {
  const active = ACTIVE_STATES.map(stateToDb);
  const rows = await sql<NodeRow[]>`
    SELECT n.*, (SELECT count(*)::int FROM jobs j WHERE j.node_id = n.id AND j.state = ANY(${active})) AS running_jobs
    FROM nodes n ORDER BY n.name, n.id`;
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    state: NodeState[`NODE_STATE_${r.state}` as keyof typeof NodeState] as NodeState,
    capacity: { slots: r.slots, cpus: r.cpus, memoryBytes: BigInt(r.memory_bytes) },
    labels: r.labels,
    agentVersion: r.agent_version,
    runningJobs: r.running_jobs,
    connectedAt: r.connected_at ?? undefined,
    lastSeenAt: r.last_seen_at ?? undefined,
  }));
}
