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
import { AsyncQueue } from '../common/async-queue.js';
import { alreadyExists, failedPrecondition, isDatabaseUnavailable } from '../common/errors.js';
import { msToDuration } from '../common/units.js';
import { GRID_VERSION } from '../common/version.js';
import type { Sql } from './db/connect.js';
import type { Dispatcher } from './dispatcher.js';
import { publishJobRow, type JobEventBus } from './job-events.js';
import { finishAttempt, isCurrentAttempt, markStarted, recordOutputFiles, type AttemptKey, type ReportOutcome } from './job-store.js';
import { appendLogs } from './log-store.js';
import { outputsKey, type BlobStore } from './blob-store.js';
import { listFiles } from '../common/tar-archive.js';
import { identifyNode } from './node-identity.js';
import type { NodeLiveness } from './node-liveness.js';
import { release, sendCancel, type NodeRegistry, type NodeSession } from './node-registry.js';
import type { NodeReconciler } from './node-reconciler.js';
import { recordNodeConnected } from './node-store.js';

export interface AgentServiceDeps {
  sql: Sql;
  registry: NodeRegistry;
  dispatcher: Dispatcher;
  events: JobEventBus;
  liveness: () => NodeLiveness;
  reconciler: NodeReconciler;
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
        capacityUnknownSince: undefined,
        counted: new Map(),
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
        await welcome(session, hello);

        const reports = new AsyncQueue<ConnectRequest>();
        let streamOver = false;
        const over = () => streamOver || outbox.isEnded;
        const reading = (async () => {
          try {
            for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
              session.lastSeenAt = new Date();
              const m = next.value.message;
              if (m?.$case === 'jobImagePull') publishPullProgress(session, m.value);
              else if (m?.$case === 'heartbeat') deps.reconciler.heartbeat(session, m.value.attempts);
              else reports.push(next.value);
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

  /** Greets the node, then has its attempts reconciled before it is given work. */
  async function welcome(session: NodeSession, hello: Hello): Promise<void> {
    session.send({
      message: {
        $case: 'welcome',
        value: { heartbeatInterval: msToDuration(deps.heartbeatIntervalMs), serverVersion: GRID_VERSION },
      },
    });
    await deps.reconciler.connected(session, hello.attempts);
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
        if (release(session, key)) deps.dispatcher.kick();
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
    if (!ref || !news.progress || session.judged || session.counted.get(ref.jobId)?.attempt !== ref.attempt) return;
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
