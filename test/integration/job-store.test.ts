// Job transitions against real PostgreSQL, through their owner
// (job-transitions.ts) and its statements: claims never hand one job out twice,
// and every report is a compare-and-set fenced by its attempt, so a job ends
// exactly once however reports race.
import test from 'ava';
import { GRID_VERSION } from '../../common/version.js';
import { v7 as uuidv7 } from 'uuid';
import { EndReason, JobSpec } from '../../common/gen/grid/v1/job.js';
import { migrate } from '../../control-plane/db/migrate.js';
import { pino } from 'pino';
import type { AttemptRef } from '../../common/attempt.js';
import { getJob, queueDepth } from '../../control-plane/job-store.js';
import { createLocalEventBus } from '../../control-plane/job-events.js';
import { createJobTransitions, type FinishReport, type JobTransitions } from '../../control-plane/job-transitions.js';
import { appendOutputs, readLogs } from '../../control-plane/log-store.js';
import { NodeRegistry } from '../../control-plane/node-registry.js';
import { NodeSession } from '../../control-plane/node-session.js';
import { claimJobs as claimFor } from '../../control-plane/sql/claim-jobs.js';
import { endPastBackstop } from '../../control-plane/sql/end-past-backstop.js';
import { expireQueued } from '../../control-plane/sql/expire-queued.js';
import { insertJobs } from '../../control-plane/sql/insert-jobs.js';
import type { LogChunk } from '../../common/gen/grid/v1/job.js';
import { runtimeTable, DEFAULT_RUNTIMES } from '../../control-plane/runtime-presets.js';
import { DEFAULT_SPEC_POLICY, validateSubmission } from '../../control-plane/spec-validation.js';
import { LogStream } from '../../common/gen/grid/v1/job.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
let owner: JobTransitions;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
  owner = createJobTransitions({
    sql: db.sql,
    registry: new NodeRegistry(),
    events: createLocalEventBus(),
    log: pino({ level: 'silent' }),
    backstopMarginMs: 5000,
    kick: () => {},
  });
});

// One call of a transition for one job, as the tests below ask for it.
const sessions = new Map<string, NodeSession>();
function sessionOf(nodeId: string): NodeSession {
  let s = sessions.get(nodeId);
  if (!s) sessions.set(nodeId, (s = new NodeSession(nodeId, nodeId, { slots: 1000, cpus: 1000, memoryBytes: 2n ** 50n }, '', GRID_VERSION, () => true, () => {})));
  return s;
}
async function claimJobs(_sql: unknown, node: { nodeId: string; slots: number; cpus: number; memoryBytes: number; size?: { cpus: number; memoryBytes: number } }) {
  const { nodeId, slots, cpus, memoryBytes } = node;
  return (await claimFor(db.sql, [{ nodeId, free: { slots, cpus, memoryBytes }, size: node.size ?? { cpus, memoryBytes } }])).rows;
}
/** Reports travel on the stream of the node the attempt was assigned to. */
async function nodeOf(key: AttemptRef): Promise<NodeSession> {
  const [row] = await db.sql<{ node_id: string | null }[]>`SELECT node_id FROM job_attempts WHERE job_id = ${key.jobId} AND attempt = ${key.attempt}`;
  return sessionOf(row?.node_id ?? 'unknown');
}
async function markStarted(_sql: unknown, key: AttemptRef, startedAt: Date, _margin: number) {
  const [kind] = await owner.report(await nodeOf(key), [{ kind: 'started', report: { attempt: key, startedAt } }]);
  return { kind: kind! };
}
async function finishAttempt(_sql: unknown, key: AttemptRef, result: Omit<FinishReport, 'attempt'>) {
  const [kind] = await owner.report(await nodeOf(key), [{ kind: 'finished', report: { attempt: key, ...result } }]);
  return { kind: kind! };
}
async function appendLogs(_sql: unknown, key: AttemptRef, chunks: LogChunk[]) {
  const node = (await db.sql<{ node_id: string }[]>`SELECT node_id FROM jobs WHERE id = ${key.jobId}`)[0]?.node_id ?? 'unknown';
  const [stored] = await appendOutputs(db.sql, [{ attempt: key, nodeId: node, chunks }]);
  return stored;
}
async function cancelJob(_sql: unknown, id: string, graceMs: number, _margin: number) {
  const [row] = await owner.cancel([id], graceMs);
  return { changed: row !== undefined, row: row ?? (await getJob(db.sql, id)) };
}
const loseNode = (_sql: unknown, nodeId: string, generation: number) => owner.loseNode(nodeId, generation, 'test');
test.after.always(async () => db?.drop());

