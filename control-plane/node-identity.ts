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
      `hello.node_id ${quoted(hello.nodeId)} is not valid: 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
  const c = hello.capacity;
  if (!c || c.slots < 1 || !(c.cpus > 0) || !(c.memoryBytes > 0)) {
    throw invalidArgument('hello.capacity needs at least 1 slot, some CPU and some memory');
  }
  checkText('hello.name', hello.name, 256);
  checkText('hello.agent_version', hello.agentVersion, 128);
  checkText('hello.agent_instance', hello.agentInstance, 128);
  const labels = Object.entries(hello.labels);
  if (labels.length > 64) throw invalidArgument(`hello.labels has ${labels.length} labels: at most 64`);
  for (const [key, value] of labels) {
    checkText('a key of hello.labels', key, 128);
    checkText(`hello.labels["${key.slice(0, 64)}"]`, value, 256);
  }
  // Postgres holds memory in a bigint, and a double all the arithmetic here.
  if (c.memoryBytes > BigInt(Number.MAX_SAFE_INTEGER) || !Number.isFinite(c.cpus) || c.cpus > 1e6 || c.slots > 1e6) {
    throw invalidArgument('hello.capacity is out of range');
  }
  return hello.nodeId;
}

function checkText(field: string, text: string, maxChars: number): void {
  if (text.length > maxChars) throw invalidArgument(`${field} is ${text.length} characters: at most ${maxChars}`);
  if (text.includes('\0')) throw invalidArgument(`${field} holds a NUL character`);
}

/** A claimed value as an error message may show it: quoted, and cut short if it is long. */
function quoted(text: string): string {
  return text.length <= 64 ? `"${text}"` : `"${text.slice(0, 64)}…" (${text.length} characters)`;
}
