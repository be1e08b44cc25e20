// SIMULATED agents, for benchmarks only: they speak the real
// grid.v1.AgentService/Connect stream over real sockets, exactly as agent/agent.ts
// does (hello, welcome, heartbeats listing held attempts, reports with seq and
// acks), but run nothing: each Assignment is reported finished at once (one
// report, as the real agent sends a task that ends within its report window),
// succeeded with exit code 0 and no output. What is left to measure is
// the control plane and PostgreSQL.
//
// Cheap enough for thousands in one process: state per agent is its stream, a
// seq counter, the attempts it holds and the reports awaiting an ack; what the
// benchmark reads (assignments per attempt, when each arrived) is kept once for
// the whole fleet. Several agents may share one connection (HTTP/2 streams).
import { ChannelCredentials } from '@grpc/grpc-js';
import { ClientError, createChannel, createClient, type Channel } from 'nice-grpc';
import { AsyncQueue } from '../common/async-queue.js';
import { requestBatches, unbatchResponse } from '../common/message-batches.js';
import { attemptKeyOf, type AttemptRef } from '../common/attempt.js';
import { setMaxListeners } from 'node:events';
import { AgentServiceDefinition, CancelCause, type ConnectRequest, type ConnectResponse } from '../common/gen/grid/v1/agent.js';
import { EndReason } from '../common/gen/grid/v1/job.js';
import { CLIENT_OPTIONS } from '../common/grpc-options.js';
import { durationToMs } from '../common/units.js';
import { GRID_VERSION } from '../common/version.js';

/**
 * How a simulated agent reports an attempt:
 * - 'finished-only' (the default): only jobFinished, with its start time, as
 *   the real agent's outbox sends an attempt that starts and ends within one
 *   report window (agent/report-outbox.ts; ASSIGNED → SUCCEEDED is a
 *   transition of common/job-state.ts): one report per job. A simulated task
 *   takes no time; a real container of `true` takes ~190 ms from its start
 *   report to its end report, past the 20 ms window, and is reported twice.
 * - 'started-and-finished': jobStarted then jobFinished, both at once, as the
 *   real agent reports a task that runs longer than its report window.
 */
export type ReportMode = 'started-and-finished' | 'finished-only';

export interface SimulatedFleetOptions {
  /** Control plane host:port. */
  address: string;
  agents: number;
  /** Slots each agent offers (8, as the issue 11 scenario). */
  slots?: number;
  cpus?: number;
  memoryBytes?: bigint;
  reports?: ReportMode;
  /** Agents per TCP connection; 1 gives each its own, as real hosts have. */
  agentsPerConnection?: number;
  /** Node ids are `${prefix}-${i}`. */
  nodeIdPrefix?: string;
}

export interface SimulatedFleet {
  readonly nodeIds: string[];
  /** Resolves once every agent has been welcomed. */
  welcomed(): Promise<void>;
  /** Times each attempt ("jobId/attempt") was assigned to any agent of the fleet. */
  readonly assignments: ReadonlyMap<string, number>;
  /** performance.now() when a job's first Assignment was received. */
  readonly assignedAt: ReadonlyMap<string, number>;
  /** Resolves with performance.now() of the job's first Assignment (at once if it came already). */
  whenAssigned(jobId: string): Promise<number>;
  /** jobFinished reports acknowledged as accepted. */
  readonly finished: number;
  /** performance.now() of the last accepted jobFinished ack. */
  readonly lastFinishedAt: number;
  /**
   * Cancels received, by cause. Nothing is cancelled in a benchmark, but the
   * control plane's reconciliation may cancel (as stale) an attempt a heartbeat
   * listed while its finish was being committed: harmless, and worth counting.
   */
  readonly cancels: ReadonlyMap<CancelCause, number>;
  /** What breaks a run: refused reports, unknown acks, broken streams. */
  readonly anomalies: string[];
  /** Each Assignment of an attempt after its first, described (the first 100). */
  readonly duplicates: string[];
  stop(): Promise<void>;
}

interface AgentState {
  nodeId: string;
  outgoing: AsyncQueue<ConnectRequest>;
  /** The control plane's welcome said it takes batched messages. */
  peerTakesBatches: boolean;
  nextSeq: bigint;
  /** Attempts held: assigned and not yet acked as finished (what heartbeats list). */
  held: Map<string, AttemptRef>;
  /** seq → the attempt it reports, and whether it is that attempt's final report. */
  awaitingAck: Map<bigint, { key: string; final: boolean }>;
  heartbeat: NodeJS.Timeout | undefined;
}

