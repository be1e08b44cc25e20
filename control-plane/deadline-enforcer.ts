// Ends jobs whose time is up when nobody else will: queued jobs past their queue
// timeout, and active attempts past their backstop (run timeout, or a cancel's
// grace, plus a margin) whose node never reported. Agents enforce run timeouts
// themselves; this is the control plane's guarantee when an agent cannot. Every
// end is a compare-and-set, so any number of replicas may run this at once.
import type { Logger } from 'pino';
import { CancelCause } from '../common/gen/grid/v1/agent.js';
import type { Sql } from './db/connect.js';
import type { Dispatcher } from './dispatcher.js';
import { publishJobRow, type JobEventBus } from './job-events.js';
import { endPastBackstop, expireQueued } from './job-store.js';
import { release, sendCancel, type NodeRegistry } from './node-registry.js';

const BATCH = 500;

export function startDeadlineEnforcer(deps: {
  sql: Sql;
  registry: NodeRegistry;
  events: JobEventBus;
  dispatcher: Dispatcher;
  log: Logger;
  intervalMs: number;
}): { stop(): Promise<void> } {
  const { sql, log } = deps;
  let running: Promise<void> | undefined;

  async function enforce(): Promise<void> {
    for (const row of await expireQueued(sql, BATCH)) {
      log.info({ job_id: row.id }, 'queue timeout');
      publishJobRow(deps.events, row);
    }
    const ended = await endPastBackstop(sql, BATCH);
    for (const row of ended) {
      log.warn({ job_id: row.id, attempt: row.attempt, node: row.node_id, reason: row.end_reason }, 'ended by the backstop');
      publishJobRow(deps.events, row);
      const session = row.node_id ? deps.registry.get(row.node_id) : undefined;
      if (session) {
        release(session, { jobId: row.id, attempt: row.attempt });
        // The attempt is over as far as Grid is concerned: its container must go.
        sendCancel(session, { jobId: row.id, attempt: row.attempt }, 0, CancelCause.CANCEL_CAUSE_STALE);
      }
    }
    if (ended.length > 0) deps.dispatcher.kick();
  }

  const timer = setInterval(() => {
    if (running) return;
    running = enforce()
      .catch((err) => log.warn({ err }, 'cannot enforce deadlines yet'))
      .finally(() => (running = undefined));
  }, deps.intervalMs);

  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
