// Pushes queued jobs to nodes the moment there is something to do: a submit, a
// freed slot, a node connecting, or a NOTIFY from another control plane. There is
// no polling interval between submit and dispatch; the slow sweep only backs up a
// notification lost while Postgres was unreachable.
import type { Logger } from 'pino';
import type { Sql } from './db/connect.js';
import { claimJobs, queueDepth, rowTask, unassign, type JobRow } from './job-store.js';
import { publishJobRow, type JobEventBus } from './job-events.js';
import { freeCapacity, hold, isLive, sendAssignment, type NodeRegistry } from './node-registry.js';
import { dispatchOrder } from './scheduler.js';

export interface Dispatcher {
  /** Asks for a dispatch pass; passes never overlap, and a kick during one causes another. */
  kick(): void;
  stop(): Promise<void>;
}

const RETRY_AFTER_ERROR_MS = 1000;

export function createDispatcher(deps: {
  sql: Sql;
  registry: NodeRegistry;
  events: JobEventBus;
  log: Logger;
  sweepIntervalMs: number;
}): Dispatcher {
  const { sql, registry, events, log } = deps;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;

  async function pass(): Promise<void> {
    const offers = dispatchOrder(registry.live().map((s) => ({ nodeId: s.nodeId, free: freeCapacity(s) })));
    if (offers.length === 0) return;
    // One cheap read (the depth the triggers keep) instead of a claim per node
    // when nothing is queued, and no claims once all that was queued is taken:
    // a job queued meanwhile kicks another pass.
    let queued = await queueDepth(sql);
    for (const offer of offers) {
      if (queued <= 0) break;
      const session = registry.get(offer.nodeId);
      if (!session || !isLive(session)) continue;
      let rows: JobRow[];
      try {
        const size = { cpus: session.capacity.cpus, memoryBytes: Number(session.capacity.memoryBytes) };
        rows = await claimJobs(sql, { nodeId: offer.nodeId, ...freeCapacity(session), size });
      } catch (err) {
        // The claim may have committed with its answer lost: until the node is
        // reconciled, what it holds is unknown, and its slots are not offered.
        session.capacityUnknownSince = performance.now();
        throw err;
      }
      queued -= rows.length;
      const undelivered: JobRow[] = [];
      for (const row of rows) {
        // The stream may have ended, been judged or been replaced while the claim
        // was in flight; such a claim must not stay ASSIGNED to a node that never hears of it.
        const current = registry.get(offer.nodeId) === session && !session.judged;
        const task = rowTask(row);
        const attempt = { jobId: row.id, attempt: row.attempt };
        if (!current || !sendAssignment(session, attempt, task)) {
          undelivered.push(row);
          continue;
        }
        hold(session, attempt, task);
        log.debug({ job_id: row.id, attempt: row.attempt, node: offer.nodeId }, 'assigned');
        publishJobRow(events, row);
      }
      if (undelivered.length > 0) {
        log.warn({ node: offer.nodeId, jobs: undelivered.length }, 'node stream ended as jobs were assigned; requeueing them');
        const back = await unassign(sql, offer.nodeId, undelivered.map((r) => ({ jobId: r.id, attempt: r.attempt })));
        for (const row of back) publishJobRow(events, row);
        again = true;
      }
    }
  }

  async function loop(): Promise<void> {
    do {
      again = false;
      try {
        await pass();
      } catch (err) {
        log.warn({ err }, 'dispatch pass failed; retrying');
        clearTimeout(retryTimer);
        retryTimer = setTimeout(kick, RETRY_AFTER_ERROR_MS).unref();
      }
    } while (again && !stopped);
    running = undefined;
  }

  function kick(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = loop();
  }

  const sweep = setInterval(kick, deps.sweepIntervalMs).unref();
  const listening = sql.listen('grid_job_queued', kick, kick).catch((err) => {
    log.warn({ err }, 'cannot LISTEN for queued jobs; relying on the sweep');
    return undefined;
  });

  return {
    kick,
    async stop() {
      stopped = true;
      clearInterval(sweep);
      clearTimeout(retryTimer);
      await (await listening)?.unlisten().catch(() => {});
      await running;
    },
  };
}
