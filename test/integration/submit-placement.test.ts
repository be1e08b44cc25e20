// Placement at submit against real PostgreSQL, through the owner of job
// transitions: a job a live node can take now is stored ASSIGNED to it by the
// submit's own insert, never past a job that waits in the queue, and its room
// is counted on the node exactly as a claim's would be.
import test from 'ava';
import { GRID_VERSION } from '../../common/version.js';
import { v7 as uuidv7 } from 'uuid';
import { pino } from 'pino';
import type { ConnectResponse } from '../../common/gen/grid/v1/agent.js';
import { JobSpec, JobState } from '../../common/gen/grid/v1/job.js';
import { migrate } from '../../control-plane/db/migrate.js';
import { createLocalEventBus } from '../../control-plane/job-events.js';
import { createJobTransitions, type JobTransitions, type NewJob } from '../../control-plane/job-transitions.js';
import { NodeRegistry } from '../../control-plane/node-registry.js';
import { NodeSession } from '../../control-plane/node-session.js';
import { withdrawAttempts } from '../../control-plane/sql/lose-attempts.js';
import { unmarkFitFor } from '../../control-plane/sql/note-waiting.js';
import { runtimeTable, DEFAULT_RUNTIMES } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
});
test.after.always(async () => db?.drop());

const runtimes = runtimeTable(DEFAULT_RUNTIMES);
function job(requestId = '', memoryBytes = 0n): NewJob {
  const { spec, task } = validateSubmission(JobSpec.fromPartial({ command: ['true'], resources: { memoryBytes } }), DEFAULT_SPEC_POLICY, runtimes);
  return { id: uuidv7(), spec, task, requestId };
}

function setUp(slots: number, open = true): { owner: JobTransitions; registry: NodeRegistry; node: NodeSession; sent: ConnectResponse[] } {
  const registry = new NodeRegistry();
  const sent: ConnectResponse[] = [];
  const node = new NodeSession(`placing-${uuidv7()}`, 'placing', { slots, cpus: 64, memoryBytes: 64n << 30n }, '', GRID_VERSION, (m) => (open ? (sent.push(m), true) : false), () => {});
  node.markReady();
  registry.add(node);
  const owner = createJobTransitions({ sql: db.sql, registry, events: createLocalEventBus(), log: pino({ level: 'silent' }), backstopMarginMs: 5000, kick: () => {} });
  return { owner, registry, node, sent };
}

/** An owner of transitions on a replica with no node: what it is given is queued. */
const withNoNode = () => createJobTransitions({ sql: db.sql, registry: new NodeRegistry(), events: createLocalEventBus(), log: pino({ level: 'silent' }), backstopMarginMs: 5000, kick: () => {} });

/** The node's row, READY as its connect writes it: what the waiting note reads. */
const recordReady = (node: NodeSession) =>
  db.sql`INSERT INTO nodes (id, name, state, slots, cpus, memory_bytes, labels, agent_version, connected_at, last_seen_at, generation)
         VALUES (${node.nodeId}, 'placing', 'READY', 4, 64, ${String(64n << 30n)}, '{}', 'test', now(), now(), 1)`;

const rowOf = async (id: string) =>
  (await db.sql<{ state: string; node_id: string | null; attempt: number }[]>`SELECT state, node_id, attempt FROM jobs WHERE id = ${id}`)[0]!;

test.serial('with room on a live node and nothing queued, a submit is stored ASSIGNED to it at once and sent', async (t) => {
  const { owner, node, sent } = setUp(2);
  const [a, b, c] = await owner.submitMany([job(), job(), job()], 1_000_000);
  const outcomes = [a!, b!, c!].map((o) => (o.kind === 'created' ? o.job : undefined));
  t.deepEqual(outcomes.map((j) => j?.state), [JobState.JOB_STATE_ASSIGNED, JobState.JOB_STATE_ASSIGNED, JobState.JOB_STATE_QUEUED], 'two slots: two placed, the third queued');
  t.deepEqual(outcomes.map((j) => j?.attempt), [1, 1, 0]);
  for (const j of outcomes.slice(0, 2)) {
    t.like(await rowOf(j!.id), { state: 'ASSIGNED', node_id: node.nodeId, attempt: 1 });
    const [history] = await db.sql<{ node_id: string }[]>`SELECT node_id FROM job_attempts WHERE job_id = ${j!.id} AND attempt = 1`;
    t.is(history?.node_id, node.nodeId, 'the attempt is in the history, as a claim writes it');
  }
  t.like(await rowOf(outcomes[2]!.id), { state: 'QUEUED', node_id: null, attempt: 0 });
  t.deepEqual(
    sent.map((m) => (m.message?.$case === 'assignment' ? m.message.value.attempt?.jobId : m.message?.$case)),
    [outcomes[0]!.id, outcomes[1]!.id],
  );
  t.is(node.freeCapacity().slots, 0, 'their room is held');
  t.true(node.holds({ jobId: outcomes[0]!.id, attempt: 1 }));
  // Clean up: the queued one is for the next test's queue.
  await owner.cancel([outcomes[2]!.id], 0);
});

