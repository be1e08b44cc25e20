// The nodes table: what every control plane knows of the fleet. Liveness itself
// is kept in memory (node-registry.ts); this is its durable, shared record.
import type { Hello } from '../common/gen/grid/v1/agent.js';
import { NodeState, type Node } from '../common/gen/grid/v1/node.js';
import { ACTIVE_DB_STATES } from '../common/job-state.js';
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
  drain_requested_at: Date | null;
  drain_deadline_at: Date | null;
}

/** An operator's drain of a node, as Postgres holds it (node-drain.ts owns it). */
export interface DrainMark {
  /** Offered no work; it stays so across reconnects. */
  draining: boolean;
  /** When what it still runs is handed back; null: no deadline. */
  deadlineAt: Date | null;
}

/** A node's new stream as Postgres recorded it. */
export interface NodeConnected {
  generation: number;
  drain: DrainMark;
}

/** The columns that say a node's drain, as a DrainMark's fields. */
const drainColumns = (sql: Sql) => sql`nodes.drain_requested_at IS NOT NULL AS draining, nodes.drain_deadline_at AS deadline_at`;
const drainOf = (r: { draining: boolean; deadline_at: Date | null }): DrainMark => ({ draining: r.draining, deadlineAt: r.deadline_at });

/**
 * Records the new streams of many nodes in one statement (a reconnect storm
 * after a control-plane restart is a few statements, not one per agent) and
 * returns each one's generation, or undefined when another agent process holds
 * a live stream for it (READY and heard from within `liveWithinMs`): never two
 * agents for one node, across replicas too. The same process reconnecting
 * (Hello.agent_instance) takes the node over. Node ids must be distinct.
 */
export async function recordNodesConnected(
  sql: Sql,
  nodes: { nodeId: string; hello: Hello }[],
  liveWithinMs: number,
): Promise<(NodeConnected | undefined)[]> {
  if (nodes.length === 0) return [];
  const col = <T>(f: (n: { nodeId: string; hello: Hello }) => T) => nodes.map(f);
  const rows = await sql<{ id: string; generation: number; draining: boolean; deadline_at: Date | null }[]>`
    INSERT INTO nodes (id, name, state, slots, cpus, memory_bytes, labels, agent_version, agent_instance, connected_at, last_seen_at, generation)
    SELECT id, name, 'READY', slots, cpus, memory_bytes, labels::jsonb, agent_version, agent_instance, now(), now(), 1
    FROM unnest(${col((n) => n.nodeId)}::text[], ${col((n) => n.hello.name)}::text[], ${col((n) => n.hello.capacity!.slots)}::int[],
                ${col((n) => n.hello.capacity!.cpus)}::float8[], ${col((n) => Number(n.hello.capacity!.memoryBytes))}::int8[],
                -- As text, made jsonb per row: postgres.js would encode a jsonb[] of strings again (a JSON string of the JSON).
                ${col((n) => JSON.stringify(n.hello.labels))}::text[], ${col((n) => n.hello.agentVersion)}::text[],
                ${col((n) => n.hello.agentInstance)}::text[])
         AS n(id, name, slots, cpus, memory_bytes, labels, agent_version, agent_instance)
    ON CONFLICT (id) DO UPDATE SET
      name = EXCLUDED.name, state = 'READY', slots = EXCLUDED.slots, cpus = EXCLUDED.cpus,
      memory_bytes = EXCLUDED.memory_bytes, labels = EXCLUDED.labels,
      agent_version = EXCLUDED.agent_version, agent_instance = EXCLUDED.agent_instance,
      connected_at = now(), last_seen_at = now(), generation = nodes.generation + 1
    -- Not while another stream of the node looks live, unless this is the same
    -- agent process again: its old stream is dead, whatever it looks like.
    WHERE nodes.state <> 'READY' OR nodes.last_seen_at < now() - ${liveWithinMs} * interval '1 millisecond'
       OR (EXCLUDED.agent_instance <> '' AND nodes.agent_instance = EXCLUDED.agent_instance)
    RETURNING id, generation, ${drainColumns(sql)}`;
  const recorded = new Map(rows.map((r) => [r.id, { generation: r.generation, drain: drainOf(r) }]));
  return nodes.map((n) => recorded.get(n.nodeId));
}

/** The stream ended: the node is DISCONNECTED unless a newer stream took over. */
export async function recordNodeDisconnected(sql: Sql, nodeId: string, generation: number): Promise<void> {
  await sql`UPDATE nodes SET state = 'DISCONNECTED', last_seen_at = now()
            WHERE id = ${nodeId} AND generation = ${generation} AND state = 'READY'`;
}

