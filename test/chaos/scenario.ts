// The fault test ("chaos"), one scenario with two front ends: a short run in the
// suite (test/e2e/faults.test.ts) and a long one (`npm run chaos`, main.ts).
// Jobs are submitted through two control plane replicas while agents are
// SIGKILLed (back within the reconnect grace or after it) and frozen with
// SIGSTOP, a control plane is SIGKILLed and restarted on its address, PostgreSQL
// goes through immediate restarts, and about a tenth of the jobs are cancelled
// through either replica. Then every job the clients were told about is judged
// from the database (checks.ts), and the agents must leave no container behind.
// The scenario reports what it found; it asserts nothing itself.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { ChannelCredentials } from '@grpc/grpc-js';
import { ClientError, createChannel, createClient, Status } from 'nice-grpc';
import postgres from 'postgres';
import { JobServiceDefinition, JobState } from '../../common/gen/grid/v1/job.js';
import { TokenServiceDefinition } from '../../common/gen/grid/v1/token.js';
import { CronServiceDefinition } from '../../common/gen/grid/v1/cron.js';
import { NodeServiceDefinition } from '../../common/gen/grid/v1/node.js';
import { reasonName, stateName } from '../../common/job-state.js';
import { formatDurationMs, msToDuration } from '../../common/units.js';
import { LABEL_ATTEMPT, LABEL_JOB_ID, LABEL_NODE_ID } from '../../agent/docker-driver.js';
import { commandSpec, sleep, waitForNodes, type Clients } from '../helpers/grid.js';
import { judge, type AttemptRecord, type CancelAnswer, type JobRecord, type Observed, type Told } from './checks.js';
import { startFleet, type AgentHandle, type Fleet, type Replica } from './fleet.js';

export interface FaultOptions {
  jobs: number;
  agents: number;
  replicas: 2;
  /** How long faults are injected; jobs are submitted during the first third of it. */
  chaosMs: number;
  log: (line: string) => void;
  /** Slots per agent (2). */
  slots?: number;
  /** Share of the jobs cancelled (0.1). */
  cancelShare?: number;
  /** Longest wait, once the faults stop, for every job to end (3 min, or half a second per job if that is more). */
  settleMs?: number;
  /** Stop waiting sooner when no unended job has changed for this long (30 s): they are stuck. */
  stallMs?: number;
}

export interface FaultSummary {
  settings: { jobs: number; agents: number; replicas: number; slots: number; chaosMs: number };
  submits: { accepted: number; retries: number; errors: Record<string, number>; unanswered: number; committedUnanswered: number };
  endReasons: Record<string, number>;
  attempts: { total: number; lost: number; jobsRunMoreThanOnce: number; most: number };
  faults: Record<string, number>;
  cancels: { sent: number; answers: Record<string, number>; unanswered: number; errors: Record<string, number> };
  /** Jobs not ended when the wait was over. */
  unended: number;
  containersLeft: { running: number; all: number };
  violations: string[];
  durationsMs: { setup: number; chaos: number; settle: number; cleanup: number; total: number };
  /** Stored jobs over the time from the first submit to the last end (Postgres clock). */
  jobsPerSecond: number;
}

// The control planes' short timers: faults are judged in seconds, not tens of them.
const RECONNECT_GRACE_MS = 2000;
const HEARTBEAT_TIMEOUT_MS = 3000;
const CONTROL_PLANE_ARGS = ['--reconnect-grace', '2s', '--heartbeat-timeout', '3s', '--dispatch-sweep', '2s'];
const JOB_SPEC = commandSpec(['sh', '-c', 'echo "$GRID_JOB_ID $GRID_ATTEMPT"; sleep 0.3'], { maxAttempts: 5 });
const CALL_TIMEOUT_MS = 10_000;
/** A submit or cancel still unanswered after this long is recorded as such. */
const GIVE_UP_MS = 60_000;
const CONTAINER_CLEANUP_MS = 20_000;
/** Longest an agent may take to be READY again after the last fault (its redial backoff is at most 10 s). */
const NODES_READY_MS = 15_000;

const between = (min: number, max: number) => Math.round(min + Math.random() * (max - min));
const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(Math.random() * items.length)];
const sleepUntil = (at: number) => sleep(Math.max(0, at - Date.now()));
const backoff = (tries: number) => Math.min(100 * 2 ** tries, 1000);

