// The scale scenario of issue 11: how many SIMULATED idle agents one control
// plane at its defaults holds, how it takes a reconnect storm, and what the
// heartbeat interval costs against how fast a silent agent is found LOST.
//
// 1. Idle: N agents (20,000) connected and heartbeating at the default interval,
//    no jobs, for a minute: control-plane CPU and RSS from /proc, false LOST
//    verdicts (from its "node lost" log lines and NodeService.ListNodes), and
//    streams the agents saw dropped.
// 2. Reconnect storm: 10,000 agents connected, the control plane SIGKILLed and
//    started again on the same port and database; every agent reconnects at once.
// 3. Heartbeat curve at 10,000 agents: for each interval (timeout 3× it), the
//    control plane's CPU, then ~20 agents go silent (heartbeats stopped, streams
//    left open: a hung host) and the time from each one's last heartbeat to its
//    node row saying LOST (the row NodeService reports) is measured.
//
// Each part gets a fresh database and control plane. The agents are multiplexed
// (a hundred streams per HTTP/2 connection by default, bench/scale-fleet.ts):
// one connection per agent would need 20,000 file descriptors in the control
// plane alone, which is this machine's hard limit (ulimit -Hn).
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChannelCredentials } from '@grpc/grpc-js';
import { createChannel, createClient, type Client } from 'nice-grpc';
import { NodeServiceDefinition, NodeState } from '../common/gen/grid/v1/node.js';
import { CLIENT_OPTIONS } from '../common/grpc-options.js';
import { createTestDatabase, type TestDatabase } from '../test/helpers/postgres.js';
import { listAllNodes } from '../test/helpers/grid.js';
import { startControlPlaneAtDefaults, type BenchControlPlane } from './control-plane-at-defaults.js';
import { postgresCpuMs, processCpuMs } from './process-cpu.js';
import { failed, measured, ms, type Figure, type Section } from './report.js';
import { startScaleFleet, type FleetTotals, type ScaleFleet } from './scale-fleet.js';
import { summarize } from './stats.js';
import { TARGETS, verdict } from './targets.js';

export interface ScaleOptions {
  idleAgents: number;
  /** How long the idle fleet is measured once all are connected. */
  idleSeconds: number;
  stormAgents: number;
  /** How long after the storm nodes are watched for a false LOST (past the 10 s reconnect grace). */
  stormWatchSeconds: number;
  curveAgents: number;
  curveIntervalsMs: number[];
  curveCpuSeconds: number;
  silentAgents: number;
  /** Fleet processes, streams per HTTP/2 connection, hellos per second while connecting. */
  processes: number;
  agentsPerConnection: number;
  connectPerSecond: number;
  /**
   * Hellos per second while the idle fleet connects: slower, since what is
   * measured there is the steady state, not a connect storm (part 2 is one).
   */
  idleConnectPerSecond: number;
}

export const FULL: ScaleOptions = {
  idleAgents: 20_000,
  idleSeconds: 60,
  stormAgents: 10_000,
  stormWatchSeconds: 15,
  curveAgents: 10_000,
  curveIntervalsMs: [1000, 2000, 5000],
  curveCpuSeconds: 30,
  silentAgents: 20,
  processes: 4,
  agentsPerConnection: 100,
  connectPerSecond: 2000,
  idleConnectPerSecond: 500,
};

export const SMOKE: ScaleOptions = {
  idleAgents: 200,
  idleSeconds: 2,
  stormAgents: 200,
  stormWatchSeconds: 1,
  curveAgents: 200,
  curveIntervalsMs: [500],
  curveCpuSeconds: 1,
  silentAgents: 5,
  processes: 2,
  agentsPerConnection: 50,
  connectPerSecond: 2000,
  idleConnectPerSecond: 2000,
};

const log = (line: string) => process.stderr.write(`bench: scale: ${line}\n`);
const n = (x: number) => Math.round(x).toLocaleString('en-US');
const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;
const core = (fraction: number) => `${fraction.toFixed(2)} core`;
const seconds = (msValue: number) => `${(msValue / 1000).toFixed(2)} s`;
const reasons = (why: Record<string, number>) =>
  Object.entries(why)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([k, v]) => `${n(v)}× "${k}"`)
    .join(', ') || 'none';

