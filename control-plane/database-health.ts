// Whether this replica may judge nodes by the last_seen_at every replica writes.
// After an outage those are all stale, so a replica judges only once it has
// reached Postgres without trouble for one reconnect grace: counted from its
// start, and again from the first quick answer after a failure or a slow answer
// (a partition can hang queries rather than fail them), which gives the other
// replicas that grace to write again. Pure but for the clock it is given.
export interface DatabaseHealth {
  /** One query's outcome: whether it answered, and how long it took. */
  observe(ok: boolean, tookMs: number): void;
  mayJudge(): boolean;
}

export function createDatabaseHealth(options: { graceMs: number; slowMs: number; now: () => number }): DatabaseHealth {
  let healthySince: number | undefined = options.now();
  return {
    observe(ok, tookMs) {
      if (!ok || tookMs > options.slowMs) healthySince = undefined;
      else healthySince ??= options.now();
    },
    mayJudge: () => healthySince !== undefined && options.now() - healthySince >= options.graceMs,
  };
}
