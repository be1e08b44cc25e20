// Periodic jobs, pure: which ticks of a schedule are due, and what a firing
// does about a job of an earlier tick still active (the overlap policy). The
// firer (cron-firer.ts) does the I/O. Schedules are cron expressions in UTC,
// read by croner (five fields, or six with seconds first; ranges, steps,
// names and nicknames), rather than a parser of our own.
import { Cron } from 'croner';

export type OverlapPolicy = 'SKIP' | 'ALLOW' | 'CANCEL_PREVIOUS';

/** Ticks older than this when a firing looks are not fired (no control plane ran then): counted as missed. */
export const CATCH_UP_MS = 60_000;
const MAX_TICKS_PER_FIRING = 60;
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A reason a schedule or its name cannot be stored, for the caller to fix; undefined when it can. */
export function scheduleProblem(schedule: string): string | undefined {
  let cron: Cron;
  try {
    cron = new Cron(schedule, { paused: true, timezone: 'UTC' });
  } catch (err) {
    return `schedule "${schedule}" is not a cron expression: ${(err as Error).message.replace(/^CronPattern: /, '')}`;
  }
  return cron.nextRun() ? undefined : `schedule "${schedule}" never fires`;
}

export function nameProblem(name: string): string | undefined {
  return NAME.test(name) ? undefined : `name "${name}" must be 1-64 characters of a-z, 0-9, ".", "_" and "-", starting with a letter or digit`;
}

/** The first tick at or after `from`. */
export function tickAtOrAfter(schedule: string, from: Date): Date | undefined {
  return new Cron(schedule, { paused: true, timezone: 'UTC' }).nextRun(new Date(from.getTime() - 1)) ?? undefined;
}

export interface DueTicks {
  /** The ticks to fire, oldest first: from `nextAt` up to now, within CATCH_UP_MS. */
  due: Date[];
  /** Due ticks too old to fire. */
  missed: number;
  /** The first tick after now. */
  next: Date | undefined;
}

/** The ticks of `schedule` from `nextAt` (its stored next tick) to `now`. */
export function dueTicks(schedule: string, nextAt: Date, now: Date): DueTicks {
  const cron = new Cron(schedule, { paused: true, timezone: 'UTC' });
  const due: Date[] = [];
  let missed = 0;
  let tick: Date | null = nextAt.getTime() <= now.getTime() ? nextAt : null;
  // Far behind (no replica ran for a while): skip to the window instead of stepping through every old tick.
  if (tick && now.getTime() - tick.getTime() > CATCH_UP_MS) {
    const windowStart = cron.nextRun(new Date(now.getTime() - CATCH_UP_MS - 1));
    missed = countBefore(cron, tick, windowStart);
    tick = windowStart;
  }
  while (tick && tick.getTime() <= now.getTime()) {
    due.push(tick);
    tick = cron.nextRun(tick);
  }
  // More than a firing takes: the oldest are missed.
  if (due.length > MAX_TICKS_PER_FIRING) missed += due.splice(0, due.length - MAX_TICKS_PER_FIRING).length;
  return { due, missed, next: tick ?? cron.nextRun(now) ?? undefined };
}

/** Ticks from `from` up to `to` (exclusive; none: all), at most a bounded count: it only feeds a log line. */
function countBefore(cron: Cron, from: Date, to: Date | null): number {
  let n = 0;
  for (let t: Date | null = from; t && (!to || t.getTime() < to.getTime()) && n < 100_000; t = cron.nextRun(t)) n++;
  return n;
}

export interface OverlapDecision {
  /** The ticks that get a job. */
  submit: Date[];
  /** Cancel the earlier tick's job, still active. */
  cancelPrevious: boolean;
}

/**
 * What a firing of the `due` ticks does, given whether the job of the tick
 * before them is still queued or running. ALLOW gives every tick a job; SKIP and
 * CANCEL_PREVIOUS only the latest (the earlier ones would overlap it at once).
 */
export function overlapDecision(policy: OverlapPolicy, due: Date[], previousActive: boolean): OverlapDecision {
  if (due.length === 0) return { submit: [], cancelPrevious: false };
  const latest = [due[due.length - 1]!];
  switch (policy) {
    case 'ALLOW':
      return { submit: due, cancelPrevious: false };
    case 'SKIP':
      return { submit: previousActive ? [] : latest, cancelPrevious: false };
    case 'CANCEL_PREVIOUS':
      return { submit: latest, cancelPrevious: previousActive };
  }
}

/** The submit's request id of a tick: one job per tick of one schedule, however many replicas fire it. */
export function tickRequestId(name: string, createdAt: Date, tick: Date): string {
  return `cron:${name}:${createdAt.getTime()}:${tick.getTime()}`;
}
