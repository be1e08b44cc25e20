// A Grid to measure the control plane alone: a fresh database on the local
// PostgreSQL, the control plane as its own process at its defaults, and a fleet
// of SIMULATED agents (bench/simulated-agent.ts) connected over real sockets.
import { NodeState } from '../common/gen/grid/v1/node.js';
import { BUSYBOX, clients, commandSpec, listAllNodes, type Clients } from '../test/helpers/grid.js';
import { createTestDatabase, type TestDatabase } from '../test/helpers/postgres.js';
import { startControlPlaneAtDefaults, type BenchControlPlane } from './control-plane-at-defaults.js';
import { startSimulatedAgents, type ReportMode, type SimulatedFleet } from './simulated-agent.js';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SimulatedGrid {
  db: TestDatabase;
  cp: BenchControlPlane;
  fleet: SimulatedFleet;
  api: Clients;
  stop(): Promise<void>;
}

/** The trivial job of issue 11: busybox `true`, every other field the server's default. */
export const TRIVIAL_JOB = commandSpec(['true'], { image: BUSYBOX });

export async function startSimulatedGrid(options: { agents: number; reports?: ReportMode }): Promise<SimulatedGrid> {
  const db = await createTestDatabase();
  let cp: BenchControlPlane | undefined;
  let fleet: SimulatedFleet | undefined;
  let api: Clients | undefined;
  const stop = async () => {
    api?.close();
    await fleet?.stop();
    await cp?.stop();
    await db.drop();
  };
  try {
    cp = await startControlPlaneAtDefaults(db.url);
    fleet = startSimulatedAgents({ address: cp.address, agents: options.agents, reports: options.reports });
    api = clients(cp.address);
    await fleet.welcomed();
    await waitUntilReady(api, fleet.nodeIds.length);
    return { db, cp, fleet, api, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Welcomed is not yet dispatchable: wait until the control plane lists every node READY. */
async function waitUntilReady(api: Clients, nodes: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const listed = await listAllNodes(api);
    const ready = listed.filter((n) => n.state === NodeState.NODE_STATE_READY).length;
    if (ready >= nodes) return;
    if (Date.now() > deadline) throw new Error(`only ${ready} of ${nodes} simulated agents became READY`);
    await sleep(50);
  }
}
