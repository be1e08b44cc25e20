// One process of a SIMULATED idle fleet, for the scale benchmark (bench/scale.ts):
// thousands of agents, each its own grid.v1.AgentService/Connect stream (hello,
// then a heartbeat at the interval the welcome gives), multiplexed over a few
// HTTP/2 connections. No jobs are run: these agents exist to be heard. Like the
// real agent (agent/agent.ts) each one reconnects on its own channel with capped
// exponential backoff and jitter (200 ms to 10 s) when its stream ends.
//
// Cheap on purpose, so that the control plane, not the fleet, is what is
// measured: raw grpc-js calls (no async iterators), a heartbeat encoded once and
// written as the same bytes by every agent, one timer per agent.
//
// Started by bench/scale-fleet.ts with fork(); spoken to over IPC:
//   parent → child: start, silence (stop heartbeating without closing the
//                   stream: a hung host), stop
//   child → parent: stats every 500 ms, silenced (each agent's last heartbeat),
//                   silent-closed (when the control plane ended a silent agent's stream)
import { Client, credentials, status as Status, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ConnectRequest, ConnectResponse } from '../common/gen/grid/v1/agent.js';
import { CLIENT_OPTIONS } from '../common/grpc-options.js';
import { durationToMs } from '../common/units.js';
import { GRID_VERSION } from '../common/version.js';
import { emptyFleetStats, type FleetProcessStats, type FleetStart, type FromFleet, type ToFleet } from './fleet-protocol.js';

const PATH = '/grid.v1.AgentService/Connect';
const RECONNECT_MIN_MS = 200; // agent/launch.ts
const RECONNECT_MAX_MS = 10_000;
const MAX_REASONS = 20;

interface Agent {
  nodeId: string;
  client: Client;
  hello: Buffer;
  call: ClientDuplexStream<Buffer, ConnectResponse> | undefined;
  welcomed: boolean;
  heartbeat: NodeJS.Timeout | undefined;
  lastHeartbeatAt: number;
  silent: boolean;
  delay: number;
  startedAt: number;
}

const send = (m: FromFleet) => process.send!(m);
const agents: Agent[] = [];
const byId = new Map<string, Agent>();
const clients: Client[] = [];
let stopping = false;
let heartbeatBytes: Buffer;
const stats: FleetProcessStats = emptyFleetStats();
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

function count(into: Record<string, number>, why: string): void {
  if (why in into || Object.keys(into).length < MAX_REASONS) into[why] = (into[why] ?? 0) + 1;
  else into.other = (into.other ?? 0) + 1;
}

function connect(a: Agent): void {
  a.startedAt = Date.now();
  a.welcomed = false;
  const call = a.client.makeBidiStreamRequest<Buffer, ConnectResponse>(
    PATH,
    (b: Buffer) => b,
    (b: Buffer) => ConnectResponse.decode(b),
  );
  a.call = call;
  call.on('data', (r: ConnectResponse) => {
    if (r.message?.$case !== 'welcome' || a.welcomed) return; // idle: no assignment ever comes
    a.welcomed = true;
    a.delay = RECONNECT_MIN_MS;
    stats.open++;
    stats.welcomes++;
    stats.lastWelcomeAt = Date.now();
    const intervalMs = durationToMs(r.message.value.heartbeatInterval) || 1000;
    clearInterval(a.heartbeat);
    if (!a.silent) {
      a.heartbeat = setInterval(() => {
        call.write(heartbeatBytes);
        a.lastHeartbeatAt = Date.now();
        stats.heartbeatsSent++;
      }, intervalMs);
    }
  });
  call.on('error', () => {}); // the status below says it
  call.on('status', (s: StatusObject) => ended(a, call, s));
  call.write(a.hello);
}

