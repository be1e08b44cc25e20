// An attempt's identity: (job id, attempt number), the fencing token of every
// assignment and report. One type everywhere (the proto's AttemptRef), and one
// string form for maps and sets.
import type { AttemptRef } from './gen/grid/v1/agent.js';

export type { AttemptRef };

export function attemptKeyOf(ref: AttemptRef): string {
  return `${ref.jobId}/${ref.attempt}`;
}
