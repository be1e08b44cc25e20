// AgentService.Connect: one bidirectional stream per agent. Any message counts as
// a sign of life the moment it arrives; reports are then handled in stream order
// (so a job's output is stored before its end): whatever is queued on the stream
// goes to the job-transition owner as one group, applied with other streams'
// groups in one statement per kind, each report fenced by its attempt and
// acknowledged only once committed. A malformed report is refused alone
// (report-validation.ts). While Postgres is unreachable (or a statement is
// aborted by a deadlock), handling waits and retries rather than dropping the
// stream: the agent keeps its place.
import type { CallContext } from 'nice-grpc';
import type { Logger } from 'pino';
import type {
  AgentServiceImplementation,
  ConnectRequest,
  ConnectResponse,
  Hello,
  JobImagePull,
} from '../common/gen/grid/v1/agent.js';
import { CancelCause } from '../common/gen/grid/v1/agent.js';
import { AsyncQueue } from '../common/async-queue.js';
import { alreadyExists, ErrorReason, failedPrecondition, isTransientDatabaseError, reasoned, ServerError, Status } from '../common/errors.js';
import { acceptedVersions, compatibleVersion, GRID_VERSION } from '../common/version.js';
import type { Sql } from './db/connect.js';
import type { JobEventBus } from './job-events.js';
import { isCurrentAttempt, recordOutputFiles } from './job-store.js';
import type { JobTransitions, ReportOutcome } from './job-transitions.js';
import { parseReport, type Queued } from './report-validation.js';
import { outputsKey, type BlobStore } from './blob-store.js';
import { listFiles } from '../common/tar-archive.js';
import { identifyNode } from './node-identity.js';
import type { Transport } from './transport-security.js';
import type { ControlPlaneMetrics } from './metrics.js';
import type { NodeLiveness } from './node-liveness.js';
import type { NodeRegistry } from './node-registry.js';
import { NodeSession } from './node-session.js';
import type { NodeReconciler } from './node-reconciler.js';
import { recordNodesConnected, type NodeConnected } from './node-store.js';
import { unmarkFitFor } from './sql/note-waiting.js';
import { createGroupCommit } from './group-commit.js';
import { createSemaphore } from '../common/semaphore.js';
import { responseBatches, unbatchRequest } from '../common/message-batches.js';

export interface AgentServiceDeps {
  sql: Sql;
  registry: NodeRegistry;
  transitions: JobTransitions;
  events: JobEventBus;
  liveness: () => NodeLiveness;
  reconciler: NodeReconciler;
  log: Logger;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  blobs: BlobStore;
  /** Over TLS a stream speaks for the node its certificate names (see node-identity.ts). */
  transport: Transport['kind'];
  metrics?: ControlPlaneMetrics;
}

const MAX_RETRY_DELAY_MS = 2000;
/** Hellos being welcomed at once at most; the rest wait their turn. */
const WELCOMES_AT_ONCE = 256;
/** Reports of one stream taken into one group at most. */
const MAX_GROUP = 500;


