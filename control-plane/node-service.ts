// NodeService: the fleet as Postgres records it.
import type { NodeServiceImplementation } from '../common/gen/grid/v1/node.js';
import type { Sql } from './db/connect.js';
import { listNodes } from './node-store.js';

export function createNodeService(deps: { sql: Sql }): NodeServiceImplementation {
  return {
    async listNodes() {
      return { nodes: await listNodes(deps.sql) };
    },
  };
}
