// An attempt's identity: (job id, attempt number), the fencing token of every
// assignment and report. One type everywhere (the proto's AttemptRef), and one
// string form for maps and sets.
import type { AttemptRef } from './gen/grid/v1/agent.js';

export type { AttemptRef };

export function attemptKeyOf(ref: AttemptRef): string {
  return `${ref.jobId}/${ref.attempt}`;
}

/**
 * A report about an attempt together with the node that sent it: the node is
 * part of the fence, so a report counts only if its attempt is the current one
 * and is assigned to that node (a node speaks only for itself).
 */
export type FromNode<R> = R & { nodeId: string };
