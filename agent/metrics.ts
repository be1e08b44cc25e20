// What an agent counts for Prometheus (served by its --metrics-listen).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface AgentMetrics {
  registry: Registry;
  /** From the start request to the container running (image pull included). */
  containerStartSeconds: Histogram;
  logBytesSent: Counter<'stream'>;
  /** Binds the gauges read at scrape time to the agent's own state. */
  watch(state: { containers: () => number; outbox: () => number }): void;
}

export function createAgentMetrics(): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'grid_agent_' });
  let state = { containers: () => 0, outbox: () => 0 };
  new Gauge({ name: 'grid_agent_containers_running', help: 'Attempts this agent runs or holds a report of.', registers: [registry], collect() { this.set(state.containers()); } });
  new Gauge({ name: 'grid_agent_outbox_reports', help: 'Reports waiting for the control plane to acknowledge them.', registers: [registry], collect() { this.set(state.outbox()); } });
  return {
    registry,
    containerStartSeconds: new Histogram({
      name: 'grid_agent_container_start_seconds',
      help: 'Time from an assignment to its container running, image pull included.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    logBytesSent: new Counter({ name: 'grid_agent_log_bytes_sent_total', help: 'Job output sent to the control plane, by stream.', labelNames: ['stream'], registers: [registry] }),
    watch(s) {
      state = s;
    },
  };
}