// --- the control plane from outside: /proc and its log ---------------------

interface Sample {
  at: number;
  cpuMs: number;
  rssBytes: number;
  fleetCpuMs: number;
  postgresMs: number;
}

function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** /proc read every 250 ms: the control plane's CPU and RSS, the fleet's and Postgres's CPU. */
function startSampler(pid: () => number, fleet: ScaleFleet) {
  const samples: Sample[] = [];
  const take = () =>
    samples.push({ at: performance.now(), cpuMs: processCpuMs(pid()), rssBytes: rssBytes(pid()), fleetCpuMs: fleet.cpuMs(), postgresMs: postgresCpuMs() });
  take();
  const timer = setInterval(take, 250);
  return {
    samples,
    mark: () => samples.length,
    /** Mean CPU (cores) of the control plane, fleet and Postgres from sample `from` to now, and the control plane's busiest second. */
    since(from: number) {
      take();
      const s = samples.slice(from);
      const first = s[0]!;
      const last = s[s.length - 1]!;
      const wall = last.at - first.at;
      let peak = 0;
      for (let i = 0, j = 0; i < s.length; i++) {
        while (j < s.length && s[j]!.at - s[i]!.at < 1000) j++;
        if (j === s.length) break;
        // A pid change (restart) makes the difference meaningless: skip it.
        const d = s[j]!.cpuMs - s[i]!.cpuMs;
        if (d >= 0) peak = Math.max(peak, d / (s[j]!.at - s[i]!.at));
      }
      return {
        wallMs: wall,
        cpu: (last.cpuMs - first.cpuMs) / wall,
        peakCpu: peak,
        fleetCpu: (last.fleetCpuMs - first.fleetCpuMs) / wall,
        postgresCpu: (last.postgresMs - first.postgresMs) / wall,
        rssMax: Math.max(...s.map((x) => x.rssBytes)),
        rssEnd: last.rssBytes,
      };
    },
    stop: () => clearInterval(timer),
  };
}

interface LogReading {
  /** "node lost" verdicts: node, when (ms since epoch), why. */
  lost: { node: string; time: number; why: string }[];
  stalls: number[];
  /** Warnings and errors by message, "node lost" and stalls included. */
  warnings: Map<string, number>;
}

function readLog(file: string): LogReading {
  const r: LogReading = { lost: [], stalls: [], warnings: new Map() };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    let e: { level?: number; msg?: string; node?: string; time?: number; why?: string; stalled_ms?: number };
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    if ((e.level ?? 0) >= 40) r.warnings.set(e.msg ?? '?', (r.warnings.get(e.msg ?? '?') ?? 0) + 1);
    if (e.msg === 'node lost') r.lost.push({ node: e.node!, time: e.time!, why: e.why ?? '' });
    if (e.stalled_ms !== undefined) r.stalls.push(e.stalled_ms);
  }
  return r;
}

const describeWarnings = (w: Map<string, number>) =>
  [...w].sort((a, b) => b[1] - a[1]).map(([m, c]) => `${n(c)}× "${m}"`).join(', ') || 'none';

// --- a stage: database, control plane, fleet --------------------------------

interface Stage {
  db: TestDatabase;
  cp: BenchControlPlane;
  /** Every control plane of the stage (a restart adds one), for their logs. */
  cps: BenchControlPlane[];
  fleet: ScaleFleet;
  api: NodeApi;
  connectedMs: number;
  stopped?: boolean;
}

interface NodeApi {
  nodes: Client<typeof NodeServiceDefinition>;
  close(): void;
}

/**
 * NodeService with Grid's own message limit (32 MiB): ListNodes of 20,000
 * nodes is about 5 MiB, past grpc-js's default 4 MiB that test/helpers' client keeps.
 */
function nodeApi(address: string): NodeApi {
  const channel = createChannel(address, ChannelCredentials.createInsecure(), CLIENT_OPTIONS);
  return { nodes: createClient(NodeServiceDefinition, channel), close: () => channel.close() };
}

async function readyCount(db: TestDatabase, since?: Date): Promise<number> {
  const [row] = since
    ? await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM nodes WHERE state = 'READY' AND connected_at >= ${since}`
    : await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM nodes WHERE state = 'READY'`;
  return row!.n;
}

