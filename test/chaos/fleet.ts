// The processes of a fault scenario, each one restartable in place: a private
// PostgreSQL, control planes on fixed addresses (a killed one comes back where
// its agents dial), agents that always dial the same replica. Killing is done
// here on purpose; a process that exits when nobody killed it is a finding, so
// it is recorded, and `revive()` starts it again for the run to go on.
import { freePort, startAgent, startControlPlane, sleep, type ControlPlaneProcess, type RunningProcess } from '../helpers/grid.js';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres.js';

export interface FleetOptions {
  agents: number;
  replicas: number;
  slots: number;
  /** Prefix of the node ids: unique per run, so containers of other runs never count. */
  nodePrefix: string;
  controlPlaneArgs: string[];
  log: (line: string) => void;
}

/** Why a process ended without being killed: one line each, with the end of its output. */
export type ExitRecorder = (what: string) => void;

const START_RETRY_MS = 500;
const START_TIMEOUT_MS = 30_000;

function isRunning(proc: RunningProcess | undefined): boolean {
  return proc !== undefined && proc.child.exitCode === null && proc.child.signalCode === null;
}

function tail(output: string, lines = 5): string {
  return output.trimEnd().split('\n').slice(-lines).join('\n    ');
}

/** Watches a process for an exit nobody asked for. */
function watchExit(name: string, proc: RunningProcess, expected: () => boolean, record: ExitRecorder): void {
  proc.child.once('exit', (code, signal) => {
    if (!expected()) record(`${name} exited by itself (${signal ?? `code ${code}`}); its last output:\n    ${tail(proc.output())}`);
  });
}

export class Replica {
  proc: ControlPlaneProcess | undefined;
  busy = false;
  private killing = false;

  constructor(
    readonly name: string,
    readonly address: string,
    private readonly databaseUrl: string,
    private readonly args: string[],
    private readonly record: ExitRecorder,
  ) {}

  get running(): boolean {
    return isRunning(this.proc);
  }

  /** Starts it on its address, retrying while Postgres is down (the control plane then exits at once). */
  async start(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      try {
        const proc = await startControlPlane(this.databaseUrl, ['--listen', this.address, ...this.args]);
        this.proc = proc;
        this.killing = false;
        watchExit(this.name, proc, () => this.killing, this.record);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(START_RETRY_MS);
      }
    }
  }

  async kill(): Promise<void> {
    this.killing = true;
    this.proc?.child.kill('SIGKILL');
    await this.proc?.stop();
  }

  async stop(): Promise<void> {
    this.killing = true;
    await this.proc?.stop();
  }
}

export class AgentHandle {
  proc: RunningProcess | undefined;
  busy = false;
  private killing = false;

  constructor(
    readonly nodeId: string,
    readonly replica: Replica,
    private readonly slots: number,
    private readonly record: ExitRecorder,
  ) {}

  get running(): boolean {
    return isRunning(this.proc);
  }

  start(): void {
    const proc = startAgent(this.replica.address, this.nodeId, ['--slots', String(this.slots)]);
    this.proc = proc;
    this.killing = false;
    watchExit(`agent ${this.nodeId}`, proc, () => this.killing, this.record);
  }

  async kill(): Promise<void> {
    this.killing = true;
    this.proc?.child.kill('SIGKILL');
    await this.proc?.stop();
  }

  /** A hung host: the process is frozen, its stream stays open and says nothing. */
  freeze(): void {
    this.proc?.child.kill('SIGSTOP');
  }

  thaw(): void {
    this.proc?.child.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    this.killing = true;
    this.thaw();
    await this.proc?.stop();
  }
}

export interface Fleet {
  pg: PrivatePostgres;
  replicas: Replica[];
  agents: AgentHandle[];
  /** Exits nobody asked for, in the order they happened. */
  unexpectedExits: string[];
  /** Starts again whatever died by itself and is not in the middle of a fault. */
  revive(): Promise<void>;
  stopAgents(): Promise<void>;
  stop(): Promise<void>;
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const unexpectedExits: string[] = [];
  const record: ExitRecorder = (what) => {
    unexpectedExits.push(what);
    options.log(`unexpected: ${what.split('\n')[0]}`);
  };
  const pg = await startPrivatePostgres();
  const replicas: Replica[] = [];
  const agents: AgentHandle[] = [];
  const fleet: Fleet = {
    pg,
    replicas,
    agents,
    unexpectedExits,
    async revive() {
      for (const r of replicas) if (!r.busy && !r.running) await r.start();
      for (const a of agents) if (!a.busy && !a.running) a.start();
    },
    async stopAgents() {
      await Promise.all(agents.map((a) => a.stop()));
    },
    async stop() {
      await fleet.stopAgents();
      await Promise.all(replicas.map((r) => r.stop()));
      await pg.destroy();
    },
  };
  try {
    for (let i = 0; i < options.replicas; i++) {
      const address = `127.0.0.1:${await freePort()}`;
      replicas.push(new Replica(`control plane ${i}`, address, pg.url, options.controlPlaneArgs, record));
    }
    await Promise.all(replicas.map((r) => r.start()));
    for (let i = 0; i < options.agents; i++) {
      const agent = new AgentHandle(`${options.nodePrefix}-${i}`, replicas[i % replicas.length]!, options.slots, record);
      agent.start();
      agents.push(agent);
    }
    return fleet;
  } catch (err) {
    await fleet.stop().catch(() => {});
    throw err;
  }
}