const runtimes = runtimeTable(DEFAULT_RUNTIMES);
async function submit(memoryBytes = 0n, requestId = '') {
  const { spec, task } = validateSubmission(
    JobSpec.fromPartial({ command: ['true'], resources: { cpus: 0, memoryBytes } }),
    DEFAULT_SPEC_POLICY,
    runtimes,
  );
  const [inserted] = (await insertJobs(db.sql, [{ id: uuidv7(), spec, task, requestId }], 1_000_000)).outcomes;
  if (inserted!.kind === 'full') throw new Error('queue full');
  return inserted!.kind === 'created' ? { row: { id: inserted!.row.id }, created: true } : { row: { id: inserted!.id }, created: false };
}

const big = { slots: 1000, cpus: 1000, memoryBytes: 2 ** 50 };
const done = { reason: EndReason.END_REASON_SUCCEEDED, exitCode: 0, message: '', endedAt: new Date() };

test.serial('concurrent claims hand every job out exactly once', async (t) => {
  const ids = new Set<string>();
  for (let i = 0; i < 60; i++) ids.add((await submit()).row.id);
  // Racing claimers (as replicas are) read the same head; each job goes to one
  // of them, and the others claim again until the queue is empty.
  const claims: Awaited<ReturnType<typeof claimJobs>>[] = [];
  for (let round = 0; round < 60 && claims.flat().length < 60; round++) {
    claims.push(...(await Promise.all(Array.from({ length: 12 }, (_, n) => claimJobs(db.sql, { ...big, nodeId: `node-${n}`, slots: 7 })))));
  }
  const claimed = claims.flat().map((r) => r.id);
  t.is(claimed.length, 60);
  t.is(new Set(claimed).size, 60, 'a job was claimed twice');
  t.deepEqual([...claimed].sort(), [...ids].sort());
  for (const row of claims.flat()) {
    t.is(row.state, 'ASSIGNED');
    t.is(row.attempt, 1);
    await finishAttempt(db.sql, { jobId: row.id, attempt: 1 }, done);
  }
});

test.serial('an end reported without a start (the one report the agent sends for a task that ended at once) ends the job with the start time it carries', async (t) => {
  const { row } = await submit();
  const [claimed] = await claimJobs(db.sql, { ...big, nodeId: 'once', slots: 1 });
  t.is(claimed!.id, row.id);
  const startedAt = new Date(Date.now() - 50);
  const ended = await finishAttempt(db.sql, { jobId: row.id, attempt: 1 }, { ...done, startedAt, endedAt: new Date() });
  t.is(ended.kind, 'applied');
  const job = (await getJob(db.sql, row.id))!;
  t.is(job.state, 'SUCCEEDED');
  t.is(job.started_at?.getTime(), startedAt.getTime());
  const [attempt] = await db.sql<{ started_at: Date; outcome: string }[]>`SELECT started_at, outcome FROM job_attempts WHERE job_id = ${row.id}`;
  t.is(attempt!.started_at.getTime(), startedAt.getTime(), "the attempt's history keeps its start");
  t.is(attempt!.outcome, 'SUCCEEDED');
  t.is((await markStarted(db.sql, { jobId: row.id, attempt: 1 }, startedAt, 5000)).kind, 'duplicate', 'a late start of the same attempt changes nothing');
});

test.serial('a claim never overcommits a node\'s memory', async (t) => {
  const mib = 1024 * 1024;
  for (let i = 0; i < 3; i++) await submit(BigInt(300 * mib));
  const rows = await claimJobs(db.sql, { nodeId: 'small', slots: 10, cpus: 10, memoryBytes: 700 * mib });
  t.is(rows.length, 2);
  const rest = await claimJobs(db.sql, { nodeId: 'other', slots: 10, cpus: 10, memoryBytes: 700 * mib });
  t.is(rest.length, 1);
  for (const row of [...rows, ...rest]) await finishAttempt(db.sql, { jobId: row.id, attempt: 1 }, done);
});

