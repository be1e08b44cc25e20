// The real stack a benchmark measures: a fresh database on the local PostgreSQL,
// a control plane and an agent as separate processes on real sockets, and Docker.
// The same launchers the end-to-end tests use, so a benchmark runs what they test.
import { clients, startAgent, startControlPlane, waitForNodes, type Clients, type ControlPlaneProcess, type RunningProcess } from '../test/helpers/grid.js';
import { createTestDatabase, type TestDatabase } from '../test/helpers/postgres.js';

export interface Stack {
  db: TestDatabase;
  cp: ControlPlaneProcess;
  agent: RunningProcess;
  api: Clients;
  nodeId: string;
  stop(): Promise<void>;
}

export async function startStack(agentArgs: string[]): Promise<Stack> {
  const db = await createTestDatabase();
  const nodeId = `bench-${process.pid}`;
  let cp: ControlPlaneProcess | undefined;
  let agent: RunningProcess | undefined;
  let api: Clients | undefined;
  // Whatever started is stopped, also when a later step fails: no database or process is left behind.
  const stop = async () => {
    api?.close();
    await agent?.stop();
    await cp?.stop();
    await db.drop();
  };
  try {
    cp = await startControlPlane(db.url);
    agent = startAgent(cp.address, nodeId, agentArgs);
    api = clients(cp.address);
    await waitForNodes(api, [nodeId]);
    return { db, cp, agent, api, nodeId, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
