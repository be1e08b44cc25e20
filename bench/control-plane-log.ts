// What a benchmark run's control-plane log says about reconciliation (see
// control-plane/reconcile.ts and node-reconciler.ts). In a run where nothing
// fails, every repair is a race between a heartbeat and the reports or claims
// around it: worth seeing beside the figures. Planned repairs are from the
// "node and database disagreed" lines; a planned resend is read again before it
// is sent, so what was really sent again (and lost) is counted apart.
import { readFileSync } from 'node:fs';

export interface Repairs {
  /** Reconciliations that found a difference. */
  disagreements: number;
  plannedResends: number;
  /** Stale attempts whose container was to be killed: each a cancel to the agent. */
  kills: number;
  releases: number;
  /** Assignments really sent again. */
  resent: number;
  /** Attempts judged gone from their node. */
  lost: number;
}

export const NO_REPAIRS: Repairs = { disagreements: 0, plannedResends: 0, kills: 0, releases: 0, resent: 0, lost: 0 };

export function repairsInLog(logFile: string): Repairs {
  const r = { ...NO_REPAIRS };
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (line.includes('node and database disagreed')) {
      const e = JSON.parse(line) as { resend?: number; kill?: number; release?: number };
      r.disagreements++;
      r.plannedResends += e.resend ?? 0;
      r.kills += e.kill ?? 0;
      r.releases += e.release ?? 0;
    } else if (line.includes('sent them again')) {
      r.resent += (JSON.parse(line) as { attempts?: unknown[] }).attempts?.length ?? 0;
    } else if (line.includes('they are lost')) {
      r.lost += (JSON.parse(line) as { attempts?: unknown[] }).attempts?.length ?? 0;
    }
  }
  return r;
}

export function addRepairs(a: Repairs, b: Repairs): Repairs {
  const sum = { ...a };
  for (const k of Object.keys(sum) as (keyof Repairs)[]) sum[k] += b[k];
  return sum;
}

export function describeRepairs(r: Repairs): string {
  if (r.disagreements === 0) return 'none';
  return (
    `${r.disagreements} disagreements (planned: ${r.plannedResends} resends, ${r.kills} kills of stale attempts, ${r.releases} releases); ` +
    `really resent ${r.resent}, lost ${r.lost}`
  );
}
