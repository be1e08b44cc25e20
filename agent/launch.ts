// Builds a running agent from its settings: Docker driver (checked reachable
// first, so a missing engine is one plain message), node identity, capacity.
import { availableParallelism, hostname, totalmem } from 'node:os';
import type { Logger } from 'pino';
import { startAgent, type Agent } from './agent.js';
import { createDockerDriver, type PullPolicy } from './docker-driver.js';
import { resolveNodeId } from './node-identity.js';
import { DEFAULT_CONTAINER_POLICY, type ContainerPolicy } from './container-policy.js';
import { createAgentMetrics } from './metrics.js';
import { serveMetrics } from '../common/metrics-endpoint.js';
import { commonNameOf, type ClientTls } from '../common/client-credentials.js';

export interface AgentSettings {
  /** Control-plane replicas, host:port each (see AgentOptions.servers). */
  servers: string[];
  /** TLS to the control plane; the client certificate names this node. */
  tls?: ClientTls;
  nodeId?: string;
  name?: string;
  stateDir: string;
  /** Jobs at once; the CPU count by default. */
  slots?: number;
  cpus?: number;
  memoryBytes?: number;
  labels: Record<string, string>;
  dockerSocket: string;
  pull: PullPolicy;
  /** A pull that reports nothing for this long is given up (IMAGE_UNAVAILABLE). */
  pullStallMs?: number;
  /** Image reference prefixes this node runs; empty or unset: any. */
  allowedImages?: string[];
  heartbeatIntervalMs: number;
  timeoutGraceMs: number;
  /** Reports held in memory while the control plane is away, before spilling to disk. */
  outboxMemoryBytes?: number;
  /** How job containers are hardened; the defaults drop every capability and keep jobs off this host's ports. */
  containerPolicy?: ContainerPolicy;  /** host:port for Prometheus's GET /metrics; none: not served. */
  metricsListen?: string;
}

const REPORT_WINDOW_MS = 20;

export async function launchAgent(settings: AgentSettings, log: Logger): Promise<Agent> {
  const driver = createDockerDriver({
    socketPath: settings.dockerSocket,
    pull: settings.pull,
    allowedImages: settings.allowedImages ?? [],
    pullStallMs: settings.pullStallMs ?? 120_000,
    containerPolicy: settings.containerPolicy ?? DEFAULT_CONTAINER_POLICY,
    log,
  });
  await driver.prepare();
  const cpus = settings.cpus ?? availableParallelism();
  const metrics = settings.metricsListen ? createAgentMetrics() : undefined;
  const endpoint = metrics ? await serveMetrics(metrics.registry, settings.metricsListen!) : undefined;
  if (endpoint) log.info({ address: endpoint.address }, 'serving metrics');
  const agent = startAgent({
    metrics,
    servers: settings.servers,
    tls: settings.tls,
    nodeId: nodeIdOf(settings),
    name: settings.name || hostname(),
    capacity: {
      slots: settings.slots ?? Math.max(1, Math.floor(cpus)),
      cpus,
      memoryBytes: BigInt(settings.memoryBytes ?? totalmem()),
    },
    labels: settings.labels,
    driver,
    log,
    heartbeatIntervalMs: settings.heartbeatIntervalMs,
    flushIntervalMs: 100,
    maxChunkBytes: 64 * 1024,
    timeoutGraceMs: settings.timeoutGraceMs,
    reconnectMinMs: 200,
    reconnectMaxMs: 10_000,
    stateDir: settings.stateDir,
    outboxMemoryBytes: settings.outboxMemoryBytes ?? 32 * 1024 * 1024,
    pullProgressIntervalMs: 250,
    // Short enough not to be seen (a container takes ~300 ms to start). A task
    // that ends within it is one report, not two; a container of `true` takes
    // ~190 ms from its start report to its end report, so it still sends two.
    reportWindowMs: REPORT_WINDOW_MS,
  });
  return {
    nodeId: agent.nodeId,
    connected: () => agent.connected(),
    async stop() {
      await agent.stop();
      await endpoint?.close();
    },
    async drain(deadlineMs, settleMs) {
      const left = await agent.drain(deadlineMs, settleMs);
      await endpoint?.close();
      return left;
    },
  };
}

/** Over TLS the node is the one its certificate names; else the flag's, or the one kept in the state dir. */
function nodeIdOf(settings: AgentSettings): string {
  if (!settings.tls?.certFile) return resolveNodeId(settings.nodeId, settings.stateDir);
  const certified = commonNameOf(settings.tls.certFile);
  if (settings.nodeId && settings.nodeId !== certified) {
    throw new Error(`--node-id is "${settings.nodeId}" but the certificate ${settings.tls.certFile} is for node "${certified}": drop --node-id or use that node's certificate`);
  }
  return certified;
}

/** Parses "host:port,host2:port" (the --server flag): each a host and a port. */
export function parseServers(text: string): string[] {
  const servers = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (servers.length === 0) throw new Error('give at least one control plane address, host:port');
  for (const server of servers) {
    const port = Number(server.slice(server.lastIndexOf(':') + 1));
    if (!server.includes(':') || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`"${server}" is not host:port`);
  }
  return servers;
}

/** Parses "k=v,k2=v2" (the --labels flag). */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`label "${pair}" is not key=value`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}