export async function runFaultScenario(options: FaultOptions): Promise<FaultSummary> {
  const began = Date.now();
  const log = (line: string) => options.log(`[${((Date.now() - began) / 1000).toFixed(1)}s] ${line}`);
  const settings = {
    jobs: options.jobs,
    agents: options.agents,
    replicas: options.replicas,
    slots: options.slots ?? 2,
    chaosMs: options.chaosMs,
  };
  const runId = `faults-${process.pid}-${randomBytes(3).toString('hex')}`;
  const fleet = await startFleet({ ...settings, nodePrefix: runId, controlPlaneArgs: CONTROL_PLANE_ARGS, log });
  const sql = postgres(fleet.pg.url, { max: 2, onnotice: () => {} });
  const apis = fleet.replicas.map((r) => connect(r.address));
  const ledger = new Ledger();
  const faults: Record<string, number> = {};
  const countFault = (kind: string) => (faults[kind] = (faults[kind] ?? 0) + 1);
  try {
    await waitForNodes(apis[0]!, fleet.agents.map((a) => a.nodeId), 30_000);
    const setupMs = Date.now() - began;
    log(`up: ${settings.replicas} control planes, ${settings.agents} agents × ${settings.slots} slots; faults for ${formatDurationMs(settings.chaosMs)}`);

    const chaosStart = Date.now();
    const chaosEnd = chaosStart + settings.chaosMs;
    await Promise.all([
      submitJobs(apis, ledger, runId, settings.jobs, settings.chaosMs / 3),
      cancelJobs(apis, ledger, Math.round(settings.jobs * (options.cancelShare ?? 0.1)), chaosStart, chaosEnd),
      ...agentFaultLanes(fleet, settings.agents).map((lane) => lane(chaosEnd, countFault, log)),
      infrastructureFaults(fleet, chaosEnd, countFault, log),
    ]);
    await fleet.revive();
    const chaosMs = Date.now() - chaosStart;
    log(`faults over: ${ledger.accepted.size} jobs accepted, ${ledger.unanswered.size} submits never answered, ${ledger.cancels.size} cancels`);

    const settleStart = Date.now();
    const settleCapMs = options.settleMs ?? Math.max(180_000, options.jobs * 500);
    const stuck = await waitForJobsToEnd(sql, fleet, settleCapMs, options.stallMs ?? 30_000, log);
    const settleMs = Date.now() - settleStart;
    // Judged as the wait left them: a job that ends only later did not end in time.
    const observed = await readOutcome(sql);
    const verdict = judge(observed, ledger.told(), (id) => stuck.has(id));
    const unended = observed.jobs.filter((j) => j.end_reason === null).length;
    const onTheirWay = observed.jobs.filter((j) => j.end_reason === null && !stuck.has(j.id));
    const cutShort =
      onTheirWay.length > 0
        ? [`the wait was cut short after ${formatDurationMs(settleCapMs)} with ${onTheirWay.length} jobs not ended (${describeStates(onTheirWay)}) ` +
            'but still on their way: this machine was too slow for the run, so they were not checked']
        : [];

    const cleanupStart = Date.now();
    const nodes = await checkNodes(sql, fleet, log);
    const containers = await checkContainers(fleet, unended, log);
    const cleanupMs = Date.now() - cleanupStart;
    const violations = [...fleet.unexpectedExits, ...cutShort, ...nodes, ...containers.violations, ...verdict.violations];
    log(violations.length === 0 ? 'no violations' : `${violations.length} violations`);
    return {
      settings,
      submits: { ...ledger.submitSummary(), committedUnanswered: verdict.committedUnanswered },
      endReasons: countBy(observed.jobs, (j) => j.end_reason ?? `not ended (${j.state})`),
      attempts: attemptSummary(observed),
      faults,
      cancels: ledger.cancelSummary(),
      unended,
      containersLeft: containers.left,
      violations,
      durationsMs: { setup: setupMs, chaos: chaosMs, settle: settleMs, cleanup: cleanupMs, total: Date.now() - began },
      jobsPerSecond: await throughput(sql),
    };
  } finally {
    for (const api of apis) api.close();
    await sql.end({ timeout: 1 });
    await fleet.stop();
  }
}