function fleetState(t: FleetTotals): string {
  return `${n(t.open)} streams open; dropped ${n(t.dropped)} (${reasons(t.droppedWhy)}); failed attempts ${n(t.failedAttempts)} (${reasons(t.failedWhy)})`;
}

/**
 * Waits until every agent is welcomed and its node READY; throws with what was
 * reached (and why the rest did not) after the timeout.
 */
async function waitConnected(s: Pick<Stage, 'db' | 'fleet' | 'cp'>, agents: number, timeoutMs: number, since?: Date): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = s.fleet.totals();
    const ready = t.open >= agents ? await readyCount(s.db, since) : 0;
    if (t.open >= agents && ready >= agents) return;
    if (Date.now() > deadline || s.fleet.crashed.length > 0) {
      const stalls = readLog(s.cp.logFile).stalls;
      throw new Error(
        `only ${n(t.open)} of ${n(agents)} agents connected before the ${n(timeoutMs / 1000)} s timeout ` +
          `(${n(await readyCount(s.db, since))} READY in the nodes table; ${fleetState(t)}` +
          `${s.fleet.crashed.length > 0 ? `; ${s.fleet.crashed.join('; ')}` : ''}` +
          `${stalls.length > 0 ? `; control plane stalled ${stalls.length}× (worst ${n(Math.max(...stalls))} ms)` : ''})`,
      );
    }
    await sleep(250);
  }
}

/** A stage that could not get all its agents connected: why, and what its control plane logged. */
class StageFailed extends Error {
  constructor(
    message: string,
    readonly logNote: string,
  ) {
    super(message);
  }
}

async function startStage(o: ScaleOptions, agents: number, prefix: string, args: string[] = [], connectPerSecond = o.connectPerSecond): Promise<Stage> {
  const db = await createTestDatabase();
  let cp: BenchControlPlane | undefined;
  let fleet: ScaleFleet | undefined;
  try {
    cp = await startControlPlaneAtDefaults(db.url, { args });
    const started = performance.now();
    fleet = await startScaleFleet({
      address: cp.address,
      agents,
      prefix,
      processes: o.processes,
      agentsPerConnection: o.agentsPerConnection,
      connectPerSecond,
    });
    const stage: Stage = { db, cp, cps: [cp], fleet, api: nodeApi(cp.address), connectedMs: 0 };
    fleet = undefined; // the stage owns it now
    try {
      await waitConnected(stage, agents, (agents / connectPerSecond) * 1000 + 60_000);
    } catch (err) {
      // Read the log once the fleet has stopped: what followed the failure is in it too.
      await stopStage(stage);
      throw new StageFailed((err as Error).message, warningsNote(`${n(agents)} agents connecting`, stage.cps));
    }
    stage.connectedMs = performance.now() - started;
    return stage;
  } catch (err) {
    if (!(err instanceof StageFailed)) {
      await fleet?.stop();
      await cp?.stop();
      await db.drop();
    }
    throw err;
  }
}

async function stopStage(s: Stage): Promise<void> {
  if (s.stopped) return;
  s.stopped = true;
  await s.fleet.stop();
  s.api.close();
  await s.cp.stop();
  await s.db.drop();
}

/** A stage that did not start: every figure of it FAILED, the first with the reason, and its log noted. */
function stageFailed(what: string, err: unknown, names: string[], targets: Record<string, string>, figures: Figure[], notes: string[]): void {
  const reason = (err as Error).message;
  log(`${what}: FAILED: ${reason}`);
  names.forEach((f, i) => figures.push(failed(`${what}: ${f}`, i === 0 ? reason : `see "${names[0]}" above`, targets[f] ?? '—')));
  if (err instanceof StageFailed) notes.push(err.logNote);
}

/**
 * Nodes judged LOST although their agent kept heartbeating: the control plane's
 * "node lost" lines plus what NodeService.ListNodes says now, silenced agents
 * left out. Also the nodes not READY (disconnected) at the end.
 */