test.serial('reports from a stale attempt are refused; a resent final report is a harmless duplicate', async (t) => {
  const { row } = await submit();
  const [claimed] = await claimJobs(db.sql, { ...big, nodeId: 'n1', slots: 1 });
  t.is(claimed!.id, row.id);
  // The job moved on to attempt 2 (as after a lost node).
  await db.sql`UPDATE jobs SET state = 'QUEUED' WHERE id = ${row.id}`;
  const [second] = await claimJobs(db.sql, { ...big, nodeId: 'n2', slots: 1 });
  t.is(second!.attempt, 2);

  const staleStart = await markStarted(db.sql, { jobId: row.id, attempt: 1 }, new Date(), 5000);
  t.is(staleStart.kind, 'stale');
  const staleLogs = await appendLogs(db.sql, { jobId: row.id, attempt: 1 }, [
    { stream: LogStream.LOG_STREAM_STDOUT, offset: 0n, data: Buffer.from('old'), time: new Date(), attempt: 1 },
  ]);
  t.is(staleLogs, undefined);
  const staleEnd = await finishAttempt(db.sql, { jobId: row.id, attempt: 1 }, { ...done, reason: EndReason.END_REASON_FAILED, exitCode: 1 });
  t.is(staleEnd.kind, 'stale');
  t.is((await getJob(db.sql, row.id))!.state, 'ASSIGNED');

  t.is((await markStarted(db.sql, { jobId: row.id, attempt: 2 }, new Date(), 5000)).kind, 'applied');
  const end = await finishAttempt(db.sql, { jobId: row.id, attempt: 2 }, done);
  t.is(end.kind, 'applied');
  const again = await finishAttempt(db.sql, { jobId: row.id, attempt: 2 }, { ...done, reason: EndReason.END_REASON_FAILED, exitCode: 9 });
  t.is(again.kind, 'duplicate');
  const final = (await getJob(db.sql, row.id))!;
  t.is(final.state, 'SUCCEEDED');
  t.is(final.exit_code, 0);
});

test.serial('racing final reports: exactly one wins', async (t) => {
  for (let i = 0; i < 20; i++) {
    const { row } = await submit();
    await claimJobs(db.sql, { ...big, nodeId: 'race', slots: 1 });
    const key = { jobId: row.id, attempt: 1 };
    const outcomes = await Promise.all([
      finishAttempt(db.sql, key, done),
      finishAttempt(db.sql, key, { ...done, reason: EndReason.END_REASON_FAILED, exitCode: 2 }),
      cancelJob(db.sql, row.id, 0, 5000),
    ]);
    const applied = outcomes.slice(0, 2).filter((o) => 'kind' in o && o.kind === 'applied');
    t.is(applied.length, 1, 'exactly one final report applies');
    const final = (await getJob(db.sql, row.id))!;
    const cancel = outcomes[2] as Awaited<ReturnType<typeof cancelJob>>;
    // A cancel committed before the end decides it (CANCELLED); one after it changes nothing.
    t.is(final.state, cancel.changed ? 'CANCELLED' : final.state === 'SUCCEEDED' ? 'SUCCEEDED' : 'FAILED');
    t.not(final.end_reason, null);
  }
});

test.serial('cancel: a queued job ends at once; a terminal one is left as it is', async (t) => {
  const { row } = await submit();
  const first = await cancelJob(db.sql, row.id, 0, 5000);
  t.true(first.changed);
  t.is(first.row!.state, 'CANCELLED');
  t.is(first.row!.end_reason, 'CANCELLED');
  const second = await cancelJob(db.sql, row.id, 0, 5000);
  t.false(second.changed);
  t.is(second.row!.state, 'CANCELLED');
});

test.serial('a request id makes a resubmission return the first job', async (t) => {
  const a = await submit(0n, 'client-retry-1');
  const b = await submit(0n, 'client-retry-1');
  t.true(a.created);
  t.false(b.created);
  t.is(a.row.id, b.row.id);
  await cancelJob(db.sql, a.row.id, 0, 5000);
});