/** A client whose channel redials a restarted control plane within a second (grpc-js backs off up to 2 min). */
function connect(address: string): Clients {
  const channel = createChannel(address, ChannelCredentials.createInsecure(), {
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1000,
  });
  return {
    jobs: createClient(JobServiceDefinition, channel),
    nodes: createClient(NodeServiceDefinition, channel),
    tokens: createClient(TokenServiceDefinition, channel),
    crons: createClient(CronServiceDefinition, channel),
    close: () => channel.close(),
  };
}

function errorCode(err: unknown): string {
  if (err instanceof ClientError) return Status[err.code];
  return (err as Error).name === 'AbortError' ? 'CLIENT_TIMEOUT' : (err as Error).name;
}

function countBy<T>(items: Iterable<T>, key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

// ---------------------------------------------------------------------------
// What the clients were told: accepted jobs, unanswered submits, cancel answers.

class Ledger {
  readonly accepted = new Map<string, string>();
  /** Accepted job ids in the order they were answered. */
  readonly acceptedIds: string[] = [];
  readonly unanswered = new Set<string>();
  readonly submitErrors: Record<string, number> = {};
  submitRetries = 0;
  readonly cancels = new Map<string, CancelAnswer>();

  accept(requestId: string, jobId: string): void {
    this.accepted.set(requestId, jobId);
    this.acceptedIds.push(jobId);
  }

  submitFailed(code: string): void {
    this.submitErrors[code] = (this.submitErrors[code] ?? 0) + 1;
  }

  told(): Told {
    return { accepted: this.accepted, unanswered: this.unanswered, cancels: [...this.cancels.values()] };
  }

  submitSummary(): Omit<FaultSummary['submits'], 'committedUnanswered'> {
    return { accepted: this.accepted.size, retries: this.submitRetries, errors: this.submitErrors, unanswered: this.unanswered.size };
  }

  cancelSummary(): FaultSummary['cancels'] {
    const calls = [...this.cancels.values()];
    return {
      sent: calls.length,
      answers: countBy(calls.filter((c) => c.answer), (c) => c.answer!.state),
      unanswered: calls.filter((c) => !c.answer).length,
      errors: countBy(calls.flatMap((c) => c.errors), (e) => e),
    };
  }
}

/** Submits `count` jobs spread over `spreadMs`, alternating replicas; each retried with its request id until answered. */
async function submitJobs(apis: Clients[], ledger: Ledger, runId: string, count: number, spreadMs: number): Promise<void> {
  const start = Date.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    await sleepUntil(start + (i * spreadMs) / count);
    pending.push(submitOne(apis, ledger, i, `${runId}-${i}`));
  }
  await Promise.all(pending);
}

async function submitOne(apis: Clients[], ledger: Ledger, index: number, requestId: string): Promise<void> {
  const giveUpAt = Date.now() + GIVE_UP_MS;
  for (let tries = 0; ; tries++) {
    // A retry goes to the other replica: the first may be the one that was killed.
    const api = apis[(index + tries) % apis.length]!;
    try {
      const { job } = await api.jobs.submitJob({ spec: JOB_SPEC, requestId }, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
      ledger.accept(requestId, job!.id);
      return;
    } catch (err) {
      ledger.submitFailed(errorCode(err));
      if (Date.now() > giveUpAt) {
        ledger.unanswered.add(requestId);
        return;
      }
      ledger.submitRetries++;
      await sleep(backoff(tries));
    }
  }
}

/** `count` cancels spread over the fault window, each through a random replica. */
async function cancelJobs(apis: Clients[], ledger: Ledger, count: number, from: number, until: number): Promise<void> {
  const calls: Promise<void>[] = [];
  for (let k = 0; k < count; k++) {
    await sleepUntil(from + ((k + 0.5) * (until - from)) / count);
    const jobId = await cancelTarget(apis, ledger);
    if (jobId) calls.push(cancelOne(apis, ledger, jobId));
  }
  await Promise.all(calls);
}

/** A job on a node (the interesting case) half of the time, else a recent one (likely queued) or any. */
async function cancelTarget(apis: Clients[], ledger: Ledger): Promise<string | undefined> {
  const fresh = (id: string) => !ledger.cancels.has(id);
  const roll = Math.random();
  if (roll < 0.5) {
    const states = [JobState.JOB_STATE_ASSIGNED, JobState.JOB_STATE_RUNNING];
    const listed = await pick(apis)!
      .jobs.listJobs({ states, pageSize: 50, pageToken: '' }, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) })
      .catch(() => undefined);
    const known = new Set(ledger.acceptedIds);
    const running = listed?.jobs.map((j) => j.id).filter((id) => known.has(id) && fresh(id)) ?? [];
    if (running.length > 0) return pick(running);
  }
  const candidates = ledger.acceptedIds.filter(fresh);
  return pick(roll < 0.75 ? candidates.slice(-10) : candidates);
}

