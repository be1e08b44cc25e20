// A hello's claims are checked before anything is stored: what PostgreSQL or
// the scheduler's arithmetic could not hold is refused as INVALID_ARGUMENT (a
// fuzz run once got INTERNAL from a bigint overflow for 2^63 − 1 bytes).
import test from 'ava';
import { Status } from 'nice-grpc';
import { Hello } from '../../common/gen/grid/v1/agent.js';
import { ServerError } from '../../common/errors.js';
import { Metadata } from 'nice-grpc';
import { identifyNode } from '../../control-plane/node-identity.js';
import { VERIFIED_NODE_KEY } from '../../control-plane/transport-security.js';

/** A call context as the TLS interceptor leaves it: the node a verified certificate names, if any. */
const over = (certified?: string) => ({ metadata: certified === undefined ? Metadata() : Metadata({ [VERIFIED_NODE_KEY]: certified }) }) as never;

const hello = (capacity: Partial<NonNullable<Hello['capacity']>>, nodeId = 'node-1') =>
  Hello.fromPartial({ nodeId, capacity: { slots: 1, cpus: 1, memoryBytes: 1n << 30n, ...capacity } });

test('a sound hello names its node', (t) => {
  t.is(identifyNode(hello({}), {} as never, 'plaintext'), 'node-1');
});

for (const [what, capacity] of [
  ['memory of 2^63 − 1 bytes', { memoryBytes: 2n ** 63n - 1n }],
  ['memory past 2^53', { memoryBytes: 2n ** 53n + 2n }],
  ['a million and one slots', { slots: 1_000_001 }],
  ['infinite CPUs', { cpus: Infinity }],
  ['no slot', { slots: 0 }],
  ['negative memory', { memoryBytes: -1n }],
] as const) {
  test(`a hello claiming ${what} is INVALID_ARGUMENT`, (t) => {
    const err = t.throws(() => identifyNode(hello(capacity), {} as never, 'plaintext'), { instanceOf: ServerError });
    t.is(err?.code, Status.INVALID_ARGUMENT);
    t.regex(err?.details ?? '', /hello\.capacity/);
  });
}

test('a node id that is not a name is INVALID_ARGUMENT', (t) => {
  const err = t.throws(() => identifyNode(hello({}, 'a'.repeat(9 * 2 ** 20)), {} as never, 'plaintext'), { instanceOf: ServerError });
  t.is(err?.code, Status.INVALID_ARGUMENT);
  t.true((err?.details.length ?? Infinity) < 300, 'the answer does not echo 9 MB back');
  t.regex(err?.details ?? '', /\(9437184 characters\)/);
});

test('over TLS the node is the certificate\'s, and a hello may leave it out', (t) => {
  t.is(identifyNode(hello({}, ''), over('node-7'), 'tls'), 'node-7');
  t.is(identifyNode(hello({}, 'node-7'), over('node-7'), 'tls'), 'node-7');
});

test('over TLS a hello claiming another node than its certificate is PERMISSION_DENIED', (t) => {
  const err = t.throws(() => identifyNode(hello({}, 'node-b'), over('node-a'), 'tls'), { instanceOf: ServerError });
  t.is(err?.code, Status.PERMISSION_DENIED);
  t.regex(err?.details ?? '', /certificate is for node "node-a", but its hello claims node "node-b"/);
});

test('over TLS a stream without a verified certificate is UNAUTHENTICATED, saying how to get one', (t) => {
  const err = t.throws(() => identifyNode(hello({}), over(), 'tls'), { instanceOf: ServerError });
  t.is(err?.code, Status.UNAUTHENTICATED);
  t.regex(err?.details ?? '', /gridctl certs issue-agent/);
});

test('hello labels are bounded in all, so a ListNodes page stays small', (t) => {
  const labels = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, 'v'.repeat(250)]));
  const err = t.throws(() => identifyNode(Hello.fromPartial({ nodeId: 'n', capacity: { slots: 1, cpus: 1, memoryBytes: 1n << 30n }, labels }), {} as never, 'plaintext'), { instanceOf: ServerError });
  t.is(err?.code, Status.INVALID_ARGUMENT);
  t.regex(err?.details ?? '', /hello\.labels hold 5\d{3} bytes in all: at most 4096/);
  // Bytes, not characters: 20 labels of 60 four-byte characters (120 UTF-16 units each) are 4,800 bytes.
  const wideLabels = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, '💥'.repeat(60)]));
  const wide = Hello.fromPartial({ nodeId: 'n', capacity: { slots: 1, cpus: 1, memoryBytes: 1n << 30n }, labels: wideLabels });
  t.throws(() => identifyNode(wide, {} as never, 'plaintext'), { message: /hello\.labels hold 4850 bytes/ });
});