test.serial('log batches are idempotent and read back per stream in order', async (t) => {
  await submit();
  const [row] = await claimJobs(db.sql, { ...big, nodeId: 'logs', slots: 1 });
  const key = { jobId: row!.id, attempt: 1 };
  const t0 = new Date();
  const chunks = [
    { stream: LogStream.LOG_STREAM_STDOUT, offset: 0n, data: Buffer.from([0, 1, 2]), time: t0, attempt: 1 },
    { stream: LogStream.LOG_STREAM_STDERR, offset: 0n, data: Buffer.from('err'), time: t0, attempt: 1 },
    { stream: LogStream.LOG_STREAM_STDOUT, offset: 3n, data: Buffer.from([255, 254]), time: new Date(t0.getTime() + 5), attempt: 1 },
  ];
  t.is((await appendLogs(db.sql, key, chunks))!.length, 3);
  t.deepEqual(await appendLogs(db.sql, key, chunks), [], 'a resend stores nothing new');
  // A restarted agent replays from offset 0 in chunks cut differently: only new bytes are kept.
  const replay = await appendLogs(db.sql, key, [
    { stream: LogStream.LOG_STREAM_STDOUT, offset: 0n, data: Buffer.from([0, 1, 2, 255, 254, 7, 8]), time: t0, attempt: 1 },
  ]);
  t.deepEqual(replay!.map((c) => [c.offset, Buffer.from(c.data)]), [[5n, Buffer.from([7, 8])]]);
  const all = await readLogs(db.sql, { jobId: row!.id, attempt: 1 });
  t.is(all.length, 4);
  const out = Buffer.concat(all.filter((c) => c.stream === LogStream.LOG_STREAM_STDOUT).map((c) => Buffer.from(c.data)));
  t.deepEqual(out, Buffer.from([0, 1, 2, 255, 254, 7, 8]));
  const resumed = await readLogs(db.sql, { jobId: row!.id, attempt: 1, stream: LogStream.LOG_STREAM_STDOUT, fromOffsets: { stdout: 4, stderr: 0 } });
  t.deepEqual(resumed.map((c) => [c.offset, Buffer.from(c.data)]), [[4n, Buffer.from([254])], [5n, Buffer.from([7, 8])]]);
});

test.serial('the backstop ends an attempt whose node never reported: TIMED_OUT, or CANCELLED when cancelling', async (t) => {
  const { row: a } = await submit();
  const { row: b } = await submit();
  const claimed = await claimJobs(db.sql, { ...big, nodeId: 'silent-node', slots: 2 });
  t.deepEqual(claimed.map((r) => r.id).sort(), [a.id, b.id].sort());
  for (const r of claimed) t.is((await markStarted(db.sql, { jobId: r.id, attempt: 1 }, new Date(), 5000)).kind, 'applied');
  const mine = <R extends { id: string }>(rows: R[]) => rows.filter((r) => r.id === a.id || r.id === b.id);
  t.deepEqual(mine(await endPastBackstop(db.sql, 100)), [], 'nothing of these is due yet');
  await cancelJob(db.sql, b.id, 0, 5000);
  // Both pass their backstop (as if their node went quiet but stayed connected).
  await db.sql`UPDATE jobs SET backstop_at = now() - interval '1 second' WHERE id IN (${a.id}, ${b.id})`;
  const ended = mine(await endPastBackstop(db.sql, 100));
  t.deepEqual(ended.map((r) => [r.id, r.state, r.end_reason]).sort(), [
    [a.id, 'FAILED', 'TIMED_OUT'],
    [b.id, 'CANCELLED', 'CANCELLED'],
  ].sort());
  // The node's late report is then a harmless duplicate: the first end stands.
  const late = await finishAttempt(db.sql, { jobId: a.id, attempt: 1 }, done);
  t.is(late.kind, 'duplicate');
  t.is((await getJob(db.sql, a.id))!.end_reason, 'TIMED_OUT');
  t.deepEqual(mine(await endPastBackstop(db.sql, 100)), []);
});

