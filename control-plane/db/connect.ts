// Opens the control plane's Postgres pool. All SQL lives in the *-store.ts files.
import postgres from 'postgres';

export type Sql = postgres.Sql;
export type TransactionSql = postgres.TransactionSql;

/** Connections a control plane's pool opens at most. */
export const POOL_MAX = 10;

/** What this replica's connections are named in pg_stat_activity (the pool metrics count them by it). */
export function applicationNameOf(replicaId?: string): string {
  return replicaId ? `grid-control-plane ${replicaId}` : 'grid-control-plane';
}

/**
 * The planner settings of the connection that reads the queue's head (sql/claim-jobs.ts).
 * That read must walk the queue order's index to its first rows. Statistics
 * taken before a burst put the queued jobs at a few hundred when there are tens
 * of thousands, and at such counts the planner reads and sorts them all (by way
 * of another index on queued jobs) instead: 3x the time per read, 14% off the
 * batched submit benchmark. With sorting disabled the ordered index is the only
 * plan left (test/integration/statement-plans.test.ts). Set per connection, as
 * one statement's SET LOCAL would need a transaction on the hot path.
 *
 * No JIT there: with sorting disabled, a plan that still sorts (postgres.js's
 * fetch of array types, which each new connection sends) costs 1e10 more, past
 * jit_above_cost, and compiling it took ~110 ms of Postgres CPU per connection.
 */
export const QUEUE_HEAD_PLANNER = { enable_sort: 'off', jit: 'off' } as const;

export function connectDatabase(url: string, options: { max?: number; replicaId?: string; planner?: Record<string, string> } = {}): Sql {
  return postgres(url, {
    max: options.max ?? POOL_MAX,
    onnotice: () => {},
    // grid.replica names this control plane in the notifications its commits
    // send (migration 6), so that it can tell its own from the other replicas'.
    connection: {
      application_name: applicationNameOf(options.replicaId),
      ...(options.replicaId ? { 'grid.replica': options.replicaId } : {}),
      ...options.planner,
    },
    // The default backoff grows to 20 s, shared by the whole pool: after a short
    // outage every query would wait that long. Retry at most every half second.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 0.5) * (0.5 + Math.random() / 2),
    connect_timeout: 5,
    // Byte offsets and sizes fit in a double; numbers are easier everywhere.
    types: {
      bigint: { to: 20, from: [20], serialize: (n: number) => String(n), parse: (s: string) => Number(s) },
    },
  });
}

/** The queue head's reader: a connection or two of its own, with QUEUE_HEAD_PLANNER. */
export function connectQueueHeadReader(url: string, replicaId?: string): Sql {
  return connectDatabase(url, { max: 2, replicaId, planner: QUEUE_HEAD_PLANNER });
}