async function falseLost(s: Stage, silenced: Set<string> = new Set()) {
  const verdicts = s.cps.flatMap((cp) => readLog(cp.logFile).lost).filter((l) => !silenced.has(l.node));
  const fromLog = new Set(verdicts.map((l) => l.node));
  const why: Record<string, number> = {};
  for (const v of verdicts) {
    const k = v.why.replace(/\d+/g, 'N');
    why[k] = (why[k] ?? 0) + 1;
  }
  const nodes = await listAllNodes(s.api);
  const mine = new Set(s.fleet.nodeIds);
  const listed = nodes.filter((x) => mine.has(x.id) && !silenced.has(x.id));
  const lostListed = listed.filter((x) => x.state === NodeState.NODE_STATE_LOST).map((x) => x.id);
  const notReady = listed.filter((x) => x.state !== NodeState.NODE_STATE_READY).length;
  const all = new Set([...fromLog, ...lostListed]);
  return { count: all.size, fromLog: fromLog.size, why, listedLost: lostListed.length, notReady, listed: listed.length };
}

const lostFigure = (what: string, r: Awaited<ReturnType<typeof falseLost>>) =>
  measured(
    what,
    `${n(r.count)} (log "node lost": ${n(r.fromLog)}${r.fromLog > 0 ? `, ${reasons(r.why)}` : ''}; ListNodes LOST: ${n(r.listedLost)}, not READY: ${n(r.notReady)} of ${n(r.listed)})`,
    TARGETS.falseLost.text,
    verdict(r.count, TARGETS.falseLost),
  );

function warningsNote(what: string, cps: BenchControlPlane[]): string {
  const logs = cps.map((cp) => ({ cp, r: readLog(cp.logFile) }));
  return logs
    .map(({ cp, r }, i) => {
      const stalls = r.stalls.length > 0 ? `; stalls: ${r.stalls.length}, worst ${n(Math.max(...r.stalls))} ms` : '';
      return `${what}${logs.length > 1 ? ` (control plane ${i + 1})` : ''}: its warnings: ${describeWarnings(r.warnings)}${stalls} (log ${cp.logFile})`;
    })
    .join('\n- ');
}

// --- 1. idle ----------------------------------------------------------------

async function idle(o: ScaleOptions, figures: Figure[], notes: string[]): Promise<void> {
  const what = `Idle: ${n(o.idleAgents)} agents`;
  log(`${what}: connecting at ${n(o.idleConnectPerSecond)}/s`);
  let s: Stage;
  try {
    s = await startStage(o, o.idleAgents, 'idle', [], o.idleConnectPerSecond);
  } catch (err) {
    const targets = { 'control-plane CPU': TARGETS.idleCpuCores.text, 'false LOST verdicts': TARGETS.falseLost.text };
    return stageFailed(what, err, ['connected', 'control-plane CPU', 'control-plane RSS', 'false LOST verdicts', 'streams dropped'], targets, figures, notes);
  }
  try {
    figures.push(measured(`${what}: connected`, `${n(o.idleAgents)} in ${seconds(s.connectedMs)} (ramp ${n(o.idleConnectPerSecond)} hellos/s)`));
    const sampler = startSampler(() => s.cp.pid, s.fleet);
    const dropsBefore = s.fleet.totals().dropped;
    log(`${what}: all connected in ${seconds(s.connectedMs)}; measuring for ${o.idleSeconds} s`);
    await sleep(o.idleSeconds * 1000);
    const cpu = sampler.since(0);
    sampler.stop();
    const t = s.fleet.totals();
    const lost = await falseLost(s);
    const dropped = t.dropped - dropsBefore;
    const heldAll = t.open === o.idleAgents && s.fleet.crashed.length === 0;
    const window = `${(cpu.wallMs / 1000).toFixed(0)} s`;
    figures.push(
      heldAll
        ? measured(`${what}: control-plane CPU (mean over ${window}; busiest second)`, `${core(cpu.cpu)}; ${core(cpu.peakCpu)}`, TARGETS.idleCpuCores.text, verdict(cpu.cpu, TARGETS.idleCpuCores))
        : failed(`${what}: control-plane CPU`, `only ${n(t.open)} of ${n(o.idleAgents)} streams stayed open (${fleetState(t)}); ${core(cpu.cpu)} measured`, TARGETS.idleCpuCores.text),
    );
    figures.push(measured(`${what}: control-plane RSS (max; at the end)`, `${mib(cpu.rssMax)}; ${mib(cpu.rssEnd)}`));
    figures.push(lostFigure(`${what}: false LOST verdicts`, lost));
    figures.push(measured(`${what}: streams dropped while measured`, `${n(dropped)}${dropped > 0 ? ` (${reasons(t.droppedWhy)})` : ''}`, '0', dropped === 0 ? 'met' : 'missed'));
    notes.push(
      `${what}: the simulated fleet (${o.processes} processes, ${o.agentsPerConnection} streams per HTTP/2 connection) used ${core(cpu.fleetCpu)}, PostgreSQL ${core(cpu.postgresCpu)}; ` +
        `worst fleet event-loop delay in the last report ${ms(t.maxLoopDelayMs)} ms`,
    );
    notes.push(warningsNote(what, s.cps));
  } finally {
    await stopStage(s);
  }
}

