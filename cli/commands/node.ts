// gridctl node drain|undrain: take a node out of scheduling and put it back.
// What the node runs goes on (up to the drain's deadline, when it has one); the
// control plane only gives it no new job.
import { ClientError, Status } from 'nice-grpc';
import { msToDuration } from '../../common/units.js';
import { callOptions, type GridClients } from '../client.js';

/** The server says which node it does not know; the CLI adds where to look. */
function withHint(err: unknown): never {
  if (err instanceof ClientError && err.code === Status.NOT_FOUND) throw new Error(`${err.details} (gridctl nodes lists the nodes)`);
  throw err;
}

export async function drainCommand(clients: GridClients, nodeId: string, deadlineMs?: number): Promise<number> {
  const { node } = await clients.nodes
    .drainNode({ nodeId, deadline: deadlineMs === undefined ? undefined : msToDuration(deadlineMs) }, callOptions())
    .catch(withHint);
  const deadline = node?.drainDeadline;
  const runs = deadline
    ? `what still runs on it at ${deadline.toISOString()} is handed back to the queue`
    : 'what it runs goes on';
  process.stdout.write(`node ${nodeId} is draining; ${runs} (gridctl node undrain ${nodeId} to reopen it)\n`);
  return 0;
}

export async function undrainCommand(clients: GridClients, nodeId: string): Promise<number> {
  await clients.nodes.undrainNode({ nodeId }, callOptions()).catch(withHint);
  process.stdout.write(`node ${nodeId} takes new jobs again\n`);
  return 0;
}
