// A hello's claims are checked before anything is stored: what PostgreSQL or
// the scheduler's arithmetic could not hold is refused as INVALID_ARGUMENT (a
// fuzz run once got INTERNAL from a bigint overflow for 2^63 − 1 bytes).
import test from 'ava';
import { Status } from 'nice-grpc';
import { Hello } from '../../common/gen/grid/v1/agent.js';
import { ServerError } from '../../common/errors.js';
import { identifyNode } from '../../control-plane/node-identity.js';

const hello = (capacity: Partial<NonNullable<Hello['capacity']>>, nodeId = 'node-1') =>
  Hello.fromPartial({ nodeId, capacity: { slots: 1, cpus: 1, memoryBytes: 1n << 30n, ...capacity } });

test('a sound hello names its node', (t) => {
  t.is(identifyNode(hello({}), {} as never), 'node-1');
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
    const err = t.throws(() => identifyNode(hello(capacity), {} as never), { instanceOf: ServerError });
    t.is(err?.code, Status.INVALID_ARGUMENT);
    t.regex(err?.details ?? '', /hello\.capacity/);
  });
}

test('a node id that is not a name is INVALID_ARGUMENT', (t) => {
  const err = t.throws(() => identifyNode(hello({}, 'a'.repeat(9 * 2 ** 20)), {} as never), { instanceOf: ServerError });
  t.is(err?.code, Status.INVALID_ARGUMENT);
  t.true((err?.details.length ?? Infinity) < 300, 'the answer does not echo 9 MB back');
  t.regex(err?.details ?? '', /\(9437184 characters\)/);
});
