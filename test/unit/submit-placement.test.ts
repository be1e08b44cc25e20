// Placement at submit, without servers: what fits is held on the live nodes,
// a node being claimed for is left alone (one only being placed on is not),
// and release lets every hold go.
import test from 'ava';
import { GRID_VERSION } from '../../common/version.js';
import { Task } from '../../common/gen/grid/v1/agent.js';
import { JobSpec } from '../../common/gen/grid/v1/job.js';
import { NodeRegistry } from '../../control-plane/node-registry.js';
import { NodeSession } from '../../control-plane/node-session.js';
import { placeOnArrival } from '../../control-plane/submit-placement.js';

function node(registry: NodeRegistry, id: string, slots: number): NodeSession {
  const s = new NodeSession(id, id, { slots, cpus: 4, memoryBytes: 8n << 30n }, '', GRID_VERSION, () => true, () => {});
  s.markReady();
  registry.add(s);
  return s;
}
const job = (id: string, cpus = 1) => ({ id, task: Task.fromPartial({ cpus, memoryBytes: 1n << 30n }), spec: JobSpec.fromPartial({}) });

test('jobs that fit are placed on the roomiest nodes and held there until released', (t) => {
  const registry = new NodeRegistry();
  const a = node(registry, 'a', 2);
  const b = node(registry, 'b', 1);
  const placement = placeOnArrival(registry, [job('j1'), job('j2'), job('j3'), job('j4')])!;
  t.deepEqual([...placement.nodeOf].sort(), [['j1', 'a'], ['j2', 'b'], ['j3', 'a']].sort(), 'three slots, three placed; the fourth is queued');
  t.is(a.freeCapacity().slots, 0);
  t.is(b.freeCapacity().slots, 0);
  const now = performance.now();
  t.false(a.claimsSettledBefore(now) || b.claimsSettledBefore(now), 'the reconciler waits for the insert');
  placement.release();
  t.is(a.freeCapacity().slots, 2);
  t.true(a.claimsSettledBefore(performance.now() + 1) && b.claimsSettledBefore(performance.now() + 1));
  placement.release();
  t.is(a.freeCapacity().slots, 2, 'a second release changes nothing');
});

test('a node with a claim in flight, or no room, is not placed on; nothing placed is undefined', (t) => {
  const registry = new NodeRegistry();
  const busy = node(registry, 'busy', 4);
  busy.claimStarted();
  t.is(placeOnArrival(registry, [job('j1')]), undefined, 'the claim\'s room is not known until it answers');
  busy.claimSettled();
  t.is(placeOnArrival(registry, [job('too-big', 8)]), undefined, 'a job larger than every node waits in the queue');
  const placed = placeOnArrival(registry, [job('j1')])!;
  t.deepEqual([...placed.nodeOf], [['j1', 'busy']]);
  const again = placeOnArrival(registry, [job('j2'), job('j3'), job('j4'), job('j5')])!;
  t.is(again.nodeOf.size, 3, 'a placement in flight holds its room: the node takes three more of its four slots, not four');
  t.is(busy.freeCapacity().slots, 0);
  again.release();
  placed.release();
  t.is(busy.freeCapacity().slots, 4);
});
