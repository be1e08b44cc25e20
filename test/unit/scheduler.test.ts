// placeJobs: which queued job goes to which node, pure.
import test from 'ava';
import { placeJobs, type NodeOffer, type QueuedJob } from '../../control-plane/scheduler.js';
import { parseConstraint, type Labels } from '../../common/label-constraints.js';

const GiB = 1024 ** 3;

function node(nodeId: string, slots: number, cpus: number, memoryBytes: number, size = { cpus, memoryBytes }, labels: Labels = {}): NodeOffer {
  return { nodeId, free: { slots, cpus, memoryBytes }, size, labels };
}
function labelled(nodeId: string, slots: number, labels: Labels): NodeOffer {
  return node(nodeId, slots, 4, 4 * GiB, { cpus: 4, memoryBytes: 4 * GiB }, labels);
}
/** A job with `--constraint` and `--prefer` texts. */
function placed(id: string, constraints: string[], prefer: string[] = []): QueuedJob {
  return { id, cpus: 0, memory_bytes: 0, constraints: constraints.map((c) => parseConstraint(c, '--constraint')), affinities: prefer.map((c) => parseConstraint(c, '--prefer')) };
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

test('a constraint sends a job only to nodes with the label; != also passes nodes without it', (t) => {
  const nodes = [labelled('plain', 4, {}), labelled('gpu', 1, { gpu: 'true' }), labelled('eu', 4, { region: 'eu' })];
  t.deepEqual(where(nodes, [placed('g', ['gpu=true'])]), ['g@gpu']);
  t.deepEqual(where(nodes, [placed('a', ['region!=eu']), placed('b', ['region!=eu'])]), ['a@plain', 'b@plain']);
  t.deepEqual(where(nodes, [placed('both', ['gpu=true', 'region=eu'])]), [], 'all constraints must hold on one node');
});

test('a constrained job waiting for its one node holds that node, not the others', (t) => {
  const nodes = [labelled('gpu', 1, { gpu: 'true' }), labelled('plain', 2, {})];
  const result = placeJobs([placed('g1', ['gpu=true']), placed('g2', ['gpu=true']), placed('x', []), placed('y', [])], nodes);
  t.deepEqual(result.placed.map((p) => `${p.id}@${p.nodeId}`), ['g1@gpu', 'x@plain', 'y@plain'], 'the gpu node takes no later unconstrained job while g2 waits');
  t.true(result.waiting);
});

test('a job no offered node has the labels for is passed over, not waiting', (t) => {
  const result = placeJobs([placed('g', ['gpu=true']), placed('x', [])], [labelled('plain', 1, {})]);
  t.deepEqual(result.placed, [{ id: 'x', nodeId: 'plain' }]);
  t.false(result.waiting);
});

test('an affinity prefers matching nodes, more matches first, and falls back to any node', (t) => {
  const nodes = [labelled('a', 8, {}), labelled('ssd', 1, { disk: 'ssd' }), labelled('ssd-eu', 1, { disk: 'ssd', region: 'eu' })];
  t.deepEqual(where(nodes, [placed('1', [], ['disk=ssd', 'region=eu']), placed('2', [], ['disk=ssd', 'region=eu']), placed('3', [], ['disk=ssd', 'region=eu'])]), ['1@ssd-eu', '2@ssd', '3@a']);
});

test('pack fills the fullest node that fits before the next; spread the emptiest', (t) => {
  const nodes = () => [node('busy', 2, 4, 4 * GiB), node('idle', 4, 4, 4 * GiB)];
  const jobs = [job('1'), job('2'), job('3')];
  t.deepEqual(placeJobs(jobs, nodes(), 'pack').placed.map((p) => `${p.id}@${p.nodeId}`), ['1@busy', '2@busy', '3@idle']);
  t.deepEqual(placeJobs(jobs, nodes(), 'spread').placed.map((p) => `${p.id}@${p.nodeId}`), ['1@idle', '2@idle', '3@busy']);
});

test('a per-submitter cap: a submitter at its cap is passed over, holding no node, and the others take the room', (t) => {
  const of = (id: string, submitter: string): QueuedJob => ({ id, cpus: 0, memory_bytes: 0, submitter });
  const jobs = [of('a1', 'A'), of('a2', 'A'), of('a3', 'A'), of('a4', 'A'), of('b1', 'B'), of('c1', 'C')];
  const result = placeJobs(jobs, [node('n', 6, 8, 8 * GiB)], 'spread', { perSubmitter: 2, running: new Map([['A', 1], ['C', 2]]) });
  t.deepEqual(result.placed.map((p) => p.id), ['a1', 'b1'], 'A had 1 running and may start 1 more; C is at its cap');
  t.true(result.capped);
  t.false(result.waiting);
  const free = placeJobs(jobs, [node('n', 6, 8, 8 * GiB)]);
  t.is(free.placed.length, 6, 'no cap: every job');
  t.false(free.capped);
});
