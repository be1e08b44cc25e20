// Decides when to dispatch: the moment there is something to do — a submit, a
// requeue, a node connecting, a NOTIFY from another control plane (queued work),
// or a freed slot while work is known to wait. Each pass is one claim for the
// free slots of every node (job-transitions.ts), so a pass costs the same
// statements for 1 node as for 10,000, and no pass runs while nothing waits. The
// slow sweep backs up a notification lost while Postgres was unreachable.
import type { Logger } from 'pino';
import type { Sql } from './db/connect.js';
import type { JobTransitions } from './job-transitions.js';
import type { NodeRegistry } from './node-registry.js';

export interface Dispatcher {
  /**
   * Asks for a dispatch pass. `queued`: jobs may have become claimable (always
   * worth a claim); `capacity`: slots were freed (worth one only while queued
   * work is known to be left). Passes never overlap; a kick during one causes another.
   */
  kick(why: 'queued' | 'capacity'): void;
  stop(): Promise<void>;
}

const RETRY_AFTER_ERROR_MS = 1000;
/** The longest a wake for the next due job is set for (see wakeAt). */
const MAX_WAKE_MS = 60_000;
/** How often the reason queued jobs wait is brought up to date. */
const WAITING_NOTE_MS = 5000;

export function createDispatcher(deps: {
  sql: Sql;
  registry: NodeRegistry;
  transitions: () => JobTransitions;
  log: Logger;
  sweepIntervalMs: number;
}): Dispatcher {
  const { sql, registry, log } = deps;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  // Whether queued work may be waiting for slots: cleared by a claim that left
  // nothing placeable behind, set by anything that may have queued work.
  let workWaiting = true;
  // Counts `queued` kicks: one that came while a claim was in flight may be a job
  // that claim did not see, so that claim's "exhausted" says nothing of it.
  let queuedKicks = 0;

  async function pass(): Promise<void> {
    if (!workWaiting) return;
    const sessions = registry.schedulable();
    if (sessions.length === 0) return;
    const kicksBefore = queuedKicks;
    const result = await deps.transitions().claim(sessions);
    if (result.exhausted && queuedKicks === kicksBefore) workWaiting = false;
    if (result.nextDueInMs !== undefined) wakeAt(Date.now() + result.nextDueInMs);
  }

  // A queued job not due yet (spec.not_before, a retry's back-off) is skipped by
  // claims: one wakes dispatch when the first of them is due, not the sweep.
  let dueTimer: NodeJS.Timeout | undefined;
  let dueAt = Infinity;
  function wakeAt(at: number): void {
    if (at >= dueAt) return;
    clearTimeout(dueTimer);
    dueAt = at;
    // A few ms late, not early: a timer may fire a little before its time, and the job would not be due yet.
    // At most a minute: a longer delay (a job --at next month) would overflow setTimeout into 1 ms,
    // and the claim then sets the timer again for what is still due then.
    dueTimer = setTimeout(() => {
      dueAt = Infinity;
      kick('queued');
    }, Math.min(Math.max(0, at - Date.now()) + 5, MAX_WAKE_MS)).unref();
  }

  async function loop(): Promise<void> {
    do {
      again = false;
      try {
        await pass();
      } catch (err) {
        log.warn({ err }, 'dispatch pass failed; retrying');
        clearTimeout(retryTimer);
        retryTimer = setTimeout(() => kick('queued'), RETRY_AFTER_ERROR_MS).unref();
      }
    } while (again && !stopped);
    running = undefined;
  }

  function kick(why: 'queued' | 'capacity'): void {
    if (stopped) return;
    if (why === 'queued') {
      workWaiting = true;
      queuedKicks++;
    }
    if (!workWaiting) return;
    if (running) {
      again = true;
      return;
    }
    running = loop();
  }

  const sweep = setInterval(() => kick('queued'), deps.sweepIntervalMs).unref();
  // Jobs no node can take are passed over by every claim: say why they wait.
  let noting: Promise<unknown> | undefined;
  const note = setInterval(() => {
    noting ??= deps
      .transitions()
      .noteWaiting()
      .catch((err) => log.warn({ err }, 'cannot note why queued jobs wait'))
      .finally(() => (noting = undefined));
  }, WAITING_NOTE_MS).unref();
  const listening = sql.listen('grid_job_queued', () => kick('queued'), () => kick('queued')).catch((err) => {
    log.warn({ err }, 'cannot LISTEN for queued jobs; relying on the sweep');
    return undefined;
  });

  return {
    kick,
    async stop() {
      stopped = true;
      clearInterval(sweep);
      clearTimeout(dueTimer);
      clearInterval(note);
      clearTimeout(retryTimer);
      await (await listening)?.unlisten().catch(() => {});
      await running;
      await noting;
    },
  };
}
