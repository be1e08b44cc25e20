// Label tests in SQL: how a job's constraints and affinities are stored
// (jobs.constraints, jobs.affinities, migration 19) and the one SQL test of a
// node's labels against them, used wherever a statement must know whether a
// node may run a job (the claim's head read, the waiting notes). It is the rule
// of common/label-constraints.ts, which the scheduler applies in memory.
import { LabelOperator, type LabelConstraint } from '../../common/label-constraints.js';
import type { Sql } from '../db/connect.js';
import type { Fragment } from './changed-job.js';

interface StoredTest {
  key: string;
  op: '=' | '!=';
  value: string;
}

/** A job's tests as stored: JSON text, or null for none. */
export function labelTestsToDb(tests: readonly LabelConstraint[]): string | null {
  if (tests.length === 0) return null;
  return JSON.stringify(
    tests.map((t): StoredTest => ({ key: t.key, op: t.operator === LabelOperator.LABEL_OPERATOR_NOT_EQUAL ? '!=' : '=', value: t.value })),
  );
}

/** A jobs.constraints or jobs.affinities value as postgres.js reads it. */
export type StoredTests = StoredTest[] | null;

export function labelTestsFromDb(stored: StoredTests): LabelConstraint[] {
  return (stored ?? []).map((t) => ({
    key: t.key,
    operator: t.op === '!=' ? LabelOperator.LABEL_OPERATOR_NOT_EQUAL : LabelOperator.LABEL_OPERATOR_EQUAL,
    value: t.value,
  }));
}

/**
 * SQL: true when a node's labels (a jsonb object) pass every test of
 * `constraints` (a jsonb array as stored, or NULL). A test fails when whether
 * the node has key=value differs from whether the test asks for it (= asks
 * for it, != asks for its absence).
 */
export function labelsSatisfy(sql: Sql, labels: Fragment, constraints: Fragment): Fragment {
  return sql`(${constraints} IS NULL OR NOT EXISTS (
    SELECT 1 FROM jsonb_array_elements(${constraints}) AS t(test)
    WHERE (t.test->>'op' = '=') IS DISTINCT FROM ((${labels})->>(t.test->>'key') IS NOT DISTINCT FROM t.test->>'value')))`;
}
