// What this control plane counts for Prometheus (served by --metrics-listen).
// Counters and histograms are this replica's own (sum them across replicas);
// the gauges of the fleet (queue depth, running jobs, nodes by state) read
// PostgreSQL at scrape time, so every replica reports the same whole.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { applicationNameOf, POOL_MAX, type Sql } from './db/connect.js';
import type { NodeRegistry } from './node-registry.js';

export interface ControlPlaneMetrics {
  registry: Registry;
  jobsSubmitted: Counter;
  jobsEnded: Counter<'reason'>;
  /** submitted → assigned (sent to its node), and assigned → started (its container runs). */
  dispatchSeconds: Histogram<'phase'>;
  streamsOpened: Counter;
  statementSeconds: Histogram<'statement'>;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createControlPlaneMetrics(deps: { sql: Sql; registry: NodeRegistry; replicaId: string }): ControlPlaneMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'grid_control_plane_' });
  const metrics: ControlPlaneMetrics = {
    registry,
    jobsSubmitted: new Counter({ name: 'grid_jobs_submitted_total', help: 'Jobs stored by this replica (a repeated request id is not counted).', registers: [registry] }),
    jobsEnded: new Counter({ name: 'grid_jobs_ended_total', help: 'Jobs this replica saw end, by end reason.', labelNames: ['reason'], registers: [registry] }),
    dispatchSeconds: new Histogram({
      name: 'grid_dispatch_seconds',
      help: 'Time from submitted to assigned (sent to a node), and from assigned to started (the container runs).',
      labelNames: ['phase'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    streamsOpened: new Counter({ name: 'grid_agent_streams_opened_total', help: 'Agent streams welcomed by this replica (connects and reconnects).', registers: [registry] }),
    statementSeconds: new Histogram({
      name: 'grid_postgres_statement_seconds',
      help: 'Duration of the hot-path statements (a group of reports, a claim, a submit group).',
      labelNames: ['statement'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
  };
  new Gauge({
    name: 'grid_queue_depth',
    help: 'Jobs waiting in the queue (unfit: that no connected node could hold).',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      const [row] = await deps.sql<{ queued: number; unfit: number }[]>`SELECT coalesce(sum(queued), 0)::int8 AS queued, coalesce(sum(unfit), 0)::int8 AS unfit FROM queue_depth`;
      this.set({ kind: 'fit' }, Number(row!.queued) - Number(row!.unfit));
      this.set({ kind: 'unfit' }, Number(row!.unfit));
    },
  });
  new Gauge({
    name: 'grid_jobs_active',
    help: 'Jobs assigned, running or cancelling on a node, by state.',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const rows = await deps.sql<{ state: string; n: number }[]>`
        SELECT state, count(*)::int AS n FROM jobs WHERE state IN ('ASSIGNED', 'RUNNING', 'CANCELLING') GROUP BY state`;
      this.reset();
      for (const s of ['ASSIGNED', 'RUNNING', 'CANCELLING']) this.set({ state: s }, rows.find((r) => r.state === s)?.n ?? 0);
    },
  });
  new Gauge({
    name: 'grid_nodes',
    help: 'Nodes by state, as PostgreSQL records them.',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const rows = await deps.sql<{ state: string; n: number }[]>`SELECT state, count(*)::int AS n FROM nodes GROUP BY state`;
      this.reset();
      for (const s of ['READY', 'DISCONNECTED', 'LOST']) this.set({ state: s }, rows.find((r) => r.state === s)?.n ?? 0);
    },
  });
  new Gauge({
    name: 'grid_postgres_pool_max_connections',
    help: 'Connections this replica\'s PostgreSQL pool opens at most.',
    registers: [registry],
    collect() {
      this.set(POOL_MAX);
    },
  });
  new Gauge({
    name: 'grid_postgres_connections',
    help: 'This replica\'s PostgreSQL connections by what PostgreSQL says they do (active: running a statement, this scrape\'s among them); the pool\'s, and one more that LISTENs.',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      // postgres.js does not say how busy its pool is; PostgreSQL does, by each connection's application_name.
      const rows = await deps.sql<{ state: string; n: number }[]>`
        SELECT coalesce(state, 'unknown') AS state, count(*)::int AS n FROM pg_stat_activity
        WHERE application_name = ${applicationNameOf(deps.replicaId)} GROUP BY 1`;
      this.reset();
      for (const s of ['active', 'idle', 'idle in transaction']) this.set({ state: s }, rows.find((r) => r.state === s)?.n ?? 0);
    },
  });
  new Gauge({
    name: 'grid_heartbeat_lag_seconds',
    help: 'Longest silence among the agent streams open on this replica (heartbeats are due every interval).',
    registers: [registry],
    collect() {
      const now = Date.now();
      this.set(deps.registry.all().reduce((lag, s) => Math.max(lag, (now - s.lastSeenAt.getTime()) / 1000), 0));
    },
  });
  return metrics;
}
