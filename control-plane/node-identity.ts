// Which node a Connect stream speaks for. Today the agent's claimed id is
// trusted; with mTLS this becomes the certificate's identity, and this is the
// only place that has to change.
import type { CallContext } from 'nice-grpc';
import type { Hello } from '../common/gen/grid/v1/agent.js';
import { invalidArgument } from '../common/errors.js';

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function identifyNode(hello: Hello, _ctx: CallContext): string {
  if (!NODE_ID.test(hello.nodeId)) {
    throw invalidArgument(
      `hello.node_id "${hello.nodeId}" is not valid: 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
  const c = hello.capacity;
  if (!c || c.slots < 1 || !(c.cpus > 0) || !(c.memoryBytes > 0)) {
    throw invalidArgument('hello.capacity needs at least 1 slot, some CPU and some memory');
  }
  return hello.nodeId;
}
