// Ends jobs whose time is up when nobody else will: queued jobs past their queue
// timeout, and active attempts past their backstop (run timeout, or a cancel's
// grace, plus a margin) whose node never reported. Agents enforce run timeouts
// themselves; this is the control plane's guarantee when an agent cannot. Every
// end is a compare-and-set, so any number of replicas may run this at once.
import type { Logger } from 'pino';
import type { JobTransitions } from './job-transitions.js';

const BATCH = 500;

export function startDeadlineEnforcer(deps: { transitions: JobTransitions; log: Logger; intervalMs: number }): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;

  async function enforce(): Promise<void> {
    await deps.transitions.expire(BATCH);
    await deps.transitions.backstop(BATCH);
  }

  const timer = setInterval(() => {
    if (running) return;
    running = enforce()
      .catch((err) => deps.log.warn({ err }, 'cannot enforce deadlines yet'))
      .finally(() => (running = undefined));
  }, deps.intervalMs);

  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
