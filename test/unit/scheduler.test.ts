// dispatchOrder: which nodes are offered queued work, emptiest first.
import test from 'ava';
import { dispatchOrder, type NodeOffer } from '../../control-plane/scheduler.js';

const GiB = 1024 ** 3;

function offer(nodeId: string, slots: number, cpus: number, memoryBytes: number): NodeOffer {
  return { nodeId, free: { slots, cpus, memoryBytes } };
}

const ids = (offers: NodeOffer[]) => offers.map((o) => o.nodeId);

test('nodes without a free slot, cpu or memory are left out', (t) => {
  const result = dispatchOrder([
    offer('ok', 1, 1, GiB),
    offer('no-slots', 0, 4, 8 * GiB),
    offer('negative-slots', -1, 4, 8 * GiB),
    offer('no-cpu', 2, 0, 8 * GiB),
    offer('overcommitted-cpu', 2, -0.5, 8 * GiB),
    offer('no-memory', 2, 4, 0),
    offer('overcommitted-memory', 2, 4, -GiB),
  ]);
  t.deepEqual(ids(result), ['ok']);
});

test('a fraction of a cpu left still counts as free', (t) => {
  t.deepEqual(ids(dispatchOrder([offer('small', 1, 0.25, 1)])), ['small']);
});

test('the node with the most free slots comes first', (t) => {
  const result = dispatchOrder([offer('a', 1, 8, 64 * GiB), offer('b', 3, 1, GiB), offer('c', 2, 1, GiB)]);
  t.deepEqual(ids(result), ['b', 'c', 'a']);
});

test('with equal slots, the node with the most free memory comes first', (t) => {
  const result = dispatchOrder([offer('a', 2, 8, GiB), offer('b', 2, 1, 4 * GiB), offer('c', 2, 1, 2 * GiB)]);
  t.deepEqual(ids(result), ['b', 'c', 'a']);
});

test('free cpus do not affect the order', (t) => {
  const result = dispatchOrder([offer('a', 1, 1, GiB), offer('b', 1, 16, GiB)]);
  t.deepEqual(ids(result), ['a', 'b']);
});

test('with equal slots and memory, nodes are ordered by id', (t) => {
  const result = dispatchOrder([offer('node-c', 1, 1, GiB), offer('node-a', 1, 1, GiB), offer('node-b', 1, 1, GiB)]);
  t.deepEqual(ids(result), ['node-a', 'node-b', 'node-c']);
});

test('all three keys combine: slots, then memory, then id', (t) => {
  const result = dispatchOrder([
    offer('z', 1, 1, 2 * GiB),
    offer('y', 2, 1, GiB),
    offer('x', 1, 1, 2 * GiB),
    offer('w', 2, 1, 3 * GiB),
    offer('v', 0, 1, 9 * GiB),
    offer('u', 1, 1, GiB),
  ]);
  t.deepEqual(ids(result), ['w', 'y', 'x', 'z', 'u']);
});

test('an empty list gives an empty order, and the input array is not reordered', (t) => {
  t.deepEqual(dispatchOrder([]), []);
  const input = [offer('b', 1, 1, GiB), offer('a', 2, 1, GiB)];
  dispatchOrder(input);
  t.deepEqual(ids(input), ['b', 'a']);
});
