// The agent: holds one Connect stream to the control plane, redials it with
// capped exponential backoff and jitter, and hands each assignment to its own
// task runner. Running tasks do not depend on the stream: their reports wait in
// the outbox until a stream acknowledges them. On start it takes up the
// containers an earlier agent of this node left, before it says hello. A drain
// (SIGTERM) stops it taking work, lets what runs end up to a deadline, hands
// the rest back and then closes.
import { channelCredentials, type ClientTls } from '../common/client-credentials.js';
import { ClientError, createChannel, createClient, Status, type Channel } from 'nice-grpc';
import type { Logger } from 'pino';
import {
  AgentServiceDefinition,
  CancelCause,
  type Capacity,
  type ConnectRequest,
  type ConnectResponse,
} from '../common/gen/grid/v1/agent.js';
import { AsyncQueue } from '../common/async-queue.js';
import { CLIENT_OPTIONS } from '../common/grpc-options.js';
import { durationToMs } from '../common/units.js';
import { GRID_VERSION, handsBack } from '../common/version.js';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { attemptKeyOf } from '../common/attempt.js';
import { requestBatches, unbatchResponse } from '../common/message-batches.js';
import { openHandBackLedger } from './hand-back-ledger.js';
import { ReportOutbox, type News } from './report-outbox.js';
import type { RuntimeDriver } from './runtime-driver.js';
import type { AgentMetrics } from './metrics.js';
import { startTaskRunner, type TaskRunner, type TaskSource } from './task-runner.js';

export interface AgentOptions {
  /**
   * Control-plane replicas, host:port each: the agent starts at one picked at
   * random and moves to the next whenever its stream fails or ends. (One DNS
   * name with several addresses works too: gRPC tries each in turn.)
   */
  servers: string[];
  /** TLS to the control plane; plaintext without it (see common/client-credentials.ts). */
  tls?: ClientTls;
  nodeId: string;
  name: string;
  capacity: Capacity;
  labels: Record<string, string>;
  driver: RuntimeDriver;
  log: Logger;
  heartbeatIntervalMs: number;
  flushIntervalMs: number;
  maxChunkBytes: number;
  timeoutGraceMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Holds the spill file of reports waiting for the control plane. */
  stateDir: string;
  /** Reports held in memory before output spills to disk. */
  outboxMemoryBytes: number;
  /** Least time between two pull progress messages of one attempt. */
  pullProgressIntervalMs: number;
  /** How long a report waits for others to share its message batch (see ReportOutbox). */
  reportWindowMs: number;  /** Counters for Prometheus (metrics.ts); none: not counted. */
  metrics?: AgentMetrics;
}

export interface Agent {
  readonly nodeId: string;
  /** Resolves the next time the control plane welcomes this agent. */
  connected(): Promise<void>;
  /**
   * Closes the stream. Running containers keep running: the next agent of this
   * node takes them up again.
   */
  stop(): Promise<void>;
  /**
   * Takes no new work (and says so to the control plane), lets running jobs
   * end for up to `deadlineMs`, then stops the rest and hands them back; then
   * waits, up to their longest stop grace plus `settleMs`, for the control
   * plane to have every report, and
   * stops. Resolves with the attempts still unreported then (0: a clean drain).
   */
  drain(deadlineMs: number, settleMs: number): Promise<number>;
}

const MAX_ENDED_REMEMBERED = 10_000;

