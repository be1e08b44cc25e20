// The standard services operators' tools speak: grpc.health.v1.Health (load
// balancers, Kubernetes probes, grpc_health_probe) and server reflection v1
// (grpcurl, Postman), served beside Grid's own on the same port.
import type { Server, ServerMiddleware } from 'nice-grpc';
import { apiDescriptors } from './api-descriptors.js';
import { GRID_VERSION } from '../common/version.js';
import { HealthDefinition, HealthServiceImpl, HealthState } from 'nice-grpc-server-health';
import { ServerReflection, ServerReflectionService } from 'nice-grpc-server-reflection';

/** Grid's services by full name: what health reports on and reflection describes. */
export const GRID_SERVICES = ['grid.v1.JobService', 'grid.v1.NodeService', 'grid.v1.TokenService', 'grid.v1.CronService', 'grid.v1.AgentService'];

export interface OperatorServices {
  /** Every service reported SERVING (once the port is open) or NOT_SERVING (while shutting down). */
  setServing(serving: boolean): void;
}

export function addOperatorServices(server: Server): OperatorServices {
  const health = HealthState();
  server.add(HealthDefinition, HealthServiceImpl(health));
  server.add(ServerReflectionService, ServerReflection(apiDescriptors(), [...GRID_SERVICES, 'grpc.health.v1.Health']));
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
