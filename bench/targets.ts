// Issue 11's targets and how a figure stands against one: met, or missed by
// how much. Pure, so what BENCHMARKS.md says about a target is unit tested.

export interface Target {
  /** How the target reads in BENCHMARKS.md, e.g. "≥ 5,000 jobs/s". */
  text: string;
  /** A figure meets it when it is at least (or at most) `bound`. */
  kind: 'at least' | 'at most';
  bound: number;
}

export const atLeast = (bound: number, text: string): Target => ({ kind: 'at least', bound, text });
export const atMost = (bound: number, text: string): Target => ({ kind: 'at most', bound, text });

export const TARGETS = {
  jobsPerSecond: atLeast(5000, '≥ 5,000 jobs/s'),
  postgresCpuMsPerJob: atMost(0.1, '≤ 0.1 ms'),
  idleP50: atMost(2, 'p50 ≤ 2 ms'),
  idleP99: atMost(8, 'p99 ≤ 8 ms'),
  halfLoadP50: atMost(3, 'p50 ≤ 3 ms'),
  halfLoadP99: atMost(10, 'p99 ≤ 10 ms'),
  idleCpuCores: atMost(1, '< 1 core'),
  falseLost: atMost(0, '0'),
};

/** "met", or "missed: 8.2× short" / "missed: 3.1× over". */
export function verdict(value: number, target: Target): string {
  if (target.kind === 'at least') {
    if (value >= target.bound) return 'met';
    return value <= 0 ? 'missed' : `missed: ${(target.bound / value).toFixed(1)}× short`;
  }
  if (value <= target.bound) return 'met';
  if (target.bound === 0) return `missed: ${value} over`;
  return `missed: ${(value / target.bound).toFixed(1)}× over`;
}