// --- 2. reconnect storm -------------------------------------------------------

async function storm(o: ScaleOptions, figures: Figure[], notes: string[]): Promise<void> {
  const what = `Reconnect storm: ${n(o.stormAgents)} agents`;
  const fail = (err: unknown) =>
    stageFailed(what, err, ['all READY again', 'false LOST verdicts', 'control-plane CPU peak', 'streams dropped'], { 'false LOST verdicts': TARGETS.falseLost.text }, figures, notes);
  let s: Stage;
  try {
    s = await startStage(o, o.stormAgents, 'storm');
  } catch (err) {
    if (err instanceof Error) err.message = `before the storm: ${err.message}`;
    return fail(err);
  }
  try {
    await sleep(Math.min(5000, o.idleSeconds * 1000)); // heard for a while: every node's row is fresh
    const before = s.fleet.totals();
    const address = s.cp.address;
    log(`${what}: SIGKILL of the control plane (pid ${s.cp.pid}) on ${address}`);
    const killedAt = new Date();
    const t0 = performance.now();
    process.kill(s.cp.pid, 'SIGKILL');
    await s.cp.stop(); // waits for the exit
    let cp: BenchControlPlane;
    try {
      cp = await startControlPlaneAtDefaults(s.db.url, { listen: address });
    } catch (err) {
      return fail(new Error(`the control plane did not start again on ${address}: ${(err as Error).message}`));
    }
    const servingMs = performance.now() - t0;
    // Every stream of the dead control plane has ended by now (it took a process start).
    const atServing = s.fleet.totals();
    s.cp = cp;
    s.cps.push(cp);
    const sampler = startSampler(() => cp.pid, s.fleet);
    let readyMs: number | undefined;
    let failure: string | undefined;
    try {
      await waitConnected(s, o.stormAgents, 120_000, killedAt);
      readyMs = performance.now() - t0;
    } catch (err) {
      failure = (err as Error).message;
    }
    const cpu = sampler.since(0);
    log(`${what}: ${readyMs ? `all READY again ${seconds(readyMs)} after the kill` : failure}; watching ${o.stormWatchSeconds} s for false LOST`);
    await sleep(o.stormWatchSeconds * 1000);
    const watched = sampler.since(0);
    sampler.stop();
    const after = s.fleet.totals();
    const lost = await falseLost(s);
    const droppedAtKill = atServing.dropped - before.dropped;
    // Streams of the restarted control plane that ended: each one a stream welcomed again and lost.
    const droppedAfter = after.dropped - atServing.dropped;
    const whyAfter = Object.fromEntries(Object.entries(after.droppedWhy).map(([k, v]) => [k, v - (atServing.droppedWhy[k] ?? 0)]).filter(([, v]) => (v as number) > 0));
    figures.push(
      readyMs !== undefined
        ? measured(`${what}: all READY again after the SIGKILL (serving again after)`, `${seconds(readyMs)} (${seconds(servingMs)})`)
        : failed(`${what}: all READY again`, failure!),
    );
    figures.push(lostFigure(`${what}: false LOST verdicts (watched ${o.stormWatchSeconds} s after)`, lost));
    figures.push(
      measured(
        `${what}: restarted control plane's CPU (busiest second; mean until all READY)`,
        `${core(cpu.peakCpu)}; ${core(cpu.cpu)}`,
      ),
    );
    figures.push(
      measured(
        `${what}: streams dropped (by the kill; after it)`,
        `${n(droppedAtKill)}; ${n(droppedAfter)}${droppedAfter > 0 ? ` (${reasons(whyAfter)})` : ''}`,
        `${n(o.stormAgents)}; 0`,
        droppedAtKill === o.stormAgents && droppedAfter <= 0 ? 'met' : 'missed',
      ),
    );
    notes.push(
      `${what}: reconnect attempts that failed before a welcome: ${n(after.failedAttempts - before.failedAttempts)} (${reasons(after.failedWhy)}); ` +
        `RSS of the restarted control plane ${mib(watched.rssMax)} at most; fleet ${core(cpu.fleetCpu)}, PostgreSQL ${core(cpu.postgresCpu)} until all READY`,
    );
    notes.push(warningsNote(what, s.cps));
  } finally {
    await stopStage(s);
  }
}

