// A SIMULATED idle fleet of many thousands of agents, spread over a few child
// processes (bench/fleet-process.ts), each process holding a few thousand
// Connect streams over a few HTTP/2 connections. This side starts them, adds up
// what they report and passes on commands. The children's CPU is read from /proc
// too: on a 2-core machine the fleet competes with the control plane it measures.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { emptyFleetStats, type FleetProcessStats, type FromFleet, type ToFleet } from './fleet-protocol.js';
import { processCpuMs } from './process-cpu.js';

export interface ScaleFleetOptions {
  address: string;
  agents: number;
  /** Child processes (default 4). */
  processes?: number;
  /** Streams per HTTP/2 connection (default 100): one file descriptor per connection on each side. */
  agentsPerConnection?: number;
  /** Hellos per second over the whole fleet (default 2,000). */
  connectPerSecond?: number;
  slots?: number;
  prefix: string;
}

/** The fleet's processes' stats added up; maxLoopDelayMs is the worst of any process in its last report. */
export type FleetTotals = FleetProcessStats;

export interface SilencedAgent {
  nodeId: string;
  lastHeartbeatAt: number;
  silencedAt: number;
}

export interface ScaleFleet {
  readonly nodeIds: string[];
  readonly pids: number[];
  totals(): FleetTotals;
  /** Resolves true once `done(totals)` holds, false after the timeout. */
  until(done: (t: FleetTotals) => boolean, timeoutMs: number): Promise<boolean>;
  /** Stops these agents' heartbeats, their streams left open. */
  silence(nodeIds: string[]): Promise<SilencedAgent[]>;
  /** When the control plane ended each silenced agent's stream (Date.now()). */
  readonly silentClosed: ReadonlyMap<string, number>;
  /** CPU of all fleet processes, ms. */
  cpuMs(): number;
  /** Fleet processes that exited before stop(), with how. */
  readonly crashed: string[];
  stop(): Promise<void>;
}

const CHILD = fileURLToPath(new URL('./fleet-process.ts', import.meta.url));
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function add(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

export async function startScaleFleet(o: ScaleFleetOptions): Promise<ScaleFleet> {
  const processes = Math.max(1, Math.min(o.processes ?? 4, o.agents));
  const perConnection = o.agentsPerConnection ?? 100;
  const rate = o.connectPerSecond ?? 2000;
  const children: ChildProcess[] = [];
  const latest: FleetProcessStats[] = [];
  const silentClosed = new Map<string, number>();
  const crashed: string[] = [];
  const silencedWaiters: ((agents: SilencedAgent[]) => void)[][] = [];
  const exited: Promise<void>[] = [];
  let stopping = false;
  const nodeIds: string[] = [];
  let from = 0;
  for (let p = 0; p < processes; p++) {
    const count = Math.floor(o.agents / processes) + (p < o.agents % processes ? 1 : 0);
    // The parent's --import tsx comes along in execArgv.
    const child = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    live.add(child);
    children.push(child);
    latest.push(emptyFleetStats());
    silencedWaiters.push([]);
    exited.push(new Promise((resolve) => child.once('exit', () => resolve())));
    child.once('exit', (code, signal) => {
      live.delete(child);
      if (!stopping) crashed.push(`fleet process ${p} (pid ${child.pid}) exited: ${signal ?? `code ${code}`}`);
    });
    child.on('message', (m: FromFleet) => {
      if (m.type === 'stats') latest[p] = m.stats;
      else if (m.type === 'silenced') silencedWaiters[p]!.shift()?.(m.agents);
      else if (m.type === 'silent-closed') silentClosed.set(m.nodeId, m.at);
    });
    const start: ToFleet = {
      type: 'start',
      address: o.address,
      prefix: o.prefix,
      from,
      count,
      agentsPerConnection: perConnection,
      connectPerSecond: rate / processes,
      slots: o.slots ?? 8,
    };
    child.send(start);
    for (let i = 0; i < count; i++) nodeIds.push(`${o.prefix}-${from + i}`);
    from += count;
  }

  const totals = (): FleetTotals => {
    const t: FleetTotals = emptyFleetStats();
    for (const s of latest) {
      t.open += s.open;
      t.welcomes += s.welcomes;
      t.lastWelcomeAt = Math.max(t.lastWelcomeAt, s.lastWelcomeAt);
      t.dropped += s.dropped;
      t.failedAttempts += s.failedAttempts;
      t.heartbeatsSent += s.heartbeatsSent;
      t.maxLoopDelayMs = Math.max(t.maxLoopDelayMs, s.maxLoopDelayMs);
      add(t.droppedWhy, s.droppedWhy);
      add(t.failedWhy, s.failedWhy);
    }
    return t;
  };

  return {
    nodeIds,
    pids: children.map((c) => c.pid!),
    totals,
    async until(done, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!done(totals())) {
        if (Date.now() > deadline || crashed.length > 0) return false;
        await new Promise((r) => setTimeout(r, 100));
      }
      return true;
    },
    async silence(ids) {
      const per = children.map(() => [] as string[]);
      // Node ids were handed out to the children in order.
      const index = new Map(nodeIds.map((id, i) => [id, i]));
      const bounds: number[] = [];
      let acc = 0;
      for (let p = 0; p < processes; p++) bounds.push((acc += Math.floor(o.agents / processes) + (p < o.agents % processes ? 1 : 0)));
      for (const id of ids) {
        const i = index.get(id)!;
        per[bounds.findIndex((b) => i < b)]!.push(id);
      }
      const answers = await Promise.all(
        per.map((list, p) => {
          if (list.length === 0) return Promise.resolve([]);
          return new Promise<SilencedAgent[]>((resolve) => {
            silencedWaiters[p]!.push(resolve);
            children[p]!.send({ type: 'silence', nodeIds: list } satisfies ToFleet);
          });
        }),
      );
      return answers.flat();
    },
    silentClosed,
    cpuMs: () => children.reduce((sum, c) => sum + processCpuMs(c.pid!), 0),
    crashed,
    async stop() {
      stopping = true;
      for (const c of children) if (c.connected) c.send({ type: 'stop' } satisfies ToFleet);
      const timer = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), 10_000);
      await Promise.all(exited);
      clearTimeout(timer);
    },
  };
}