test.serial('a submit is never placed past a job that waits in the queue', async (t) => {
  const { owner } = setUp(4);
  // A job waiting in the queue: submitted to a replica with no node.
  const empty = withNoNode();
  const [waiting] = await empty.submitMany([job()], 1_000_000);
  t.is(waiting!.kind === 'created' && waiting!.job.state, JobState.JOB_STATE_QUEUED);
  const [later] = await owner.submitMany([job()], 1_000_000);
  t.is(later!.kind === 'created' && later!.job.state, JobState.JOB_STATE_QUEUED, 'queued behind it, for the dispatcher to take in order');
  const ids = [waiting!, later!].map((o) => (o.kind === 'created' ? o.job.id : ''));
  await owner.cancel(ids, 0);
});

test.serial('a queued job no connected node can hold does not stop a submit from being placed at once', async (t) => {
  const { owner, node } = setUp(4);
  await recordReady(node);
  const empty = withNoNode();
  const [huge] = await empty.submitMany([job('', 1n << 40n)], 1_000_000);
  const hugeId = huge!.kind === 'created' ? huge!.job.id : '';
  const [before] = await owner.submitMany([job()], 1_000_000);
  t.is(before!.kind === 'created' && before!.job.state, JobState.JOB_STATE_QUEUED, 'until its reason is noted, it counts as a job that may run');
  await owner.noteWaiting();
  const [noted] = await db.sql<{ unfit: boolean; message: string }[]>`SELECT unfit, message FROM jobs WHERE id = ${hugeId}`;
  t.true(noted!.unfit);
  t.regex(noted!.message, /no connected node has both/);
  // The small job queued above is claimable: claimed, it leaves only the huge one queued.
  t.is((await owner.claim([node])).claimed, 1);
  const [small] = await owner.submitMany([job()], 1_000_000);
  t.is(small!.kind === 'created' && small!.job.state, JobState.JOB_STATE_ASSIGNED, 'placed at once, past a job it could never have delayed');
  const [counts] = await db.sql<{ queued: number; unfit: number }[]>`SELECT sum(queued)::int AS queued, sum(unfit)::int AS unfit FROM queue_depth`;
  t.deepEqual(counts, { queued: 1, unfit: 1 });
  // A node that can hold it connects: unmarked before that node is offered work.
  await unmarkFitFor(db.sql, [{ cpus: 64, memoryBytes: 2 ** 41, labels: {} }]);
  const [third] = await owner.submitMany([job()], 1_000_000);
  t.is(third!.kind === 'created' && third!.job.state, JobState.JOB_STATE_QUEUED, 'it counts again as a job that may run');
  await owner.cancel([hugeId, ...[before!, small!, third!].map((o) => (o.kind === 'created' ? o.job.id : ''))], 0);
  const [after] = await db.sql<{ queued: number; unfit: number }[]>`SELECT sum(queued)::int AS queued, sum(unfit)::int AS unfit FROM queue_depth`;
  t.deepEqual(after, { queued: 0, unfit: 0 }, 'the counts follow the cancel');
  await db.sql`DELETE FROM nodes WHERE id = ${node.nodeId}`;
});

test.serial('a queued job that fits no connected node is marked whatever its message, a requeue\'s included', async (t) => {
  const { owner, node } = setUp(4);
  await recordReady(node);
  const empty = withNoNode();
  const [huge] = await empty.submitMany([job('', 1n << 40n)], 1_000_000);
  const id = huge!.kind === 'created' ? huge!.job.id : '';
  // As a requeue leaves it: its only big node was lost.
  const lost = 'node big-1 was lost during attempt 1; queued again';
  await db.sql`UPDATE jobs SET message = ${lost} WHERE id = ${id}`;
  await owner.noteWaiting();
  const [row] = await db.sql<{ unfit: boolean; message: string }[]>`SELECT unfit, message FROM jobs WHERE id = ${id}`;
  t.like(row, { unfit: true, message: lost }, 'marked, its message kept');
  await owner.cancel([id], 0);
  await db.sql`DELETE FROM nodes WHERE id = ${node.nodeId}`;
});