// --- 3. heartbeat curve -------------------------------------------------------

async function curvePoint(o: ScaleOptions, intervalMs: number, figures: Figure[], notes: string[]): Promise<void> {
  const timeoutMs = 3 * intervalMs;
  const what = `Heartbeat ${seconds(intervalMs).replace('.00', '')} / timeout ${seconds(timeoutMs).replace('.00', '')}, ${n(o.curveAgents)} agents`;
  const args = ['--heartbeat-interval', `${intervalMs}ms`, '--heartbeat-timeout', `${timeoutMs}ms`];
  let s: Stage;
  try {
    s = await startStage(o, o.curveAgents, `hb${intervalMs}`, args);
  } catch (err) {
    return stageFailed(what, err, ['control-plane CPU', 'last heartbeat → LOST'], {}, figures, notes);
  }
  try {
    await sleep(Math.min(3000, o.curveCpuSeconds * 1000));
    const sampler = startSampler(() => s.cp.pid, s.fleet);
    await sleep(o.curveCpuSeconds * 1000);
    const cpu = sampler.since(0);
    sampler.stop();
    const t = s.fleet.totals();
    figures.push(
      t.open === o.curveAgents
        ? measured(`${what}: control-plane CPU (mean over ${(cpu.wallMs / 1000).toFixed(0)} s)`, `${core(cpu.cpu)}; RSS ${mib(cpu.rssMax)}`)
        : failed(`${what}: control-plane CPU`, `only ${n(t.open)} of ${n(o.curveAgents)} streams stayed open (${fleetState(t)})`),
    );

    // Spread over the fleet (and so over its processes and connections).
    const step = Math.max(1, Math.floor(o.curveAgents / o.silentAgents));
    const ids = s.fleet.nodeIds.filter((_, i) => i % step === step - 1).slice(0, o.silentAgents);
    const silenced = await s.fleet.silence(ids);
    const lastHeartbeat = new Map(silenced.map((a) => [a.nodeId, a.lastHeartbeatAt]));
    const silencedAt = silenced[0]?.silencedAt ?? Date.now();
    const seenLost = new Map<string, number>();
    const deadline = Date.now() + timeoutMs + 15_000;
    while (seenLost.size < ids.length && Date.now() < deadline) {
      const rows = await s.db.sql<{ id: string; state: string }[]>`SELECT id, state FROM nodes WHERE id = ANY(${ids})`;
      const now = Date.now();
      for (const r of rows) if (r.state === 'LOST' && !seenLost.has(r.id)) seenLost.set(r.id, now);
      await sleep(50);
    }
    const silentSet = new Set(ids);
    const lost = await falseLost(s, silentSet);
    const nodes = await listAllNodes(s.api);
    const listedLost = nodes.filter((x) => silentSet.has(x.id) && x.state === NodeState.NODE_STATE_LOST).length;
    const neverHeartbeat = silenced.filter((a) => a.lastHeartbeatAt === 0).length;
    if (seenLost.size < ids.length || listedLost < ids.length || neverHeartbeat > 0) {
      figures.push(
        failed(
          `${what}: last heartbeat → LOST`,
          `${seenLost.size} of ${ids.length} silent agents LOST in the nodes table within ${seconds(timeoutMs + 15_000)} of going silent, ${listedLost} in ListNodes` +
            (neverHeartbeat > 0 ? `; ${neverHeartbeat} had never sent a heartbeat` : ''),
        ),
      );
    } else {
      const delays = summarize(ids.map((id) => seenLost.get(id)! - lastHeartbeat.get(id)!));
      const logTimes = new Map(readLog(s.cp.logFile).lost.filter((l) => silentSet.has(l.node)).map((l) => [l.node, l.time]));
      const byLog = logTimes.size === ids.length ? summarize(ids.map((id) => logTimes.get(id)! - lastHeartbeat.get(id)!)) : undefined;
      const closed = ids.filter((id) => s.fleet.silentClosed.has(id));
      const byClose = closed.length > 0 ? summarize(closed.map((id) => s.fleet.silentClosed.get(id)! - lastHeartbeat.get(id)!)) : undefined;
      figures.push(
        measured(
          `${what}: last heartbeat → LOST in NodeService's nodes table (p50 / max, ${ids.length} agents)`,
          `${seconds(delays.p50)} / ${seconds(delays.max)}`,
        ),
      );
      notes.push(
        `${what}: the same verdicts by the control plane's "node lost" log time: ${byLog ? `${seconds(byLog.p50)} / ${seconds(byLog.max)}` : 'not all logged'}; ` +
          `the stream closed on the agent: ${byClose ? `${seconds(byClose.p50)} / ${seconds(byClose.max)} (${closed.length})` : 'never'}; ` +
          `from going silent (not the last heartbeat) to LOST: p50 ${seconds(summarize(ids.map((id) => seenLost.get(id)! - silencedAt)).p50)} ` +
          `(polled every 50 ms); fleet ${core(cpu.fleetCpu)}, PostgreSQL ${core(cpu.postgresCpu)} while measured`,
      );
    }
    figures.push(lostFigure(`${what}: false LOST verdicts (the ${ids.length} silenced left out)`, lost));
    notes.push(warningsNote(what, s.cps));
  } finally {
    await stopStage(s);
  }
}