async function cancelOne(apis: Clients[], ledger: Ledger, jobId: string): Promise<void> {
  const via = Math.floor(Math.random() * apis.length);
  // 0 s kills at once; unset is the job's own stop grace (10 s).
  const graceMs = pick([0, 1000, undefined]);
  const grace = graceMs === undefined ? undefined : msToDuration(graceMs);
  const how = `through control plane ${via}, grace ${graceMs === undefined ? 'the job\'s' : formatDurationMs(graceMs)}`;
  const call: CancelAnswer = { jobId, errors: [], how };
  ledger.cancels.set(jobId, call);
  const giveUpAt = Date.now() + GIVE_UP_MS;
  for (let tries = 0; ; tries++) {
    const api = apis[(via + tries) % apis.length]!;
    try {
      const { job } = await api.jobs.cancelJob({ jobId, grace }, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
      call.answer = { state: stateName(job!.state), endReason: reasonName(job!.endReason) };
      return;
    } catch (err) {
      call.errors.push(errorCode(err));
      if (Date.now() > giveUpAt) return;
      await sleep(backoff(tries));
    }
  }
}

// ---------------------------------------------------------------------------
// Faults. Each lane injects one fault at a time and undoes it before the next,
// so when the lanes are done every process is up again. Lanes draw their faults
// from a shuffled deck, so a run gets every kind before it gets any twice.

type CountFault = (kind: string) => void;
type Log = (line: string) => void;
type Lane = (until: number, count: CountFault, log: Log) => Promise<void>;

/** Draws in a random order, every item once per round. */
function deck<T>(items: readonly T[]): () => T {
  let left: T[] = [];
  return () => {
    if (left.length === 0) left = [...items];
    // One random card of those left: a Fisher–Yates shuffle, drawn as it goes.
    const i = Math.floor(Math.random() * left.length);
    [left[i], left[left.length - 1]] = [left[left.length - 1]!, left[i]!];
    return left.pop()!;
  };
}

type AgentFault = (agent: AgentHandle, count: CountFault, log: Log) => Promise<void>;

/** Two agent lanes (one deck) when there are three agents or more: sometimes two agents are down at once. */
function agentFaultLanes(fleet: Fleet, agents: number): Lane[] {
  const next = deck<AgentFault>([
    (a, c, l) => killAgent(a, false, c, l),
    (a, c, l) => killAgent(a, false, c, l),
    (a, c, l) => killAgent(a, true, c, l),
    (a, c, l) => freezeAgent(a, between(1000, HEARTBEAT_TIMEOUT_MS - 300), c, l),
    (a, c, l) => freezeAgent(a, between(HEARTBEAT_TIMEOUT_MS + 300, 5000), c, l),
  ]);
  const lane: Lane = async (until, count, log) => {
    await sleep(between(500, 2000));
    while (Date.now() < until) {
      const agent = pick(fleet.agents.filter((a) => !a.busy && a.running));
      if (agent) await withBusy(agent, () => next()(agent, count, log));
      await sleep(between(300, 2000));
    }
  };
  return agents >= 3 ? [lane, lane] : [lane];
}

async function withBusy(target: AgentHandle | Replica, fault: () => Promise<void>): Promise<void> {
  target.busy = true;
  try {
    await fault();
  } finally {
    target.busy = false;
  }
}

/** SIGKILL, then a restart within the reconnect grace (its containers are taken up) or after it (its attempts are lost). */
async function killAgent(agent: AgentHandle, late: boolean, count: CountFault, log: Log): Promise<void> {
  const downMs = late ? RECONNECT_GRACE_MS + between(500, 2500) : between(100, 700);
  await agent.kill();
  log(`agent ${agent.nodeId} SIGKILL, restarting in ${downMs} ms`);
  await sleep(downMs);
  agent.start();
  count(late ? 'agent SIGKILL, back after the reconnect grace' : 'agent SIGKILL, back within the reconnect grace');
}

/** A hung host: shorter than the heartbeat timeout it is only late, longer it is lost. */
async function freezeAgent(agent: AgentHandle, frozenMs: number, count: CountFault, log: Log): Promise<void> {
  agent.freeze();
  log(`agent ${agent.nodeId} SIGSTOP for ${frozenMs} ms`);
  await sleep(frozenMs);
  agent.thaw();
  count(frozenMs > HEARTBEAT_TIMEOUT_MS ? 'agent SIGSTOP, longer than the heartbeat timeout' : 'agent SIGSTOP, shorter than the heartbeat timeout');
}

/** Control plane kills and PostgreSQL restarts, never both at once (a control plane cannot start without Postgres). */
async function infrastructureFaults(fleet: Fleet, until: number, count: CountFault, log: Log): Promise<void> {
  const next = deck([() => killReplica(pick(fleet.replicas)!, count, log), () => restartPostgres(fleet, count, log)]);
  await sleep(between(1000, 3000));
  while (Date.now() < until) {
    await fleet.revive();
    await next()();
    await sleep(between(2000, 5000));
  }
}

async function killReplica(replica: Replica, count: CountFault, log: Log): Promise<void> {
  await withBusy(replica, async () => {
    const downMs = between(200, 1500);
    await replica.kill();
    log(`${replica.name} SIGKILL, restarting on ${replica.address} in ${downMs} ms`);
    await sleep(downMs);
    await replica.start();
    count('control plane SIGKILL');
  });
}

async function restartPostgres(fleet: Fleet, count: CountFault, log: Log): Promise<void> {
  const downMs = between(300, 2500);
  log(`PostgreSQL immediate shutdown, down for ${downMs} ms`);
  await fleet.pg.immediateRestart(downMs);
  count('PostgreSQL immediate restart');
}

// ---------------------------------------------------------------------------
// After the faults.

/**
 * Waits until every job has ended, or none has moved for `stallMs`, or `settleMs`
 * is over. Returns the stuck ones: all unended jobs if nothing moved, else those
 * on a node (not queued: a queue drains in turn) that have not moved for `stallMs`.
 */
async function waitForJobsToEnd(sql: postgres.Sql, fleet: Fleet, settleMs: number, stallMs: number, log: Log): Promise<Set<string>> {
  const deadline = Date.now() + settleMs;
  // Each unended job's version and since when it has had it.
  let seen = new Map<string, { version: number; since: number }>();
  let movedAt = Date.now();
  let reportedAt = Date.now();
  for (;;) {
    await fleet.revive();
    const rows = await sql<{ id: string; state: string; version: number }[]>`
      SELECT id::text, state, version FROM jobs WHERE end_reason IS NULL`.catch(() => undefined);
    if (rows?.length === 0) return new Set();
    if (rows) {
      const now = Date.now();
      const next = new Map<string, { version: number; since: number }>();
      for (const r of rows) {
        const before = seen.get(r.id);
        next.set(r.id, before?.version === r.version ? before : { version: r.version, since: now });
      }
      if (rows.length !== seen.size || rows.some((r) => seen.get(r.id)?.version !== r.version)) movedAt = now;
      seen = next;
      if (now - movedAt > stallMs) {
        log(`${rows.length} jobs have not moved for ${formatDurationMs(stallMs)}: stuck`);
        return new Set(rows.map((r) => r.id));
      }
      if (now > deadline) {
        const stuck = rows.filter((r) => r.state !== 'QUEUED' && now - seen.get(r.id)!.since > stallMs).map((r) => r.id);
        log(`${rows.length} jobs still not ended after ${formatDurationMs(settleMs)}, ${stuck.length} of them stuck on a node`);
        return new Set(stuck);
      }
      if (now - reportedAt > 10_000) {
        reportedAt = now;
        log(`${rows.length} jobs not ended yet`);
      }
    }
    await sleep(500);
  }
}

/**
 * Once the faults are over every agent runs and both control planes are up, so
 * every node must come back READY. A node left LOST while its agent is connected
 * (seen: judged by one replica while the other held its live stream) keeps
 * being given work that is lost again, so it is a violation, not a detail.
 */
async function checkNodes(sql: postgres.Sql, fleet: Fleet, log: Log): Promise<string[]> {
  const ids = fleet.agents.map((a) => a.nodeId);
  const deadline = Date.now() + NODES_READY_MS;
  for (;;) {
    const rows = await sql<{ id: string; state: string }[]>`SELECT id, state FROM nodes WHERE id = ANY(${ids})`.catch(() => undefined);
    const stateOf = (id: string) => rows?.find((r) => r.id === id)?.state ?? 'missing';
    const notReady = ids.filter((id) => stateOf(id) !== 'READY');
    if (notReady.length === 0) return [];
    if (Date.now() > deadline) {
      log(`nodes not READY: ${notReady.join(', ')}`);
      return notReady.map((id) => {
        const agent = fleet.agents.find((a) => a.nodeId === id)!;
        return `node ${id} is ${stateOf(id)} in the database ${formatDurationMs(NODES_READY_MS)} after the faults, though its agent runs and its ${agent.replica.name} is up`;
      });
    }
    await sleep(250);
  }
}

/**
 * Gives the agents a moment to remove their containers, stops them, then looks:
 * nothing of the test's nodes may be running, and nothing may be left at all.
 */
async function checkContainers(fleet: Fleet, unended: number, log: Log): Promise<{ left: { running: number; all: number }; violations: string[] }> {
  const nodeIds = fleet.agents.map((a) => a.nodeId);
  const deadline = Date.now() + CONTAINER_CLEANUP_MS;
  while ((await containersOf(nodeIds)).length > 0 && Date.now() < deadline) await sleep(250);
  await fleet.stopAgents();
  const all = await containersOf(nodeIds);
  const running = all.filter((c) => c.running);
  // Agents stopped with jobs not ended may have been creating containers for them: say so.
  const why = unended > 0 ? ` (${unended} jobs had not ended, so their agents may still have been at work)` : '';
  const violations: string[] = [];
  if (running.length > 0) violations.push(`${running.length} containers of the test's nodes still run after their agents stopped${why}: ${describeContainers(running)}`);
  if (all.length > 0) violations.push(`${all.length} containers were not removed by their agents within ${formatDurationMs(CONTAINER_CLEANUP_MS)}${why}: ${describeContainers(all)}`);
  log(`containers left: ${running.length} running, ${all.length} in all`);
  return { left: { running: running.length, all: all.length }, violations };
}

interface ContainerInfo {
  id: string;
  running: boolean;
  status: string;
  job: string;
  attempt: string;
  node: string;
}

const execFileAsync = promisify(execFile);

/** Containers labelled with one of the node ids, in any state (one `docker ps` per node: label filters combine with AND). */
async function containersOf(nodeIds: string[]): Promise<ContainerInfo[]> {
  const format = `{{.ID}}\t{{.State}}\t{{.Status}}\t{{.Label "${LABEL_JOB_ID}"}}\t{{.Label "${LABEL_ATTEMPT}"}}\t{{.Label "${LABEL_NODE_ID}"}}`;
  const lists = await Promise.all(
    nodeIds.map(async (id) => (await execFileAsync('docker', ['ps', '-a', '--filter', `label=${LABEL_NODE_ID}=${id}`, '--format', format])).stdout),
  );
  return lists
    .flatMap((out) => out.split('\n').filter(Boolean))
    .map((line) => {
      const [id, state, status, job, attempt, node] = line.split('\t') as [string, string, string, string, string, string];
      return { id, running: state === 'running' || state === 'paused', status, job, attempt, node };
    });
}

function describeContainers(list: ContainerInfo[]): string {
  return list.map((c) => `${c.id} (job ${c.job} attempt ${c.attempt} on ${c.node}: ${c.status})`).join('; ');
}

async function readOutcome(sql: postgres.Sql): Promise<Observed> {
  const jobs = await sql<JobRecord[]>`
    SELECT id::text, request_id, state, end_reason, attempt, max_attempts, withdrawn_attempts, node_id, exit_code, message FROM jobs`;
  const attempts = await sql<AttemptRecord[]>`SELECT job_id::text, attempt, outcome FROM job_attempts`;
  const outputs = await sql<{ id: string; out: Buffer }[]>`
    SELECT j.id::text, string_agg(l.data, ''::bytea ORDER BY l.byte_offset) AS out
    FROM jobs j JOIN job_logs l ON l.job_id = j.id AND l.attempt = j.attempt AND l.stream = 1
    WHERE j.state = 'SUCCEEDED' GROUP BY j.id`;
  return { jobs: [...jobs], attempts: [...attempts], stdout: new Map(outputs.map((o) => [o.id, o.out.toString('utf8')])) };
}

function describeStates(jobs: JobRecord[]): string {
  return Object.entries(countBy(jobs, (j) => j.state)).map(([state, n]) => `${n} ${state}`).join(', ');
}

function attemptSummary(observed: Observed): FaultSummary['attempts'] {
  return {
    total: observed.attempts.length,
    lost: observed.attempts.filter((a) => a.outcome === 'NODE_LOST').length,
    jobsRunMoreThanOnce: observed.jobs.filter((j) => j.attempt > 1).length,
    most: Math.max(0, ...observed.jobs.map((j) => j.attempt)),
  };
}

async function throughput(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ n: number; seconds: number | null }[]>`
    SELECT count(*)::int AS n, extract(epoch FROM max(ended_at) - min(submitted_at))::float8 AS seconds FROM jobs`;
  return row && row.seconds ? Math.round((row.n / row.seconds) * 10) / 10 : 0;
}

