// Placement by node labels, pure: a job's constraints (labels a node must
// have) and affinities (labels it prefers), written `key=value` or
// `key!=value` on gridctl's command line and in messages. The control plane's
// claim tests the same rule in SQL (control-plane/sql/label-match.ts); this is
// the one the scheduler, the waiting reason and gridctl use.
import { LabelOperator, type LabelConstraint } from './gen/grid/v1/job.js';

export { LabelOperator, type LabelConstraint };

export type Labels = Readonly<Record<string, string>>;

/** Whether a node with `labels` passes one test: a NOT_EQUAL test passes a node without the label. */
export function holds(labels: Labels, c: LabelConstraint): boolean {
  const has = Object.hasOwn(labels, c.key) && labels[c.key] === c.value;
  return c.operator === LabelOperator.LABEL_OPERATOR_NOT_EQUAL ? !has : has;
}

/** Whether a node with `labels` may run a job with these constraints: all of them hold. */
export function satisfies(labels: Labels, constraints: readonly LabelConstraint[]): boolean {
  return constraints.every((c) => holds(labels, c));
}

/** How many of a job's affinities a node matches: the more, the better the node. */
export function affinityScore(labels: Labels, affinities: readonly LabelConstraint[]): number {
  let n = 0;
  for (const a of affinities) if (holds(labels, a)) n++;
  return n;
}

/** `key=value` or `key!=value`, as gridctl takes it. */
export function formatConstraint(c: LabelConstraint): string {
  return `${c.key}${c.operator === LabelOperator.LABEL_OPERATOR_NOT_EQUAL ? '!=' : '='}${c.value}`;
}

/** Reads `key=value` or `key!=value`; throws with a message naming the flag. */
export function parseConstraint(text: string, flag: string): LabelConstraint {
  const ne = text.indexOf('!=');
  const eq = text.indexOf('=');
  const [at, width, operator] = ne >= 0 && ne < eq ? [ne, 2, LabelOperator.LABEL_OPERATOR_NOT_EQUAL] : [eq, 1, LabelOperator.LABEL_OPERATOR_EQUAL];
  if (at <= 0) throw new Error(`${flag} "${text}" is not KEY=VALUE or KEY!=VALUE (e.g. ${flag} gpu=true, ${flag} region!=eu)`);
  return { key: text.slice(0, at), operator, value: text.slice(at + width) };
}