test.serial('a queued job past its queue deadline ends QUEUE_TIMEOUT exactly once', async (t) => {
  const { row } = await submit();
  await db.sql`UPDATE jobs SET queue_deadline = now() - interval '1 second' WHERE id = ${row.id}`;
  const [first, second] = await Promise.all([expireQueued(db.sql, 100), expireQueued(db.sql, 100)]);
  t.is(first!.length + second!.length, 1);
  const job = (await getJob(db.sql, row.id))!;
  t.is(job.state, 'FAILED');
  t.is(job.end_reason, 'QUEUE_TIMEOUT');
});

test.serial('a lost attempt cannot end its requeued job, and the requeued job starts with fresh deadlines', async (t) => {
  const { row } = await submit();
  const [claimed] = await claimJobs(db.sql, { ...big, nodeId: 'flaky', slots: 1 });
  t.is(claimed!.id, row.id);
  await markStarted(db.sql, { jobId: row.id, attempt: 1 }, new Date(), 5000);
  await db.sql`INSERT INTO nodes (id, name, state, slots, cpus, memory_bytes, generation) VALUES ('flaky', 'flaky', 'READY', 1, 1, 1, 7)
               ON CONFLICT (id) DO UPDATE SET state = 'READY', generation = 7`;
  t.is(await loseNode(db.sql, 'flaky', 6), undefined, 'a verdict on an older connection changes nothing');
  t.is((await getJob(db.sql, row.id))!.state, 'RUNNING');
  const lost = (await loseNode(db.sql, 'flaky', 7))!;
  t.deepEqual(lost.map((r) => [r.id, r.state, r.attempt]), [[row.id, 'QUEUED', 1]]);
  const requeued = (await getJob(db.sql, row.id))!;
  t.is((requeued as unknown as { backstop_at: Date | null }).backstop_at, null);
  t.true((requeued as unknown as { queue_deadline: Date }).queue_deadline.getTime() > Date.now() + 60_000);
  // The lost attempt's late report (say, the kill of its container) must not end the job.
  const late = await finishAttempt(db.sql, { jobId: row.id, attempt: 1 }, { ...done, reason: EndReason.END_REASON_CANCELLED });
  t.is(late.kind, 'stale');
  t.is((await getJob(db.sql, row.id))!.state, 'QUEUED');
  const [again] = await claimJobs(db.sql, { ...big, nodeId: 'steady', slots: 1 });
  t.is(again!.attempt, 2);
  await finishAttempt(db.sql, { jobId: row.id, attempt: 2 }, done);
});

test.serial('a committed cancel decides the end: an attempt reported SUCCEEDED or FAILED while CANCELLING ends CANCELLED, its exit code kept', async (t) => {
  for (const [reported, exitCode] of [[EndReason.END_REASON_FAILED, 137], [EndReason.END_REASON_SUCCEEDED, 0], [EndReason.END_REASON_OOM_KILLED, 137]] as const) {
    const { row } = await submit();
    await claimJobs(db.sql, { ...big, nodeId: 'cancel-node', slots: 1 });
    await markStarted(db.sql, { jobId: row.id, attempt: 1 }, new Date(), 5000);
    await cancelJob(db.sql, row.id, 0, 5000);
    // What a restarted agent reports for a container the cancel stopped: it cannot know it was stopped.
    const end = await finishAttempt(db.sql, { jobId: row.id, attempt: 1 }, { ...done, reason: reported, exitCode, message: `exited with code ${exitCode}` });
    t.is(end.kind, 'applied', EndReason[reported]);
    const final = (await getJob(db.sql, row.id))!;
    t.deepEqual([final.state, final.end_reason, final.exit_code], ['CANCELLED', 'CANCELLED', exitCode], EndReason[reported]);
    t.regex(final.message, new RegExp(`^cancelled; the process exited with code ${exitCode}`));
    const [history] = await db.sql`SELECT outcome FROM job_attempts WHERE job_id = ${row.id}`;
    t.is(history!.outcome, 'CANCELLED');
    t.is((await finishAttempt(db.sql, { jobId: row.id, attempt: 1 }, done)).kind, 'duplicate', 'a resend changes nothing');
  }
});

