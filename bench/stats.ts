// Percentiles of a benchmark's samples. Pure, so the figures in BENCHMARKS.md
// come from code that is unit tested.

export interface Summary {
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile: the smallest sample with at least p% of samples at or below it. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) throw new Error('no samples');
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1]!,
  };
}

export interface Spread {
  runs: number;
  min: number;
  median: number;
  max: number;
}

/** Min / median / max of repeated runs' figures (the median is nearest-rank: the lower middle of an even count). */
export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { runs: sorted.length, min: sorted[0]!, median: percentile(sorted, 50), max: sorted[sorted.length - 1]! };
}
