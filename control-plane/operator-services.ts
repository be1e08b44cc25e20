// The standard services operators' tools speak: grpc.health.v1.Health (load
// balancers, Kubernetes probes, grpc_health_probe) and server reflection v1
// (grpcurl, Postman), served beside Grid's own on the same port.
import { readFileSync } from 'node:fs';
import type { Server, ServerMiddleware } from 'nice-grpc';
import { GRID_VERSION } from '../common/version.js';
import { HealthDefinition, HealthServiceImpl, HealthState } from 'nice-grpc-server-health';
import { ServerReflection, ServerReflectionService } from 'nice-grpc-server-reflection';

/** Grid's services by full name: what health reports on and reflection describes. */
export const GRID_SERVICES = ['grid.v1.JobService', 'grid.v1.NodeService', 'grid.v1.TokenService', 'grid.v1.AgentService'];

/** The descriptor set of proto/ that `npm run build` writes beside dist/ (buf build). */
const DESCRIPTORS = new URL('../grid.binpb', import.meta.url);

export interface OperatorServices {
  /** Every service reported SERVING (once the port is open) or NOT_SERVING (while shutting down). */
  setServing(serving: boolean): void;
}

export function addOperatorServices(server: Server): OperatorServices {
  const health = HealthState();
  server.add(HealthDefinition, HealthServiceImpl(health));
  server.add(ServerReflectionService, ServerReflection(readFileSync(DESCRIPTORS), [...GRID_SERVICES, 'grpc.health.v1.Health']));
  return {
    setServing(serving) {
      for (const service of ['', ...GRID_SERVICES]) health.setStatus(serving ? 'healthy' : 'unhealthy', service);
    },
  };
}

/** Metadata every answer's header carries: which Grid answered (`gridctl version` shows it). */
export const SERVER_VERSION_HEADER = 'grid-server-version';

export const serverVersionHeader: ServerMiddleware = async function* versionHeader(call, context) {
  context.header.set(SERVER_VERSION_HEADER, GRID_VERSION);
  return yield* call.next(call.request, context);
};