// ---------------------------------------------------------------------------

const MAX_VIOLATIONS_SHOWN = 40;

/** The summary as Markdown, for a test's log and for `npm run chaos`. */
export function describeSummary(s: FaultSummary): string {
  const counts = (c: Record<string, number>) =>
    Object.entries(c).sort(([, a], [, b]) => b - a).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const d = s.durationsMs;
  const lines = [
    `## Fault run: ${s.settings.jobs} jobs, ${s.settings.agents} agents × ${s.settings.slots} slots, ${s.settings.replicas} control planes, ${formatDurationMs(s.settings.chaosMs)} of faults`,
    '',
    `- result: ${s.violations.length === 0 ? 'no violations' : `**${s.violations.length} violations**`}`,
    `- submits: ${s.submits.accepted} accepted; ${s.submits.retries} retries (errors: ${counts(s.submits.errors)}); ` +
      `${s.submits.unanswered} never answered, ${s.submits.committedUnanswered} of those stored anyway`,
    `- ended: ${counts(s.endReasons)}`,
    `- attempts: ${s.attempts.total} in all, ${s.attempts.lost} of them lost with their node; ` +
      `${s.attempts.jobsRunMoreThanOnce} jobs ran more than once, one up to ${s.attempts.most} times`,
    `- faults: ${counts(s.faults)}`,
    `- cancels: ${s.cancels.sent} sent; answered ${counts(s.cancels.answers)}; ${s.cancels.unanswered} unanswered (errors on the way: ${counts(s.cancels.errors)})`,
    `- containers left: ${s.containersLeft.running} running, ${s.containersLeft.all} in all`,
    `- time: setup ${formatDurationMs(d.setup)}, faults ${formatDurationMs(d.chaos)}, settling ${formatDurationMs(d.settle)}, ` +
      `cleanup ${formatDurationMs(d.cleanup)}, total ${formatDurationMs(d.total)}; ${s.jobsPerSecond} jobs/s (first submit → last end)`,
  ];
  if (s.violations.length > 0) {
    const shown = s.violations.slice(0, MAX_VIOLATIONS_SHOWN).map((v) => `- ${v}`);
    const more = s.violations.length - shown.length;
    lines.push('', '### Violations', '', ...shown, ...(more > 0 ? [`- … and ${more} more (all of them are in the JSON)`] : []));
  }
  return lines.join('\n');
}