/**
 * Heartbeats persisted in one statement for all of this control plane's live
 * nodes. Returns the nodes whose row took it, each with its drain (so a drain
 * whose NOTIFY was lost still holds within a persist interval): a
 * node missing from the answer is no longer this stream's in Postgres (judged
 * LOST elsewhere, or moved on).
 */
export async function recordNodesSeen(sql: Sql, nodes: { nodeId: string; generation: number }[]): Promise<Map<string, DrainMark>> {
  if (nodes.length === 0) return new Map();
  const rows = await sql<{ id: string; draining: boolean; deadline_at: Date | null }[]>`
    UPDATE nodes SET last_seen_at = now()
    FROM unnest(${nodes.map((n) => n.nodeId)}::text[], ${nodes.map((n) => n.generation)}::int8[]) AS seen(id, generation)
    WHERE nodes.id = seen.id AND nodes.generation = seen.generation AND nodes.state = 'READY'
    RETURNING nodes.id, ${drainColumns(sql)}`;
  return new Map(rows.map((r) => [r.id, drainOf(r)]));
}

/** A node's drain as it stands, or undefined for a node never seen. */
export async function readDrain(sql: Sql, nodeId: string): Promise<DrainMark | undefined> {
  const [row] = await sql<{ draining: boolean; deadline_at: Date | null }[]>`SELECT ${drainColumns(sql)} FROM nodes WHERE id = ${nodeId}`;
  return row && drainOf(row);
}

/**
 * Drains a node (`deadlineMs` from now, by the database's clock: when what it
 * runs is handed back; undefined keeps any deadline set before), or undrains
 * it (no deadline either). The node as it now stands, or undefined for a node never seen.
 */
export async function setNodeDraining(sql: Sql, nodeId: string, draining: boolean, deadlineMs?: number): Promise<Node | undefined> {
  const [row] = await sql<{ id: string }[]>`
    UPDATE nodes SET drain_requested_at = CASE WHEN ${draining} THEN coalesce(drain_requested_at, now()) END,
      drain_deadline_at = CASE WHEN NOT ${draining} THEN NULL
                               WHEN ${deadlineMs ?? null}::float8 IS NULL THEN drain_deadline_at
                               ELSE now() + ${deadlineMs ?? null}::float8 * interval '1 millisecond' END
    WHERE id = ${nodeId} RETURNING id`;
  if (!row) return undefined;
  return (await readNodes(sql, sql`WHERE n.id = ${nodeId}`, 1))[0];
}

/**
 * Nodes no control plane has heard from for longer than the grace, and LOST
 * nodes that still hold active jobs (a verdict whose second half never ran).
 */
export async function nodesPastGrace(sql: Sql, graceMs: number): Promise<{ id: string; generation: number }[]> {
  return sql<{ id: string; generation: number }[]>`
    SELECT id, generation FROM nodes
    WHERE (state <> 'LOST' AND last_seen_at < now() - ${graceMs} * interval '1 millisecond')
       OR (state = 'LOST' AND EXISTS (SELECT 1 FROM jobs WHERE jobs.node_id = nodes.id AND jobs.state = ANY(${ACTIVE_DB_STATES})))`;
}

/** A page of nodes by (name, id), after the given one. */
export async function listNodes(sql: Sql, page: { limit: number; after?: { name: string; id: string } }): Promise<Node[]> {
  return readNodes(sql, page.after ? sql`WHERE (n.name, n.id) > (${page.after.name}, ${page.after.id})` : sql``, page.limit);
}

async function readNodes(sql: Sql, where: ReturnType<Sql>, limit: number): Promise<Node[]> {
  const rows = await sql<NodeRow[]>`
    SELECT n.*, (SELECT count(*)::int FROM jobs j WHERE j.node_id = n.id AND j.state = ANY(${ACTIVE_DB_STATES})) AS running_jobs
    FROM nodes n ${where} ORDER BY n.name, n.id LIMIT ${limit}`;
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    state: NodeState[`NODE_STATE_${r.state}` as keyof typeof NodeState] as NodeState,
    capacity: { slots: r.slots, cpus: r.cpus, memoryBytes: BigInt(r.memory_bytes) },
    // Rows written before the fix hold their labels as a JSON string of the JSON.
    labels: typeof r.labels === 'string' ? (JSON.parse(r.labels) as Record<string, string>) : r.labels,
    agentVersion: r.agent_version,
    runningJobs: r.running_jobs,
    connectedAt: r.connected_at ?? undefined,
    lastSeenAt: r.last_seen_at ?? undefined,
    draining: r.drain_requested_at !== null,
    drainDeadline: r.drain_deadline_at ?? undefined,
  }));
}