export function startAgent(options: AgentOptions): Agent {
  // Names this process on every stream it opens: a reconnect after a broken
  // connection replaces its old stream instead of being refused as a second agent.
  const agentInstance = randomUUID();
  const log = options.log.child({ node: options.nodeId });
  if (options.servers.length === 0) throw new Error('the agent needs a control plane address');
  // One channel per replica, made when first dialled.
  const channels = new Map<string, Channel>();
  function clientFor(server: string) {
    let channel = channels.get(server);
    if (!channel) channels.set(server, (channel = createChannel(server, channelCredentials(options.tls), CLIENT_OPTIONS)));
    return createClient(AgentServiceDefinition, channel);
  }
  // A fleet's agents spread over the replicas from the start.
  let nextServer = Math.floor(Math.random() * options.servers.length);
  const runners = new Map<string, TaskRunner>();
  // Attempts run to the end by this process, newest last: the control plane may
  // send an assignment again (its reconciliation saw it missing from a heartbeat
  // that raced its end), and an attempt must never run twice.
  const ended = new Set<string>();
  const reports = new ReportOutbox({
    memoryLimitBytes: options.outboxMemoryBytes,
    spillFile: join(options.stateDir, 'outbox.spill'),
    windowMs: options.reportWindowMs,
  });
  const handBacks = openHandBackLedger(join(options.stateDir, 'hand-backs.json'));
  const abort = new AbortController();
  /** Set by drain(): no new work; an assignment that comes anyway is handed back unstarted. */
  let draining = false;
  let heartbeatMs = options.heartbeatIntervalMs;
  let welcomed = deferred();
  let startHeartbeats: (() => void) | undefined;
  let stream: AsyncQueue<ConnectRequest> | undefined;
  /** Whether this stream's control plane takes batched messages (its welcome says). */
  let peerTakesBatches = false;
  /** Whether the last control plane that welcomed this agent knows hand-backs (common/version.ts). */
  let peerHandsBack = true;

  const runnerDeps = {
    driver: options.driver,
    nodeId: options.nodeId,
    report: (r: Parameters<ReportOutbox['send']>[0]) => reports.send(r),
    notify: (news: News) => stream?.push({ seq: 0n, message: news }),
    pullProgressIntervalMs: options.pullProgressIntervalMs,
    log,
    flushIntervalMs: options.flushIntervalMs,
    maxChunkBytes: options.maxChunkBytes,
    timeoutGraceMs: options.timeoutGraceMs,
    handBacks,
    metrics: options.metrics,
  };
  options.metrics?.watch({ containers: () => runners.size, outbox: () => reports.pending });

  /** Attempts this agent holds: running, or with a report not yet acknowledged. */
  function attempts() {
    const held = new Map([...runners.values()].map((r) => [attemptKeyOf(r.ref), r.ref]));
    for (const key of reports.pendingAttempts()) {
      const [jobId, attempt] = key.split('/');
      if (!held.has(key)) held.set(key, { jobId: jobId!, attempt: Number(attempt) });
    }
    return [...held.values()];
  }

  function run(ref: { jobId: string; attempt: number }, source: TaskSource): void {
    const runner = startTaskRunner(runnerDeps, ref, source);
    runners.set(ref.jobId, runner);
    runner.done
      .catch((err) => log.error({ err, job_id: ref.jobId }, 'task runner failed'))
      .finally(() => {
        if (runners.get(ref.jobId) === runner) runners.delete(ref.jobId);
        rememberEnded(ref);
      });
  }

  function rememberEnded(ref: { jobId: string; attempt: number }): void {
    ended.add(attemptKeyOf(ref));
    if (ended.size > MAX_ENDED_REMEMBERED) ended.delete(ended.values().next().value!);
  }

  /** An assignment that reached a draining node: given back as it came, never started. */
  function handBackUnstarted(ref: { jobId: string; attempt: number }): void {
    log.info({ job_id: ref.jobId, attempt: ref.attempt }, 'handing back an assignment: this node is draining');
    rememberEnded(ref);
    void reports.send({
      $case: 'jobFinished',
      value: {
        attempt: ref, reason: 0, message: 'handed back unstarted: the node is draining', handedBack: true,
        exitCode: undefined, startedAt: undefined, finishedAt: new Date(), stdoutBytes: 0n, stderrBytes: 0n,
      },
    });
  }

  /** Sends a heartbeat now (on the current stream, if any). */
  function heartbeatNow(): void {
    stream?.push({ seq: 0n, message: { $case: 'heartbeat', value: { attempts: attempts(), freeSlots: options.capacity.slots - runners.size, draining } } });
  }

  /** Containers of this node from before a restart: take up the started ones. */
  async function adoptExisting(): Promise<void> {
    for (const found of await options.driver.list(options.nodeId)) {
      if (found.state === 'created') {
        // Never started: the control plane sends the assignment again.
        await options.driver.remove(found);
        continue;
      }
      log.info({ job_id: found.labels.jobId, attempt: found.labels.attempt, state: found.state }, 'taking up container');
      run({ jobId: found.labels.jobId, attempt: found.labels.attempt }, { kind: 'found', found });
    }
  }

  function handle(response: ConnectResponse): void {
    const m = response.message;
    if (!m) return;
    switch (m.$case) {
      case 'welcome':
        heartbeatMs = durationToMs(m.value.heartbeatInterval) || heartbeatMs;
        peerTakesBatches = m.value.acceptsBatches;
        peerHandsBack = handsBack(m.value.serverVersion);
        log.info({ server: connectedTo, server_version: m.value.serverVersion }, 'connected to control plane');
        welcomed.resolve();
        startHeartbeats?.();
        return;
      case 'ack':
        reports.ack(m.value.seq);
        return;
      case 'assignment': {
        const ref = m.value.attempt!;
        const existing = runners.get(ref.jobId);
        if (existing && existing.ref.attempt >= ref.attempt) return; // a resent assignment
        if (ended.has(attemptKeyOf(ref))) return; // resent after it ended here
        existing?.cancel(0, CancelCause.CANCEL_CAUSE_STALE);
        if (draining && peerHandsBack) handBackUnstarted(ref);
        else run(ref, { kind: 'new', task: m.value.task! });
        return;
      }
      case 'cancel': {
        const ref = m.value.attempt!;
        const runner = runners.get(ref.jobId);
        if (runner && runner.ref.attempt === ref.attempt) runner.cancel(durationToMs(m.value.grace), m.value.cause);
        return;
      }
    }
  }

  /** The replica of the current stream. */
  let connectedTo = '';

  async function session(server: string): Promise<void> {
    connectedTo = server;
    const outgoing = new AsyncQueue<ConnectRequest>();
    outgoing.push({
      seq: 0n,
      message: {
        $case: 'hello',
        value: {
          nodeId: options.nodeId,
          name: options.name,
          capacity: options.capacity,
          labels: options.labels,
          agentVersion: GRID_VERSION,
          attempts: attempts(),
          agentInstance,
          acceptsBatches: true,
          draining,
        },
      },
    });
    reports.attach(outgoing);
    stream = outgoing;
    let heartbeat: NodeJS.Timeout | undefined;
    // Heartbeats start on welcome, at the interval the control plane asks for.
    startHeartbeats = () => {
      clearInterval(heartbeat);
      heartbeat = setInterval(heartbeatNow, heartbeatMs);
    };
    try {
      // Reports go out several to a message once the welcome says the control plane takes that.
      for await (const response of clientFor(server).connect(requestBatches(outgoing, () => peerTakesBatches), { signal: abort.signal })) {
        const messages = unbatchResponse(response);
        // Not something a control plane sends: end this stream (the next one starts clean).
        if (!messages) throw new Error('the control plane sent a batch inside a batch');
        messages.forEach(handle);
      }
    } finally {
      peerTakesBatches = false;
      clearInterval(heartbeat);
      startHeartbeats = undefined;
      stream = undefined;
      reports.detach();
      outgoing.end();
      if (welcomed.settled) welcomed = deferred();
    }
  }

  const loop = (async () => {
    try {
      await adoptExisting();
    } catch (err) {
      log.error({ err }, 'cannot list the containers of this node');
    }
    let delay = options.reconnectMinMs;
    while (!abort.signal.aborted) {
      const started = Date.now();
      const server = options.servers[nextServer]!;
      // Whatever becomes of this stream, the next one goes to the next replica.
      nextServer = (nextServer + 1) % options.servers.length;
      try {
        await session(server);
        log.warn({ server }, 'control plane closed the stream');
      } catch (err) {
        if (abort.signal.aborted) break;
        if (err instanceof ClientError && err.code === Status.ALREADY_EXISTS) log.error(err.details);
        else log.warn({ server, err: err instanceof ClientError ? err.details : err }, 'cannot reach control plane');
      }
      if (abort.signal.aborted) break;
      // A stream that lived a while resets the backoff: this is a new outage.
      if (Date.now() - started > options.reconnectMaxMs) delay = options.reconnectMinMs;
      const wait = delay / 2 + Math.random() * (delay / 2);
      delay = Math.min(delay * 2, options.reconnectMaxMs);
      // An abort ends the wait early; the loop then sees it and stops.
      await sleep(wait, undefined, { signal: abort.signal }).catch(() => undefined);
    }
  })();

  async function stop(): Promise<void> {
    abort.abort();
    await loop;
    for (const channel of channels.values()) channel.close();
  }

  return {
    nodeId: options.nodeId,
    connected: () => welcomed.promise,
    stop,
    async drain(deadlineMs, settleMs) {
      draining = true;
      heartbeatNow();
      const ends = () => Promise.all([...runners.values()].map((r) => r.done.catch(() => undefined)));
      log.info({ running: runners.size, deadline_ms: deadlineMs }, 'draining: taking no new job; running ones may end until the deadline');
      const endedInTime = await within(ends(), deadlineMs);
      if (!endedInTime && !peerHandsBack) {
        // It would refuse a hand-back report: leave the jobs to the next agent of this node, as a restart does.
        log.warn({ running: runners.size }, 'drain deadline passed, but the control plane is too old to take jobs back; leaving them running for the next agent');
        await stop();
        return attempts().length;
      }
      // Stopped jobs get their own stop grace on top of the settle time.
      let graceMs = 0;
      if (!endedInTime) {
        log.info({ running: runners.size }, 'drain deadline passed: stopping the jobs still running and handing them back');
        for (const runner of runners.values()) {
          graceMs = Math.max(graceMs, runner.stopGraceMs);
          runner.cancel(0, CancelCause.CANCEL_CAUSE_HANDED_BACK);
        }
      }
      // Every runner ends once its report is acknowledged; reports of attempts already over too.
      const settled = await within(Promise.all([ends(), reports.drained()]), graceMs + settleMs);
      const left = settled ? 0 : attempts().length;
      if (left > 0) log.warn({ attempts: left }, 'stopping with reports the control plane does not have yet; the next agent process sends them');
      await stop();
      return left;
    },
  };
}

/** Whether `done` settled within `ms`. */
async function within(done: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([done.then(() => true as const), expired]);
  } finally {
    clearTimeout(timer);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void; settled: boolean } {
  let settle!: () => void;
  const d = { promise: new Promise<void>((r) => (settle = r)), settled: false, resolve: () => {} };
  d.resolve = () => {
    d.settled = true;
    settle();
  };
  return d;
}
