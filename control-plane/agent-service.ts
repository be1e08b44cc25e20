// AgentService.Connect: one bidirectional stream per agent. Reports are handled
// in stream order (so a job's output is stored before its end), each is fenced
// by its attempt, and each is acknowledged only once it is committed.
import type { CallContext } from 'nice-grpc';
import type { Logger } from 'pino';
import {
  CancelCause,
  type AgentServiceImplementation,
  type ConnectRequest,
  type ConnectResponse,
  type JobFinished,
} from '../common/gen/grid/v1/agent.js';
import { AsyncQueue } from '../common/async-queue.js';
import { failedPrecondition } from '../common/errors.js';
import { msToDuration } from '../common/units.js';
import type { Sql } from './db/connect.js';
import type { Dispatcher } from './dispatcher.js';
import { publishJobRow, type JobEventBus } from './job-events.js';
import { activeJobsOnNode, finishAttempt, markStarted, rowTask, type AttemptKey, type ReportOutcome } from './job-store.js';
import { appendLogs } from './log-store.js';
import { identifyNode } from './node-identity.js';
import type { NodeRegistry, NodeSession } from './node-registry.js';
import { recordNodeConnected, recordNodeDisconnected } from './node-store.js';
import { GRID_VERSION } from '../common/version.js';

export interface AgentServiceDeps {
  sql: Sql;
  registry: NodeRegistry;
  dispatcher: Dispatcher;
  events: JobEventBus;
  log: Logger;
  heartbeatIntervalMs: number;
}

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
        held: new Map(),
        send: (message) => outbox.push(message),
        close: () => outbox.end(),
      };
      deps.registry.add(session);
      try {
        await recordNodeConnected(deps.sql, nodeId, hello);
        // What the database says this node holds counts against its capacity at once.
        for (const row of await activeJobsOnNode(deps.sql, nodeId)) {
          const task = rowTask(row);
          session.held.set(row.id, { attempt: row.attempt, cpus: task.cpus, memoryBytes: Number(task.memoryBytes) });
        }
        outbox.push({
          message: {
            $case: 'welcome',
            value: { heartbeatInterval: msToDuration(deps.heartbeatIntervalMs), serverVersion: GRID_VERSION },
          },
        });
        log.info({ node_name: session.name, capacity: session.capacity }, 'node connected');
        deps.dispatcher.kick();

        const reading = (async () => {
          try {
            for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
              session.lastSeenAt = new Date();
              await handle(next.value, session, log);
            }
          } finally {
            outbox.end();
          }
        })();
        reading.catch((err) => log.warn({ err }, 'agent stream failed'));
        // Not awaiting `reading` after the outbox ends: once this returns the call
        // is over, and a client that never half-closes would otherwise hold it open.
        yield* outbox;
      } finally {
        deps.registry.remove(session);
        log.info('node disconnected');
        await recordNodeDisconnected(deps.sql, nodeId, session.lastSeenAt).catch((err) =>
          log.warn({ err }, 'cannot record node disconnect'),
        );
      }
    },
  };

  async function handle(request: ConnectRequest, session: NodeSession, log: Logger): Promise<void> {
    const m = request.message;
    if (!m) return;
    switch (m.$case) {
      case 'hello':
        throw failedPrecondition('hello may only be the first message of a stream');
      case 'heartbeat':
        return;
      case 'jobStarted': {
        const key = attemptKey(m.value.attempt);
        const outcome = await markStarted(deps.sql, key, m.value.startedAt ?? new Date());
        settle(session, request.seq, key, outcome, log);
        return;
      }
      case 'jobOutput': {
        const key = attemptKey(m.value.attempt);
        const current = await appendLogs(deps.sql, key, m.value.chunks);
        if (current) {
          for (const chunk of m.value.chunks) {
            deps.events.publish(key.jobId, { kind: 'log', jobId: key.jobId, chunk: { ...chunk, attempt: key.attempt } });
          }
          ack(session, request.seq, true);
        } else {
          refuse(session, request.seq, key, log);
        }
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

  function settle(session: NodeSession, seq: bigint, key: AttemptKey, outcome: ReportOutcome, log: Logger): void {
    if (outcome.kind === 'stale') return refuse(session, seq, key, log);
    if (outcome.kind === 'applied') publishJobRow(deps.events, outcome.row);
    ack(session, seq, true);
  }

  /** A report from an attempt that is no longer current: refuse it and have its container killed. */
  function refuse(session: NodeSession, seq: bigint, key: AttemptKey, log: Logger): void {
    log.warn({ job_id: key.jobId, attempt: key.attempt }, 'refused report from a stale attempt');
    ack(session, seq, false);
    session.send({
      message: { $case: 'cancel', value: { attempt: key, grace: msToDuration(0), cause: CancelCause.CANCEL_CAUSE_STALE } },
    });
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
  };
}