test.serial('a resubmit with the same request id places nothing and holds no room', async (t) => {
  const { owner, node } = setUp(1);
  const first = job('same-request');
  const [created] = await owner.submitMany([first], 1_000_000);
  t.is(created!.kind === 'created' && created!.job.state, JobState.JOB_STATE_ASSIGNED);
  node.release({ jobId: first.id, attempt: 1 });
  const [again] = await owner.submitMany([job('same-request')], 1_000_000);
  t.is(again!.kind, 'existing');
  t.is(node.freeCapacity().slots, 1, 'the hold taken for the insert was let go');
});

test.serial('a job placed on a stream that ended during the insert is queued again, not left ASSIGNED to it', async (t) => {
  const { owner, node } = setUp(1, false);
  const [created] = await owner.submitMany([job()], 1_000_000);
  const id = created!.kind === 'created' ? created!.job.id : '';
  t.like(await rowOf(id), { state: 'QUEUED', node_id: null, attempt: 1 });
  const history = await db.sql`SELECT outcome FROM job_attempts WHERE job_id = ${id}`;
  t.is(history.length, 0, 'nothing ran: the withdrawn attempt is not in the history');
  t.is(node.freeCapacity().slots, 1);
  await owner.cancel([id], 0);
});

test.serial('an assignment never sent spends no attempt: a job allowed one attempt is queued again, not failed NODE_LOST', async (t) => {
  const { owner } = setUp(1, false);
  const one = job();
  one.spec.maxAttempts = 1;
  const [created] = await owner.submitMany([one], 1_000_000);
  t.is(created!.kind, 'created');
  const [row] = await db.sql<{ state: string; end_reason: string | null; message: string }[]>`SELECT state, end_reason, message FROM jobs WHERE id = ${one.id}`;
  t.like(row, { state: 'QUEUED', end_reason: null });
  t.regex(row!.message, /never received attempt 1; queued again/);
  // Its next attempt is its one real try: lost on its node, it ends NODE_LOST.
  const { owner: next, node } = setUp(1);
  const claimed = await next.claim([node]);
  t.is(claimed.claimed, 1);
  t.like(await rowOf(one.id), { state: 'ASSIGNED', attempt: 2 });
  await next.lose(node, [{ jobId: one.id, attempt: 2 }]);
  const [after] = await db.sql<{ state: string; end_reason: string }[]>`SELECT state, end_reason FROM jobs WHERE id = ${one.id}`;
  t.like(after, { state: 'FAILED', end_reason: 'NODE_LOST' });
});

test.serial('a withdrawal leaves alone an attempt that started (a replacing stream was sent it after all); a cancel never sent ends CANCELLED', async (t) => {
  const { owner, node } = setUp(3);
  const created = await owner.submitMany([job(), job(), job()], 1_000_000);
  const [running, cancelling, unstarted] = created.map((o) => (o.kind === 'created' ? o.job.id : ''));
  // Start reports through the stream that replaced the one they were claimed for; one of them cancelled since.
  await db.sql`UPDATE jobs SET state = 'RUNNING', started_at = now() WHERE id = ${running!}`;
  await db.sql`UPDATE jobs SET state = 'CANCELLING', started_at = now() WHERE id = ${cancelling!}`;
  // Cancelled before it was ever sent.
  await db.sql`UPDATE jobs SET state = 'CANCELLING' WHERE id = ${unstarted!}`;
  const withdrawn = await withdrawAttempts(db.sql, [running!, cancelling!, unstarted!].map((jobId) => ({ jobId, attempt: 1, nodeId: node.nodeId })));
  t.deepEqual(withdrawn.map((r) => r.id), [unstarted]);
  t.like(await rowOf(running!), { state: 'RUNNING', attempt: 1 });
  t.like(await rowOf(cancelling!), { state: 'CANCELLING', attempt: 1 });
  t.like(await rowOf(unstarted!), { state: 'CANCELLED', attempt: 1 });
  const history = await db.sql<{ job_id: string }[]>`SELECT job_id FROM job_attempts WHERE job_id = ANY(${[running!, cancelling!, unstarted!]}::uuid[])`;
  t.deepEqual(history.map((h) => h.job_id).sort(), [running!, cancelling!].sort(), 'the started ones keep their history');
  await owner.cancel([running!, cancelling!], 0);
});

