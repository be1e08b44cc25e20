// Which node a Connect stream speaks for. Over TLS it is the node the agent's
// client certificate names (verified against Grid's CA by the TLS layer, see
// transport-security.ts), never what the hello claims: a hello naming another
// node is refused. Over plaintext (development on loopback) the claim is all
// there is.
import type { CallContext } from 'nice-grpc';
import type { Hello } from '../common/gen/grid/v1/agent.js';
import { invalidArgument, permissionDenied, unauthenticated } from '../common/errors.js';
import { VERIFIED_NODE_KEY, type Transport } from './transport-security.js';
import { NODE_ID, NODE_ID_RULE } from '../common/node-id.js';

const MAX_LABEL_BYTES = 4096;

export function identifyNode(hello: Hello, ctx: CallContext, transport: Transport['kind']): string {
  if (transport === 'tls') {
    const certified = ctx.metadata.get(VERIFIED_NODE_KEY);
    if (certified === undefined) {
      throw unauthenticated(
        'AgentService.Connect needs a client certificate signed by this control plane\'s agent CA ' +
          '(make one with `gridctl certs issue-agent NODE_ID`, give it to the agent with --tls-cert and --tls-key)',
      );
    }
    if (!NODE_ID.test(certified)) throw permissionDenied(`the client certificate names node ${quoted(certified)}, which is not a valid node id`);
    if (hello.nodeId !== '' && hello.nodeId !== certified) {
      throw permissionDenied(`this agent's certificate is for node "${certified}", but its hello claims node ${quoted(hello.nodeId)}`);
    }
    hello = { ...hello, nodeId: certified };
  }
  if (!NODE_ID.test(hello.nodeId)) {
    throw invalidArgument(
      `hello.node_id ${quoted(hello.nodeId)} is not valid: ${NODE_ID_RULE}`,
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
  // Every ListNodes page carries them: a page of 1000 nodes stays a few MB.
  const labelBytes = labels.reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (labelBytes > MAX_LABEL_BYTES) throw invalidArgument(`hello.labels hold ${labelBytes} bytes in all: at most ${MAX_LABEL_BYTES}`);
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