test.serial('a cancel racing a requeue is applied to the state the job is in when the cancel commits', async (t) => {
  const { row } = await submit();
  await claimJobs(db.sql, { ...big, nodeId: 'requeue-node', slots: 1 });
  let cancelling: ReturnType<typeof cancelJob> | undefined;
  // The requeue (what losing the node does) holds the job's row while the cancel arrives.
  await db.sql.begin(async (tx) => {
    await tx`SELECT 1 FROM jobs WHERE id = ${row.id} FOR UPDATE`;
    cancelling = cancelJob(db.sql, row.id, 0, 5000);
    for (let i = 0; i < 200; i++) {
      const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%cancel_grace_ms%'`;
      if (n > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await tx`UPDATE jobs SET state = 'QUEUED', node_id = NULL, version = version + 1 WHERE id = ${row.id}`;
  });
  const { row: after, changed } = await cancelling!;
  t.true(changed, 'the cancel was applied');
  t.deepEqual([after!.state, after!.end_reason], ['CANCELLED', 'CANCELLED'], 'a job requeued meanwhile is cancelled as a queued one');
});

test.serial('a final report racing a cancel is applied to the state the job is in when it commits: CANCELLED', async (t) => {
  const { row } = await submit();
  await claimJobs(db.sql, { ...big, nodeId: 'finish-race-node', slots: 1 });
  await markStarted(db.sql, { jobId: row.id, attempt: 1 }, new Date(), 5000);
  let finishing: ReturnType<typeof finishAttempt> | undefined;
  // The cancel holds the job's row while the node's final report arrives.
  await db.sql.begin(async (tx) => {
    await tx`SELECT 1 FROM jobs WHERE id = ${row.id} FOR UPDATE`;
    finishing = finishAttempt(db.sql, { jobId: row.id, attempt: 1 }, { ...done, reason: EndReason.END_REASON_FAILED, exitCode: 137 });
    for (let i = 0; i < 200; i++) {
      const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%stdout_bytes%'`;
      if (n > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await tx`UPDATE jobs SET state = 'CANCELLING', version = version + 1 WHERE id = ${row.id}`;
  });
  t.is((await finishing!).kind, 'applied', 'the report is not refused as stale');
  const final = (await getJob(db.sql, row.id))!;
  t.deepEqual([final.state, final.end_reason, final.exit_code], ['CANCELLED', 'CANCELLED', 137]);
});

test.serial('the queue depth kept by triggers equals a count of the queue through submits, claims, requeues, cancels and expiries', async (t) => {
  const counted = async () => (await db.sql`SELECT count(*)::int AS n FROM jobs WHERE state = 'QUEUED'`)[0]!.n as number;
  t.is(await queueDepth(db.sql), await counted(), 'from the start');
  const ids = await Promise.all(Array.from({ length: 30 }, () => submit().then((r) => r.row.id)));
  await Promise.all([1, 2, 3].map((n) => claimJobs(db.sql, { ...big, nodeId: `depth-${n}`, slots: 4 })));
  t.is(await queueDepth(db.sql), await counted(), 'after concurrent submits and claims');
  await db.sql`INSERT INTO nodes (id, name, state, slots, cpus, memory_bytes, generation) VALUES ('depth-1', 'depth-1', 'READY', 1, 1, 1, 1)
               ON CONFLICT (id) DO UPDATE SET state = 'READY', generation = 1`;
  await loseNode(db.sql, 'depth-1', 1);
  await cancelJob(db.sql, ids[29]!, 0, 5000);
  await db.sql`UPDATE jobs SET queue_deadline = now() - interval '1 second' WHERE id = ANY(${ids.slice(20, 25)}::uuid[]) AND state = 'QUEUED'`;
  await expireQueued(db.sql, 100);
  t.is(await queueDepth(db.sql), await counted(), 'after a requeue, a cancel and expiries');
  // Nothing is left queued for the tests after this one.
  await db.sql`UPDATE jobs SET state = 'CANCELLED', end_reason = 'CANCELLED' WHERE state = 'QUEUED'`;
  t.is(await queueDepth(db.sql), 0);
});

test.serial('a claim passes over a job larger than the whole node, but not one that only waits for room', async (t) => {
  const gib = 1024 ** 3;
  const huge = await submit(BigInt(64 * gib));
  const roomy = await submit(BigInt(3 * gib));
  const small = await submit(BigInt(gib / 4));
  const node = { nodeId: 'sized', slots: 4, cpus: 4, size: { cpus: 4, memoryBytes: 4 * gib } };
  // 2 GiB free of 4: the 3 GiB job fits the node, so it keeps its turn (not starved by smaller ones).
  t.deepEqual([...await claimJobs(db.sql, { ...node, memoryBytes: 2 * gib })], []);
  const claimed = await claimJobs(db.sql, { ...node, memoryBytes: 4 * gib });
  t.deepEqual(claimed.map((r) => r.id), [roomy.row.id, small.row.id], 'the 64 GiB job is passed over, the others run in order');
  t.is((await getJob(db.sql, huge.row.id))!.state, 'QUEUED');
  for (const r of claimed) await finishAttempt(db.sql, { jobId: r.id, attempt: 1 }, done);
  await cancelJob(db.sql, huge.row.id, 0, 5000);
});

test.serial('a claim compares each job with each node: jobs too big for every node, though within the largest CPUs and the largest memory, do not strand a small one', async (t) => {
  const gib = 1024 ** 3;
  const sized = (cpus: number, memoryBytes: number) => validateSubmission(
    JobSpec.fromPartial({ command: ['true'], resources: { cpus, memoryBytes: BigInt(memoryBytes) } }), DEFAULT_SPEC_POLICY, runtimes);
  // 8 CPUs / 32 GiB: more memory than the 8-CPU node, more CPUs than the 64 GiB one.
  const wide = [];
  for (let i = 0; i < 4; i++) {
    const { spec, task } = sized(8, 32 * gib);
    const [r] = (await insertJobs(db.sql, [{ id: uuidv7(), spec, task, requestId: '' }], 1_000_000)).outcomes;
    wide.push(r!.kind === 'created' ? r!.row.id : '');
  }
  const small = await submit(BigInt(gib));
  const offers = [
    { nodeId: 'cpu-rich', free: { slots: 2, cpus: 8, memoryBytes: 16 * gib }, size: { cpus: 8, memoryBytes: 16 * gib } },
    { nodeId: 'memory-rich', free: { slots: 2, cpus: 2, memoryBytes: 64 * gib }, size: { cpus: 2, memoryBytes: 64 * gib } },
  ];
  const claim = await claimFor(db.sql, offers);
  t.deepEqual(claim.rows.map((r) => r.id), [small.row.id], 'the small job is claimed; none of the four that fit no node');
  for (const r of claim.rows) await finishAttempt(db.sql, { jobId: r.id, attempt: 1 }, done);
  for (const id of wide) await cancelJob(db.sql, id, 0, 5000);
});

test.serial('a job only a full node can hold waits for it: the claim does not call the queue exhausted, so its freed slot dispatches it', async (t) => {
  const gib = 1024 ** 3;
  const big = await submit(BigInt(8 * gib));
  const live = (id: string, slots: number, memory: number) => {
    const s = new NodeSession(id, id, { slots, cpus: 4, memoryBytes: BigInt(memory) }, '', GRID_VERSION, () => true, () => {});
    s.markReady();
    return s;
  };
  const full = live('big-but-full', 1, 16 * gib);
  full.hold({ jobId: uuidv7(), attempt: 1 }, { cpus: 1, memoryBytes: gib });
  const idle = live('small-and-idle', 4, 2 * gib);
  const claim = await owner.claim([full, idle]);
  t.is(claim.claimed, 0);
  t.false(claim.exhausted, 'work is left that the full node\'s freed slot must dispatch');
  await cancelJob(db.sql, big.row.id, 0, 5000);
});

test.serial('output resent for an attempt that has ended is a duplicate, not a stale attempt to kill', async (t) => {
  await submit();
  const [row] = await claimJobs(db.sql, { ...big, nodeId: 'resend-output', slots: 1 });
  const key = { jobId: row!.id, attempt: 1 };
  const chunk = { stream: LogStream.LOG_STREAM_STDOUT, offset: 0n, data: Buffer.from('hi'), time: new Date(), attempt: 1 };
  const session = await nodeOf(key);
  t.deepEqual(await owner.report(session, [{ kind: 'output', report: { attempt: key, chunks: [chunk] } }]), ['applied']);
  await finishAttempt(db.sql, key, done);
  t.deepEqual(await owner.report(session, [{ kind: 'output', report: { attempt: key, chunks: [chunk] } }]), ['duplicate']);
});
