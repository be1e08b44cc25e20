// AgentService.Connect: one bidirectional stream per agent. Any message counts as
// a sign of life the moment it arrives; reports are then handled in stream order
// (so a job's output is stored before its end), each fenced by its attempt and
// acknowledged only once committed. While Postgres is unreachable, handling
// waits and retries rather than dropping the stream: the agent keeps its place.
import type { CallContext } from 'nice-grpc';
import type { Logger } from 'pino';
import {
  CancelCause,
  type AgentServiceImplementation,
  type ConnectRequest,
  type ConnectResponse,
  type Hello,
  type JobFinished,
  type JobImagePull,
} from '../common/gen/grid/v1/agent.js';
import { JobState } from '../common/gen/grid/v1/job.js';
import { AsyncQueue } from '../common/async-queue.js';
import { alreadyExists, failedPrecondition, isDatabaseUnavailable } from '../common/errors.js';
import { stateFromDb } from '../common/job-state.js';
import { msToDuration } from '../common/units.js';
import { GRID_VERSION } from '../common/version.js';
import type { Sql } from './db/connect.js';
import type { Dispatcher } from './dispatcher.js';
import { publishJobRow, type JobEventBus } from './job-events.js';
import {
  activeJobsOnNode,
  finishAttempt,
  isCurrentAttempt,
  recordOutputFiles,
  loseAttempts,
  markStarted,
  rowTask,
  type AttemptKey,
  type ReportOutcome,
} from './job-store.js';
import { appendLogs } from './log-store.js';
import { outputsKey, type BlobStore } from './blob-store.js';
import { listFiles } from '../common/tar-archive.js';
import { identifyNode } from './node-identity.js';
import type { NodeLiveness } from './node-liveness.js';
import { hold, sendAssignment, sendCancel, type NodeRegistry, type NodeSession } from './node-registry.js';
import { recordNodeConnected } from './node-store.js';
import { reconcile } from './reconcile.js';

export interface AgentServiceDeps {
  sql: Sql;
  registry: NodeRegistry;
  dispatcher: Dispatcher;
  events: JobEventBus;
  liveness: () => NodeLiveness;
  log: Logger;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  backstopMarginMs: number;
  blobs: BlobStore;
}

const MAX_RETRY_DELAY_MS = 2000;

