// gridctl version: this client's version, and the control plane's (from the
// header every answer carries), so a mismatch is one command away.
import { GRID_VERSION } from '../../common/version.js';
import { callOptions, type GridClients } from '../client.js';
import { isMachine, machine } from '../format.js';

const SERVER_VERSION_HEADER = 'grid-server-version';

export async function versionCommand(clients: GridClients, options: { client?: boolean; output: string }): Promise<number> {
  let server: string | undefined;
  if (!options.client) {
    await clients.jobs.listRuntimes({}, { ...callOptions(10_000), onHeader: (header) => (server = header.get(SERVER_VERSION_HEADER)) });
  }
  if (isMachine(options.output)) {
    process.stdout.write(machine(options.output, { client: GRID_VERSION, ...(options.client ? {} : { server: server ?? null, address: clients.server }) }));
  } else {
    process.stdout.write(`client: ${GRID_VERSION}\n`);
    if (!options.client) process.stdout.write(`server: ${server ?? 'unknown (older than 0.1.0)'} at ${clients.server}\n`);
  }
  return 0;
}
