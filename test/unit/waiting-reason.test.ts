// The words a queued job's status gives for its wait.
import test from 'ava';
import { waitingReason } from '../../control-plane/waiting-reason.js';
import { parseConstraint } from '../../common/label-constraints.js';

const GiB = 2 ** 30;
const job = { cpus: 4, memoryBytes: GiB };

test('no ready node: says how many are away, or that none ever came', (t) => {
  t.is(waitingReason(job, { ready: [], draining: 0, disconnected: 1, lost: 0 }), 'no ready node: 1 disconnected');
  t.is(waitingReason(job, { ready: [], draining: 0, disconnected: 2, lost: 3 }), 'no ready node: 2 disconnected, 3 lost');
  t.is(waitingReason(job, { ready: [], draining: 0, disconnected: 0, lost: 0 }), 'no node has connected yet');
});

test('too big for every ready node: names the largest', (t) => {
  t.is(waitingReason(job, { ready: [{ cpus: 2, memoryBytes: 8 * GiB }], draining: 0, disconnected: 0, lost: 0 }), 'needs 4 CPU; the largest ready node has 2');
  t.is(waitingReason({ cpus: 1, memoryBytes: 16 * GiB }, { ready: [{ cpus: 2, memoryBytes: 8 * GiB }], draining: 0, disconnected: 0, lost: 0 }), 'needs 16 GiB of memory; the largest ready node has 8 GiB');
  t.is(
    waitingReason(job, { ready: [{ cpus: 8, memoryBytes: 0.5 * GiB }, { cpus: 2, memoryBytes: 8 * GiB }], draining: 0, disconnected: 0, lost: 0 }),
    'needs 4 CPU and 1 GiB together; no ready node has both',
  );
});

test('fits somewhere: waiting for room', (t) => {
  t.is(waitingReason(job, { ready: [{ cpus: 4, memoryBytes: GiB }], draining: 0, disconnected: 0, lost: 0 }), 'waiting for room: 1 ready node can run it, all busy');
});

test('drained nodes are no ready node: the reason counts them first', (t) => {
  t.is(waitingReason(job, { ready: [], draining: 2, disconnected: 0, lost: 0 }), 'no ready node: 2 draining');
  t.is(waitingReason(job, { ready: [], draining: 1, disconnected: 1, lost: 0 }), 'no ready node: 1 draining, 1 disconnected');
});

const fleetOf = (...ready: { cpus: number; memoryBytes: number; labels?: Record<string, string> }[]) => ({ ready, draining: 0, disconnected: 0, lost: 0 });

test('a label no ready node has: names it and where labels come from', (t) => {
  const gpu = { cpus: 1, memoryBytes: GiB, constraints: [parseConstraint('gpu=true', 'c'), parseConstraint('region!=eu', 'c')] };
  t.is(waitingReason(gpu, fleetOf({ cpus: 8, memoryBytes: 8 * GiB, labels: { region: 'us' } })), 'needs a node with gpu=true; none of the 1 ready node has it (agent --labels)');
  t.is(
    waitingReason(gpu, fleetOf({ cpus: 8, memoryBytes: 8 * GiB, labels: { gpu: 'true', region: 'eu' } }, { cpus: 8, memoryBytes: 8 * GiB })),
    'needs a node with gpu=true and region!=eu together; none of the 2 ready nodes has all of them',
  );
});

test('labels held but too small: the size is judged among the nodes with the labels', (t) => {
  const big = { cpus: 4, memoryBytes: GiB, constraints: [parseConstraint('gpu=true', 'c')] };
  t.is(
    waitingReason(big, fleetOf({ cpus: 16, memoryBytes: 64 * GiB }, { cpus: 2, memoryBytes: 8 * GiB, labels: { gpu: 'true' } })),
    'needs 4 CPU; the largest ready node with gpu=true has 2',
  );
  t.is(waitingReason(big, fleetOf({ cpus: 4, memoryBytes: GiB, labels: { gpu: 'true' } })), 'waiting for room: 1 ready node can run it, all busy');
});
