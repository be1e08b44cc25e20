// NodeService: the fleet as Postgres records it, a page at a time (a page of
// 1000 nodes with the largest hellos allowed stays well under the message limit),
// and an operator's drains (node-drain.ts owns them).
import type { NodeServiceImplementation } from '../common/gen/grid/v1/node.js';
import { invalidArgument } from '../common/errors.js';
import { durationToMs } from '../common/units.js';
import type { Sql } from './db/connect.js';
import type { NodeDrain } from './node-drain.js';
import { listNodes } from './node-store.js';

const DEFAULT_PAGE = 1000;
// A page of nodes at the hello limits (4 KiB of labels, 256-character names) stays far below the 32 MiB message limit.
const MAX_PAGE = 2000;

export function createNodeService(deps: { sql: Sql; drains: NodeDrain }): NodeServiceImplementation {
  return {
    async drainNode(request) {
      return { node: await deps.drains.drain(request.nodeId, request.deadline ? durationToMs(request.deadline) : undefined) };
    },
    async undrainNode(request) {
      return { node: await deps.drains.undrain(request.nodeId) };
    },
    async listNodes(request) {
      const pageSize = request.pageSize || DEFAULT_PAGE;
      if (pageSize < 1 || pageSize > MAX_PAGE) throw invalidArgument(`page_size is ${request.pageSize}: must be between 1 and ${MAX_PAGE}`);
      let after: { name: string; id: string } | undefined;
      if (request.pageToken) {
        try {
          after = JSON.parse(Buffer.from(request.pageToken, 'base64url').toString()) as { name: string; id: string };
        } catch {
          after = undefined;
        }
        if (typeof after?.name !== 'string' || typeof after?.id !== 'string' || `${after.name}${after.id}`.includes('\0')) {
          throw invalidArgument('page_token is not one this server gave out');
        }
      }
      const nodes = await listNodes(deps.sql, { limit: pageSize + 1, after });
      const more = nodes.length > pageSize;
      const page = more ? nodes.slice(0, pageSize) : nodes;
      const last = page[page.length - 1];
      return { nodes: page, nextPageToken: more && last ? Buffer.from(JSON.stringify({ name: last.name, id: last.id })).toString('base64url') : '' };
    },
  };
}