test.serial('groups placed whole do not queue each other: a submit while another placed one is in flight is placed too', async (t) => {
  const { owner, node } = setUp(4);
  // The history table locked: a placed insert (which writes its attempt there)
  // waits uncommitted, as a slow one would.
  let unlock!: () => void;
  const locked = new Promise<void>((resolve) => (unlock = resolve));
  let holding!: () => void;
  const held = new Promise<void>((resolve) => (holding = resolve));
  const lock = db.sql.begin(async (tx) => {
    await tx`LOCK TABLE job_attempts IN SHARE MODE`;
    holding();
    await locked;
  });
  await held;
  const first = owner.submitMany([job()], 1_000_000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const second = owner.submitMany([job()], 1_000_000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  unlock();
  await lock;
  const outcomes = [...(await first), ...(await second)];
  t.deepEqual(outcomes.map((o) => (o.kind === 'created' ? JobState[o.job.state] : o.kind)), ['JOB_STATE_ASSIGNED', 'JOB_STATE_ASSIGNED']);
  t.is(node.freeCapacity().slots, 2);
  await owner.cancel(outcomes.map((o) => (o.kind === 'created' ? o.job.id : '')), 0);
});

test.serial('one call split over two groups in flight: the later group is queued, so it cannot pass the first', async (t) => {
  const registry = new NodeRegistry();
  const node = new NodeSession(`placing-${uuidv7()}`, 'placing', { slots: 2000, cpus: 4096, memoryBytes: 4n << 40n }, '', GRID_VERSION, () => true, () => {});
  node.markReady();
  registry.add(node);
  const owner = createJobTransitions({ sql: db.sql, registry, events: createLocalEventBus(), log: pino({ level: 'silent' }), backstopMarginMs: 5000, kick: () => {} });
  // 1,001 jobs: two groups flushed at once, 1,000 then 1. Were the second placed
  // while the first's insert finds work queued (and so queues it all), the
  // call's last job would run before its first 1,000.
  const jobs = Array.from({ length: 1001 }, () => job());
  const outcomes = await owner.submitMany(jobs, 1_000_000);
  const states = outcomes.map((o) => (o.kind === 'created' ? JobState[o.job.state] : o.kind));
  // (The first group is placed whole unless its insert found the second's job already queued.)
  t.is(states[1000], 'JOB_STATE_QUEUED', 'the second waits behind it, whatever became of the first');
  await owner.cancel(jobs.map((j) => j.id), 0);
});

test.serial('a group in flight with queued jobs is not passed by a later group placed at once', async (t) => {
  const { owner, node } = setUp(4);
  // 4 GiB of the node's 64 GiB held: a job of 61 GiB fits the node but not its free room, and waits.
  node.hold({ jobId: uuidv7(), attempt: 1 }, { cpus: 1, memoryBytes: 4n << 30n });
  const big = Array.from({ length: 1000 }, () => job('', 61n << 30n));
  const small = job();
  // The queue depth's rows locked: an insert of queued jobs waits at its count
  // trigger, uncommitted, as a slow one would; an insert of only placed jobs
  // changes no count and goes through.
  let unlock!: () => void;
  const locked = new Promise<void>((resolve) => (unlock = resolve));
  let holding!: () => void;
  const held = new Promise<void>((resolve) => (holding = resolve));
  const lock = db.sql.begin(async (tx) => {
    await tx`SELECT * FROM queue_depth FOR UPDATE`;
    holding();
    await locked;
  });
  await held;
  // One call, two groups flushed at once: the 1,000 waiting jobs, then the small one.
  const submitted = owner.submitMany([...big, small], 1_000_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const [early] = await db.sql<{ state: string }[]>`SELECT state FROM jobs WHERE id = ${small.id}`;
  unlock();
  await lock;
  const outcomes = await submitted;
  t.true(early === undefined, 'the small job was not stored ASSIGNED while the 1,000 before it were being queued');
  const states = outcomes.map((o) => (o.kind === 'created' ? JobState[o.job.state] : o.kind));
  t.is(states.filter((s) => s === 'JOB_STATE_QUEUED').length, 1001, 'the small job waits its turn behind them');
  await owner.cancel([...big, small].map((j) => j.id), 0);
});