export async function scaleScenario(o: ScaleOptions): Promise<Section> {
  const figures: Figure[] = [];
  const notes: string[] = [
    `Simulated agents (bench/fleet-process.ts) speak the real AgentService.Connect (hello, heartbeats at the welcome's interval, reconnect with the real agent's backoff) and run nothing; ` +
      `${o.processes} fleet processes, ${o.agentsPerConnection} streams per HTTP/2 connection. On this machine the fleet shares the 2 cores with the control plane and PostgreSQL.`,
  ];
  // A part that throws is one FAILED figure; the parts after it still run.
  const part = async (what: string, run: () => Promise<void>) => {
    try {
      await run();
    } catch (err) {
      log(`${what}: FAILED: ${(err as Error).message}`);
      figures.push(failed(what, (err as Error).message));
    }
  };
  await part(`Idle: ${n(o.idleAgents)} agents`, () => idle(o, figures, notes));
  await part(`Reconnect storm: ${n(o.stormAgents)} agents`, () => storm(o, figures, notes));
  for (const interval of o.curveIntervalsMs) await part(`Heartbeat ${seconds(interval)}`, () => curvePoint(o, interval, figures, notes));
  return {
    scenario: 'scale',
    title: 'Scale: idle agents, a reconnect storm, the heartbeat curve',
    command: 'npm run bench -- scale',
    about:
      `Issue 11: ${n(o.idleAgents)} idle simulated agents on one control plane at its defaults; a ${n(o.stormAgents)}-agent reconnect storm after a SIGKILL; ` +
      `at ${n(o.curveAgents)} agents, heartbeat interval (${o.curveIntervalsMs.map((i) => seconds(i)).join(', ')}, timeout 3×) against CPU and time to find a silent agent LOST.`,
    figures,
    notes,
    checks: [
      'every agent welcomed and its node READY in the nodes table before anything is measured',
      'false LOST counted from the control plane\'s "node lost" lines and NodeService.ListNodes',
      'streams the agents saw end without asking counted',
      'each silenced agent LOST both in the nodes table and in ListNodes',
    ],
  };
}
