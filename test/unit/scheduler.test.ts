// placeJobs: which queued job goes to which node, pure.
import test from 'ava';
import { placeJobs, type NodeOffer, type QueuedJob } from '../../control-plane/scheduler.js';

const GiB = 1024 ** 3;

function node(nodeId: string, slots: number, cpus: number, memoryBytes: number, size = { cpus, memoryBytes }): NodeOffer {
  return { nodeId, free: { slots, cpus, memoryBytes }, size };
}
function job(id: string, cpus = 0, memory_bytes = 0): QueuedJob {
  return { id, cpus, memory_bytes };
}
const where = (offers: NodeOffer[], jobs: QueuedJob[]) => placeJobs(jobs, offers).placed.map((p) => `${p.id}@${p.nodeId}`);

test('jobs spread over nodes, emptiest first, ties by more memory then by id', (t) => {
  const nodes = [node('b', 2, 4, GiB), node('a', 2, 4, GiB), node('c', 3, 4, GiB), node('d', 2, 4, 2 * GiB)];
  t.deepEqual(where(nodes, [job('1'), job('2'), job('3'), job('4'), job('5')]), ['1@c', '2@d', '3@a', '4@b', '5@c']);
});

test('a node never gets more jobs than its free slots, CPUs or memory', (t) => {
  const nodes = [node('small', 4, 1, GiB)];
  t.deepEqual(where(nodes, [job('1', 0.5), job('2', 0.5), job('3', 0.5)]), ['1@small', '2@small']);
  t.deepEqual(where(nodes, [job('1', 0, GiB / 2), job('2', 0, GiB / 2), job('3', 0, 1)]), ['1@small', '2@small']);
  t.deepEqual(where([node('one', 1, 8, 8 * GiB)], [job('1'), job('2')]), ['1@one']);
});

test('fractional CPUs that add up exactly still fit', (t) => {
  t.deepEqual(where([node('n', 3, 0.3, GiB)], [job('1', 0.1), job('2', 0.2)]), ['1@n', '2@n']);
});

test('a job larger than every node is passed over: it does not hold back the jobs behind it', (t) => {
  const result = placeJobs([job('huge', 0, 1024 * GiB), job('small', 0, GiB)], [node('n', 4, 4, 4 * GiB)]);
  t.deepEqual(result.placed, [{ id: 'small', nodeId: 'n' }]);
  t.false(result.waiting, 'a job no node can ever hold is not waiting for room');
});

test('a job that fits a node but not what is free on it now keeps its turn there, and smaller nodes go on', (t) => {
  // big has 2 GiB free of 8; the 6 GiB job waits for it, so later small jobs do not take big's room.
  const nodes = [node('big', 4, 4, 2 * GiB, { cpus: 4, memoryBytes: 8 * GiB }), node('tiny', 4, 4, GiB)];
  const result = placeJobs([job('wide', 0, 6 * GiB), job('s1', 0, GiB / 2), job('s2', 0, GiB / 2), job('s3', 0, GiB / 2)], nodes);
  t.deepEqual(result.placed.map((p) => `${p.id}@${p.nodeId}`), ['s1@tiny', 's2@tiny']);
  t.true(result.waiting);
});

test('nothing is placed on no nodes, and the offers given are not changed', (t) => {
  t.deepEqual(placeJobs([job('1')], []).placed, []);
  const offers = [node('n', 1, 1, GiB)];
  placeJobs([job('1')], offers);
  t.deepEqual(offers[0]!.free, { slots: 1, cpus: 1, memoryBytes: GiB });
});