export function createAgentService(deps: AgentServiceDeps): AgentServiceImplementation {
  return {
    async *connect(requests: AsyncIterable<ConnectRequest>, ctx: CallContext): AsyncIterable<ConnectResponse> {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done || first.value.message?.$case !== 'hello') {
        throw failedPrecondition('the first message on AgentService.Connect must be hello');
      }
      const hello = first.value.message.value;
      const nodeId = identifyNode(hello, ctx);
      const log = deps.log.child({ node: nodeId });
      const outbox = new AsyncQueue<ConnectResponse>();
      const session: NodeSession = {
        nodeId,
        name: hello.name || nodeId,
        capacity: hello.capacity!,
        connectedAt: new Date(),
        lastSeenAt: new Date(),
        generation: 0,
        ready: false,
        judged: false,
        held: new Map(),
        send: (message) => outbox.push(message),
        close: () => outbox.end(),
      };
      deps.registry.add(session);
      try {
        const generation = await recordNodeConnected(deps.sql, nodeId, hello, deps.heartbeatTimeoutMs);
        if (generation === undefined) {
          throw alreadyExists(
            `node "${nodeId}" is already connected to another control plane; ` +
              'each agent needs its own --node-id (is a second agent running with the same one?)',
          );
        }
        session.generation = generation;
        await welcome(session, hello, log);

        const reports = new AsyncQueue<ConnectRequest>();
        let streamOver = false;
        const over = () => streamOver || outbox.isEnded;
        const reading = (async () => {
          try {
            for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
              session.lastSeenAt = new Date();
              const m = next.value.message;
              if (m?.$case === 'jobImagePull') publishPullProgress(session, m.value);
              else if (m?.$case !== 'heartbeat') reports.push(next.value);
            }
          } finally {
            streamOver = true;
            reports.end();
          }
        })();
        const handling = (async () => {
          for await (const request of reports) {
            // Once the stream is over, its unacked reports come again on the
            // agent's next stream; handling them here too could race that one.
            if (over()) break;
            await handleWithRetry(request, session, over, log);
          }
        })();
        Promise.all([reading, handling])
          .catch((err) => log.warn({ err }, 'agent stream failed'))
          .finally(() => outbox.end());
        // Not awaiting reading/handling after the outbox ends: once this returns the
        // call is over, and a client that never half-closes would otherwise hold it open.
        yield* outbox;
      } finally {
        deps.registry.remove(session);
        log.info('node stream ended');
        await deps.liveness().streamEnded(session);
      }
    },
  };

  /** Reconciles what the node holds with what Postgres says, then opens it to work. */
  async function welcome(session: NodeSession, hello: Hello, log: Logger): Promise<void> {
    const rows = await activeJobsOnNode(deps.sql, session.nodeId);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const plan = reconcile(
      rows.map((r) => ({ jobId: r.id, attempt: r.attempt, state: stateFromDb(r.state) })),
      hello.attempts.map((a) => ({ jobId: a.jobId, attempt: a.attempt })),
    );
    session.send({
      message: {
        $case: 'welcome',
        value: { heartbeatInterval: msToDuration(deps.heartbeatIntervalMs), serverVersion: GRID_VERSION },
      },
    });
    for (const a of [...plan.keep, ...plan.resend]) {
      const row = byId.get(a.jobId)!;
      const task = rowTask(row);
      const attempt = { jobId: a.jobId, attempt: a.attempt };
      hold(session, attempt, task);
      if (plan.resend.includes(a)) sendAssignment(session, attempt, task);
      // A cancel asked for while the node was away is delivered now.
      if (a.state === JobState.JOB_STATE_CANCELLING) {
        sendCancel(session, attempt, row.cancel_grace_ms ?? row.stop_grace_ms, CancelCause.CANCEL_CAUSE_CANCELLED);
      }
    }
    for (const stale of plan.kill) sendCancel(session, stale, 0, CancelCause.CANCEL_CAUSE_STALE);
    if (plan.lose.length > 0) {
      const lost = await loseAttempts(deps.sql, session.nodeId, plan.lose);
      log.warn({ attempts: plan.lose }, 'node came back without some of its attempts; they are lost');
      for (const row of lost) publishJobRow(deps.events, row);
    }
    session.ready = true;
    log.info(
      { node_name: session.name, capacity: session.capacity, generation: session.generation, kept: plan.keep.length, killed: plan.kill.length },
      'node connected',
    );
    deps.dispatcher.kick();
  }

  async function handleWithRetry(request: ConnectRequest, session: NodeSession, ended: () => boolean, log: Logger): Promise<void> {
    for (let delay = 100; ; delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS)) {
      try {
        return await handle(request, session, log);
      } catch (err) {
        if (!isDatabaseUnavailable(err) || session.judged || ended()) throw err;
        log.warn({ err: (err as Error).message }, 'database unavailable; report will be retried');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** One queued report; heartbeats and live news never get here (the reading loop takes them). */
  async function handle(request: ConnectRequest, session: NodeSession, log: Logger): Promise<void> {
    const m = request.message;
    if (!m) return;
    switch (m.$case) {
      case 'hello':
        throw failedPrecondition('hello may only be the first message of a stream');
      case 'jobStarted': {
        const key = attemptKey(m.value.attempt);
        const outcome = await markStarted(deps.sql, key, m.value.startedAt ?? new Date(), deps.backstopMarginMs);
        settle(session, request.seq, key, outcome, log);
        return;
      }
      case 'jobOutput': {
        const key = attemptKey(m.value.attempt);
        const stored = await appendLogs(deps.sql, key, m.value.chunks);
        if (!stored) return refuse(session, request.seq, key, log);
        for (const chunk of stored) deps.events.publish(key.jobId, { kind: 'log', jobId: key.jobId, chunk });
        ack(session, request.seq, true);
        return;
      }
      case 'jobOutputFiles': {
        const key = attemptKey(m.value.attempt);
        if (!(await isCurrentAttempt(deps.sql, key))) return refuse(session, request.seq, key, log);
        await deps.blobs.putChunk(outputsKey(key.jobId, key.attempt), Number(m.value.offset), m.value.data);
        if (m.value.last) {
          const result = m.value.error
            ? { error: m.value.error }
            : { files: await listFiles(deps.blobs.read(outputsKey(key.jobId, key.attempt))) };
          await recordOutputFiles(deps.sql, key, result);
        }
        ack(session, request.seq, true);
        return;
      }
      case 'jobFinished': {
        const key = attemptKey(m.value.attempt);
        const outcome = await finishAttempt(deps.sql, key, finishedResult(m.value));
        if (outcome.kind !== 'stale' || session.held.get(key.jobId)?.attempt === key.attempt) {
          session.held.delete(key.jobId);
          deps.dispatcher.kick();
        }
        settle(session, request.seq, key, outcome, log);
        return;
      }
    }
  }

  /**
   * Live news, not a report: published at once (ahead of the reports queued
   * behind Postgres) and fenced by what this session holds in memory, so that
   * progress costs no database round trip. News of a stale attempt, or from a
   * session already judged lost (its attempts may be queued again), is dropped.
   */
  function publishPullProgress(session: NodeSession, news: JobImagePull): void {
    const ref = news.attempt;
    if (!ref || !news.progress || session.judged || session.held.get(ref.jobId)?.attempt !== ref.attempt) return;
    deps.events.publish(ref.jobId, { kind: 'pull', jobId: ref.jobId, progress: { ...news.progress, attempt: ref.attempt } });
  }

  function settle(session: NodeSession, seq: bigint, key: AttemptKey, outcome: ReportOutcome, log: Logger): void {
    if (outcome.kind === 'stale') return refuse(session, seq, key, log);
    // A duplicate may be the retry of a commit whose answer was lost: publish it
    // too (watchers drop what they already have by version).
    publishJobRow(deps.events, outcome.row);
    ack(session, seq, true);
  }

  /** A report from an attempt that is no longer current: refuse it and have its container killed. */
  function refuse(session: NodeSession, seq: bigint, key: AttemptKey, log: Logger): void {
    log.warn({ job_id: key.jobId, attempt: key.attempt }, 'refused report from a stale attempt');
    ack(session, seq, false);
    sendCancel(session, key, 0, CancelCause.CANCEL_CAUSE_STALE);
  }

  function ack(session: NodeSession, seq: bigint, accepted: boolean): void {
    if (seq > 0n) session.send({ message: { $case: 'ack', value: { seq, accepted } } });
  }
}

function attemptKey(ref: { jobId: string; attempt: number } | undefined): AttemptKey {
  if (!ref) throw failedPrecondition('report without an attempt');
  return { jobId: ref.jobId, attempt: ref.attempt };
}

function finishedResult(f: JobFinished) {
  return {
    reason: f.reason,
    exitCode: f.exitCode,
    message: f.message,
    startedAt: f.startedAt,
    endedAt: f.finishedAt ?? new Date(),
    output: { stdoutBytes: Number(f.stdoutBytes), stderrBytes: Number(f.stderrBytes) },
  };
}
