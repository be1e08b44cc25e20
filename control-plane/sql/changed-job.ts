// What every transition statement returns about a row it changed: enough for
// its follow-ups (free the node's slot, deliver a cancel, publish), never the
// spec and task bytes, which can be megabytes; watchers read the whole job
// (job-transitions.ts publishes only to jobs someone watches).
import type { EndReason, JobState } from '../../common/gen/grid/v1/job.js';
import { reasonToDb, stateToDb, type Move } from '../../common/job-state.js';
import type postgres from 'postgres';
import type { Sql, TransactionSql } from '../db/connect.js';

/** A piece of SQL to embed in a statement. */
export type Fragment = postgres.PendingQuery<postgres.Row[]>;

export interface ChangedJob {
  id: string;
  version: number;
  state: string;
  end_reason: string | null;
  attempt: number;
  node_id: string | null;
  exit_code: number | null;
  cancel_grace_ms: number | null;
  stop_grace_ms: number;
}

/** The RETURNING list of a statement that updates `jobs` (aliased or not). */
export function changedColumns(sql: Sql | TransactionSql, alias = 'jobs'): Fragment {
  return (sql as Sql).unsafe(
    ['id', 'version', 'state', 'end_reason', 'attempt', 'node_id', 'exit_code', 'cancel_grace_ms', 'stop_grace_ms']
      .map((c) => `${alias}.${c}`)
      .join(', '),
  );
}

/** A transition's moves keyed by the text the statement computes for each row (its state, maybe more). */
export type MoveTable = { key: string; move: Move }[];

/** Moves for every state the transition allows, keyed by state. */
export function movesByState(states: readonly JobState[], targetOf: (from: JobState) => Move | undefined): MoveTable {
  return states.flatMap((from) => {
    const move = targetOf(from);
    return move ? [{ key: stateToDb(from), move }] : [];
  });
}

/**
 * The keys of a move table, for the statement's guard: a row whose key is not
 * in it is not allowed this transition and is left alone.
 */
export function guardKeys(table: MoveTable): string[] {
  return table.map((t) => t.key);
}

/**
 * SQL picking, for each row, a value of its move by the row's key: looked up by
 * position in constant arrays rather than joined, so a row changed by a
 * concurrent commit is re-checked as it is then (EvalPlanQual re-evaluates the
 * expression on the new version) and moves by its new state.
 */
export function pick(sql: Sql | TransactionSql, table: MoveTable, key: Fragment, value: 'state' | 'reason'): Fragment {
  const values = table.map((t) => (value === 'state' ? stateToDb(t.move.state) : t.move.reason === undefined ? null : reasonToDb(t.move.reason as EndReason)));
  return (sql as Sql)`(${values}::text[])[array_position(${guardKeys(table)}::text[], ${key})]`;
}