export function createAgentService(deps: AgentServiceDeps): AgentServiceImplementation {
  // A reconnect storm (every agent of a restarted control plane at once) is
  // welcomed a few hundred at a time, its node rows written a group per
  // statement, so the streams already connected keep being heard.
  const welcoming = createSemaphore(WELCOMES_AT_ONCE);
  const connects = createGroupCommit<{ nodeId: string; hello: Hello }, NodeConnected | undefined>({
    maxItems: 1000,
    concurrency: 1,
    isolate: (err) => !isTransientDatabaseError(err),
    async run(items) {
      const recorded = await recordNodesConnected(deps.sql, items, deps.heartbeatTimeoutMs);
      // Before any of them is offered work: see unmarkFitFor. Its failure fails
      // no connect (they are recorded): a mark left lasts until the next note.
      await unmarkFitFor(
        deps.sql,
        items.filter((_, i) => recorded[i] !== undefined && !recorded[i]!.drain.draining).map((n) => ({ cpus: n.hello.capacity!.cpus, memoryBytes: Number(n.hello.capacity!.memoryBytes), labels: n.hello.labels })),
      ).catch((err) => deps.log.warn({ err }, 'cannot unmark the queued jobs the connecting nodes can hold; the next waiting note will'));
      return recorded;
    },
  });
  return {
    async *connect(requests: AsyncIterable<ConnectRequest>, ctx: CallContext): AsyncIterable<ConnectResponse> {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done || first.value.message?.$case !== 'hello') {
        throw failedPrecondition('the first message on AgentService.Connect must be hello');
      }
      const hello = first.value.message.value;
      const nodeId = identifyNode(hello, ctx, deps.transport);
      // Before anything of the node is recorded: a rolling upgrade mixes adjacent versions only (common/version.ts).
      if (!compatibleVersion(hello.agentVersion)) {
        throw reasoned(
          Status.FAILED_PRECONDITION,
          `agent version "${hello.agentVersion.slice(0, 64)}" does not work with this control plane (version ${GRID_VERSION}), ` +
            `which accepts agents of ${acceptedVersions()}: upgrade agents and control planes one minor version at a time`,
          ErrorReason.AGENT_VERSION_INCOMPATIBLE,
          { accepted: acceptedVersions() },
        );
      }
      const log = deps.log.child({ node: nodeId });
      const outbox = new AsyncQueue<ConnectResponse>();
      const session = new NodeSession(nodeId, hello.name || nodeId, hello.capacity!, hello.agentInstance, hello.agentVersion, (m) => outbox.push(m), () => outbox.end(), hello.labels);
      if (deps.registry.add(session)) log.info('the agent reconnected before its old stream ended; the new stream replaces it');
      try {
        const admitted = await welcoming.acquire();
        try {
          const recorded = await connects.add({ nodeId, hello });
          if (recorded === undefined) {
            throw alreadyExists(
              `node "${nodeId}" is already connected to another control plane; ` +
                'each agent needs its own --node-id (is a second agent running with the same one?)',
            );
          }
          session.opened(recorded.generation);
          session.setDrain(recorded.drain);
          session.setAgentDraining(hello.draining);
          deps.metrics?.streamsOpened.inc();
          await welcome(session, hello);
        } finally {
          admitted();
        }

        const queued = new AsyncQueue<Queued>();
        const read = (request: ConnectRequest) => {
          const m = request.message;
          if (m?.$case === 'jobImagePull') publishPullProgress(session, m.value);
          else if (m?.$case === 'heartbeat') {
            if (session.setAgentDraining(m.value.draining)) log.info({ node: nodeId, draining: m.value.draining }, 'agent says it is draining; it gets no new job');
            deps.reconciler.heartbeat(session, m.value.attempts);
          } else if (m?.$case === 'hello') throw failedPrecondition('hello may only be the first message of a stream');
          else if (m) {
            const report = parseReport(request);
            // A report Postgres could never take would come back on every
            // stream, ahead of all the node's other reports: refuse it alone.
            if (report.kind === 'invalid') {
              log.warn({ seq: String(report.seq), why: report.why }, 'refused a malformed report');
              session.sendAck(report.seq, false);
            } else queued.push(report);
          }
        };
        let streamOver = false;
        const over = () => streamOver || outbox.isEnded;
        const reading = (async () => {
          try {
            for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
              session.heard();
              const requests = unbatchRequest(next.value);
              if (!requests) throw failedPrecondition('a batch may not hold another batch');
              for (const request of requests) read(request);
            }
          } finally {
            streamOver = true;
            queued.end();
          }
        })();
        const handling = (async () => {
          for await (const head of queued) {
            // Once the stream is over, its unacked reports come again on the
            // agent's next stream; handling them here too could race that one.
            if (over()) break;
            if (head.kind === 'files') {
              await withRetry(session, over, log, () => storeOutputFiles(session, head));
              continue;
            }
            // Everything queued behind it, up to the next output files (stored apart, in order).
            const group: Queued[] = [head];
            while (queued.size > 0 && group.length < MAX_GROUP) {
              const [next] = queued.takeQueued(1);
              if (next!.kind === 'files') {
                await handleGroup(session, group, over, log);
                group.length = 0;
                await withRetry(session, over, log, () => storeOutputFiles(session, next as Queued & { kind: 'files' }));
                if (over()) break;
                continue;
              }
              group.push(next!);
            }
            if (group.length > 0 && !over()) await handleGroup(session, group, over, log);
          }
        })();
        Promise.all([reading, handling]).then(
          () => outbox.end(),
          (err) => {
            log.warn({ err }, 'agent stream failed');
            // A refusal the agent should see as the call's status (a protocol error), not a silent end.
            outbox.end(err instanceof ServerError ? err : undefined);
          },
        );
        // Not awaiting reading/handling after the outbox ends: once this returns the
        // call is over, and a client that never half-closes would otherwise hold it open.
        // What is queued for the agent goes out as one message, if it takes batches.
        yield* responseBatches(outbox, hello.acceptsBatches);
      } finally {
        deps.registry.remove(session);
        log.info('node stream ended');
        await deps.liveness().streamEnded(session);
      }
    },
  };

  /** Greets the node, then has its attempts reconciled before it is given work. */
  async function welcome(session: NodeSession, hello: Hello): Promise<void> {
    session.sendWelcome(deps.heartbeatIntervalMs, GRID_VERSION);
    await deps.reconciler.connected(session, hello.attempts);
  }

  async function handleGroup(session: NodeSession, group: Queued[], over: () => boolean, log: Logger): Promise<void> {
    const reports = group.map((q) => (q as Queued & { kind: 'report' }).report);
    const outcomes = await withRetry(session, over, log, () => deps.transitions.report(session, reports));
    group.forEach((q, i) => ack(session, q.seq, outcomes[i]!));
  }

  async function withRetry<T>(session: NodeSession, ended: () => boolean, log: Logger, attempt: () => Promise<T>): Promise<T> {
    for (let delay = 100; ; delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS)) {
      try {
        return await attempt();
      } catch (err) {
        if (!isTransientDatabaseError(err) || session.judged || ended()) throw err;
        log.warn({ err: (err as Error).message }, 'database unavailable or statement aborted; report will be retried');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Output files are blobs, stored apart from the grouped reports (their stream order is kept). */
  async function storeOutputFiles(session: NodeSession, q: Queued & { kind: 'files' }): Promise<void> {
    const { attempt, files } = q;
    if (!(await isCurrentAttempt(deps.sql, { ...attempt, nodeId: session.nodeId }))) {
      deps.log.warn({ node: session.nodeId, job_id: attempt.jobId, attempt: attempt.attempt, report: 'files' }, 'refused a report about an attempt that is not this node\'s current one (stale, or another node\'s)');
      session.sendCancel(attempt, 0, CancelCause.CANCEL_CAUSE_STALE);
      return ack(session, q.seq, 'stale');
    }
    await deps.blobs.putChunk(outputsKey(attempt.jobId, attempt.attempt), Number(files.offset), files.data);
    if (files.last) {
      const result = files.error ? { error: files.error } : { files: await listFiles(deps.blobs.read(outputsKey(attempt.jobId, attempt.attempt))) };
      await recordOutputFiles(deps.sql, attempt, result);
    }
    ack(session, q.seq, 'applied');
  }

  /**
   * Live news, not a report: published at once (ahead of the reports queued
   * behind Postgres) and fenced by what this session holds in memory, so that
   * progress costs no database round trip. News of a stale attempt, or from a
   * session already judged lost (its attempts may be queued again), is dropped.
   */
  function publishPullProgress(session: NodeSession, news: JobImagePull): void {
    const ref = news.attempt;
    if (!ref || !news.progress || session.judged || !session.holds(ref)) return;
    deps.events.publish(ref.jobId, { kind: 'pull', jobId: ref.jobId, progress: { ...news.progress, attempt: ref.attempt } });
  }

  function ack(session: NodeSession, seq: bigint, outcome: ReportOutcome): void {
    session.sendAck(seq, outcome !== 'stale');
  }
}