function ended(a: Agent, call: ClientDuplexStream<Buffer, ConnectResponse>, s: StatusObject): void {
  if (a.call !== call) return;
  clearInterval(a.heartbeat);
  a.heartbeat = undefined;
  a.call = undefined;
  // Grouped by kind: node ids and grpc-js's resolution notes left out.
  const why = `${Status[s.code] ?? s.code}: ${s.details}`.replace(/"[^"]*"/g, '"…"').replace(/\. (Last error|Resolution note).*$/, '').slice(0, 100);
  if (a.welcomed) {
    stats.open--;
    if (!stopping) {
      stats.dropped++;
      count(stats.droppedWhy, why);
    }
  } else if (!stopping) {
    stats.failedAttempts++;
    count(stats.failedWhy, why);
  }
  a.welcomed = false;
  if (stopping) return;
  if (a.silent) {
    // A hung host does not reconnect: the verdict on it is what is measured.
    send({ type: 'silent-closed', nodeId: a.nodeId, at: Date.now(), why });
    return;
  }
  // agent/agent.ts: a stream that lived a while resets the backoff.
  if (Date.now() - a.startedAt > RECONNECT_MAX_MS) a.delay = RECONNECT_MIN_MS;
  const wait = a.delay / 2 + Math.random() * (a.delay / 2);
  a.delay = Math.min(a.delay * 2, RECONNECT_MAX_MS);
  setTimeout(() => {
    if (!stopping) connect(a);
  }, wait);
}

function start(m: FleetStart): void {
  heartbeatBytes = Buffer.from(
    ConnectRequest.encode({ seq: 0n, message: { $case: 'heartbeat', value: { attempts: [], freeSlots: m.slots, draining: false } } }).finish(),
  );
  const capacity = { slots: m.slots, cpus: m.slots, memoryBytes: BigInt(m.slots) * 2n ** 30n };
  for (let i = 0; i < m.count; i++) {
    if (i % m.agentsPerConnection === 0) {
      // A local subchannel pool: otherwise grpc-js shares one connection among
      // all clients of the same address.
      clients.push(new Client(m.address, credentials.createInsecure(), { ...CLIENT_OPTIONS, 'grpc.use_local_subchannel_pool': 1 }));
    }
    const nodeId = `${m.prefix}-${m.from + i}`;
    const hello = ConnectRequest.encode({
      seq: 0n,
      message: {
        $case: 'hello',
        // One simulated agent process per node id, the same on every reconnect.
        value: { nodeId, name: nodeId, capacity, labels: { simulated: 'true' }, agentVersion: `${GRID_VERSION}-simulated`, attempts: [], agentInstance: `${process.pid}/${nodeId}`, acceptsBatches: false, draining: false },
      },
    }).finish();
    const a: Agent = {
      nodeId,
      client: clients[clients.length - 1]!,
      hello: Buffer.from(hello),
      call: undefined,
      welcomed: false,
      heartbeat: undefined,
      lastHeartbeatAt: 0,
      silent: false,
      delay: RECONNECT_MIN_MS,
      startedAt: 0,
    };
    agents.push(a);
    byId.set(nodeId, a);
  }
  // The ramp: a batch every 50 ms.
  const perTick = Math.max(1, Math.round(m.connectPerSecond / 20));
  let next = 0;
  const ramp = setInterval(() => {
    for (let k = 0; k < perTick && next < agents.length; k++) if (!stopping) connect(agents[next++]!);
    if (next >= agents.length) clearInterval(ramp);
  }, 50);
  setInterval(() => {
    stats.maxLoopDelayMs = loopDelay.max / 1e6;
    loopDelay.reset();
    send({ type: 'stats', stats });
  }, 500).unref();
}

function silence(nodeIds: string[]): void {
  const silencedAt = Date.now();
  const out: { nodeId: string; lastHeartbeatAt: number; silencedAt: number }[] = [];
  for (const id of nodeIds) {
    const a = byId.get(id);
    if (!a) continue;
    a.silent = true;
    clearInterval(a.heartbeat);
    a.heartbeat = undefined;
    out.push({ nodeId: id, lastHeartbeatAt: a.lastHeartbeatAt, silencedAt });
  }
  send({ type: 'silenced', agents: out });
}

function stop(): void {
  stopping = true;
  for (const a of agents) {
    clearInterval(a.heartbeat);
    a.call?.cancel();
  }
  for (const c of clients) c.close();
  send({ type: 'stopped' });
  setTimeout(() => process.exit(0), 100);
}

process.on('message', (m: ToFleet) => {
  if (m.type === 'start') start(m);
  else if (m.type === 'silence') silence(m.nodeIds);
  else if (m.type === 'stop') stop();
});
// The parent is gone: so is this fleet.
process.on('disconnect', () => process.exit(0));