const MAX_ANOMALIES_KEPT = 100;

export function startSimulatedAgents(options: SimulatedFleetOptions): SimulatedFleet {
  const slots = options.slots ?? 8;
  const capacity = { slots, cpus: options.cpus ?? slots, memoryBytes: options.memoryBytes ?? BigInt(slots) * 2n ** 30n };
  const reportMode = options.reports ?? 'finished-only';
  const perConnection = Math.max(1, options.agentsPerConnection ?? 1);
  const prefix = options.nodeIdPrefix ?? `simulated-agent-${process.pid}`;
  const abort = new AbortController();
  setMaxListeners(Infinity, abort.signal); // one signal for every stream of the fleet
  const channels: Channel[] = [];
  const assignments = new Map<string, number>();
  const assignedAt = new Map<string, number>();
  const assignWaiters = new Map<string, (at: number) => void>();
  const anomalies: string[] = [];
  const duplicates: string[] = [];
  const firstNode = new Map<string, string>();
  const cancels = new Map<CancelCause, number>();
  const stats = { finished: 0, lastFinishedAt: 0 };
  const note = (what: string) => {
    if (anomalies.length < MAX_ANOMALIES_KEPT) anomalies.push(what);
  };

  function send(agent: AgentState, message: NonNullable<ConnectRequest['message']>, final: boolean, key: string): void {
    const seq = agent.nextSeq++;
    agent.awaitingAck.set(seq, { key, final });
    agent.outgoing.push({ seq, message });
  }

  function onAssignment(agent: AgentState, ref: AttemptRef): void {
    const now = performance.now();
    const key = attemptKeyOf(ref);
    const times = (assignments.get(key) ?? 0) + 1;
    assignments.set(key, times);
    if (times === 1) {
      assignedAt.set(ref.jobId, now);
      firstNode.set(key, agent.nodeId);
      assignWaiters.get(ref.jobId)?.(now);
      assignWaiters.delete(ref.jobId);
    } else if (duplicates.length < MAX_ANOMALIES_KEPT) {
      // Enough to tell a resend to the same node from a second claim elsewhere.
      const held = agent.held.has(key) ? 'still held' : 'already finished here or elsewhere';
      duplicates.push(`${key} assigned again (${times}×) to ${agent.nodeId}, ${(now - assignedAt.get(ref.jobId)!).toFixed(0)} ms after its first assignment to ${firstNode.get(key)}, ${held}`);
    }
    // A resend (reconciliation may send an attempt again): like the real agent,
    // never run an attempt twice. The count above is what the check reads.
    if (times > 1 || agent.held.has(key)) return;
    agent.held.set(key, ref);
    const at = new Date();
    if (reportMode === 'started-and-finished') {
      send(agent, { $case: 'jobStarted', value: { attempt: ref, containerId: `simulated-${key}`, startedAt: at } }, false, key);
    }
    send(
      agent,
      {
        $case: 'jobFinished',
        value: {
          attempt: ref,
          exitCode: 0,
          reason: EndReason.END_REASON_SUCCEEDED,
          message: '',
          startedAt: at,
          finishedAt: at,
          handedBack: false,
          stdoutBytes: 0n,
          stderrBytes: 0n,
        },
      },
      true,
      key,
    );
  }

  function onAck(agent: AgentState, seq: bigint, accepted: boolean): void {
    const pending = agent.awaitingAck.get(seq);
    if (!pending) return note(`${agent.nodeId}: ack for unknown seq ${seq}`);
    agent.awaitingAck.delete(seq);
    if (!accepted) note(`${agent.nodeId}: report ${seq} of ${pending.key} refused (stale attempt)`);
    if (!pending.final) return;
    // Held until its final report is settled, accepted or refused (a refusal is final too).
    agent.held.delete(pending.key);
    if (accepted) {
      stats.finished++;
      stats.lastFinishedAt = performance.now();
    }
  }

  function handle(agent: AgentState, response: ConnectResponse, welcome: () => void): void {
    const m = response.message;
    switch (m?.$case) {
      case 'welcome': {
        agent.peerTakesBatches = m.value.acceptsBatches;
        const intervalMs = durationToMs(m.value.heartbeatInterval) || 1000;
        clearInterval(agent.heartbeat);
        agent.heartbeat = setInterval(() => {
          agent.outgoing.push({
            seq: 0n,
            message: { $case: 'heartbeat', value: { attempts: [...agent.held.values()], freeSlots: slots - agent.held.size, draining: false } },
          });
        }, intervalMs);
        welcome();
        return;
      }
      case 'assignment':
        return onAssignment(agent, m.value.attempt!);
      case 'ack':
        return onAck(agent, m.value.seq, m.value.accepted);
      case 'cancel':
        // Each attempt was reported finished the moment it came: nothing to stop.
        cancels.set(m.value.cause, (cancels.get(m.value.cause) ?? 0) + 1);
        return;
    }
  }

  async function runAgent(agent: AgentState, channel: Channel, welcome: () => void, fail: (err: unknown) => void): Promise<void> {
    const client = createClient(AgentServiceDefinition, channel);
    agent.outgoing.push({
      seq: 0n,
      message: {
        $case: 'hello',
        value: {
          nodeId: agent.nodeId,
          name: agent.nodeId,
          capacity,
          labels: { simulated: 'true' },
          agentVersion: `${GRID_VERSION}-simulated`,
          attempts: [],
          // One simulated agent process per node id, the same on every reconnect.
          agentInstance: `${process.pid}/${agent.nodeId}`,
          // As the real agent: several messages to one, both ways (common/message-batches.ts).
          acceptsBatches: true,
          draining: false,
        },
      },
    });
    try {
      const outgoing = requestBatches(agent.outgoing, () => agent.peerTakesBatches);
      for await (const response of client.connect(outgoing, { signal: abort.signal })) {
        for (const one of unbatchResponse(response) ?? []) handle(agent, one, welcome);
      }
      if (!abort.signal.aborted) note(`${agent.nodeId}: the control plane closed the stream`);
    } catch (err) {
      if (abort.signal.aborted) return;
      note(`${agent.nodeId}: stream failed: ${err instanceof ClientError ? err.details : (err as Error).message}`);
      fail(err);
    } finally {
      clearInterval(agent.heartbeat);
      agent.outgoing.end();
    }
  }

  const agents: AgentState[] = [];
  const welcomes: Promise<void>[] = [];
  const loops: Promise<void>[] = [];
  for (let i = 0; i < options.agents; i++) {
    if (i % perConnection === 0) {
      // A local subchannel pool: otherwise grpc-js shares one connection among
      // all channels to the same address, and agents could never have their own.
      channels.push(createChannel(options.address, ChannelCredentials.createInsecure(), { ...CLIENT_OPTIONS, 'grpc.use_local_subchannel_pool': 1 }));
    }
    const agent: AgentState = {
      nodeId: `${prefix}-${i}`,
      outgoing: new AsyncQueue(),
      peerTakesBatches: false,
      nextSeq: 1n,
      held: new Map(),
      awaitingAck: new Map(),
      heartbeat: undefined,
    };
    agents.push(agent);
    let welcome!: () => void;
    let fail!: (err: unknown) => void;
    welcomes.push(new Promise<void>((resolve, reject) => ((welcome = resolve), (fail = reject))));
    loops.push(runAgent(agent, channels[channels.length - 1]!, welcome, fail));
  }
  const allWelcomed = Promise.all(welcomes).then(() => undefined);
  allWelcomed.catch(() => {}); // read through welcomed(); a failure is also in anomalies

  return {
    nodeIds: agents.map((a) => a.nodeId),
    welcomed: () => allWelcomed,
    assignments,
    assignedAt,
    whenAssigned(jobId) {
      const at = assignedAt.get(jobId);
      if (at !== undefined) return Promise.resolve(at);
      return new Promise((resolve) => assignWaiters.set(jobId, resolve));
    },
    get finished() {
      return stats.finished;
    },
    get lastFinishedAt() {
      return stats.lastFinishedAt;
    },
    cancels,
    anomalies,
    duplicates,
    async stop() {
      abort.abort();
      await Promise.all(loops);
      for (const channel of channels) channel.close();
    },
  };
}
