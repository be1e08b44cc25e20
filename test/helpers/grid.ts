// Starts real Grid processes (built into dist/ by `npm test`) on real sockets:
// control planes on port 0, agents against the real Docker engine, and gridctl.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { freePort } from '../../common/free-port.js';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChannelCredentials } from '@grpc/grpc-js';
import { ClientError, createChannel, createClient, Metadata, Status } from 'nice-grpc';
import { TokenServiceDefinition, type TokenServiceClient } from '../../common/gen/grid/v1/token.js';
import { CronServiceDefinition, type CronServiceClient } from '../../common/gen/grid/v1/cron.js';
import type { TestFn } from 'ava';
import { JobSpec, JobServiceDefinition, type Job, type JobServiceClient } from '../../common/gen/grid/v1/job.js';
import { isTerminal } from '../../common/job-state.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';
import { NodeServiceDefinition, NodeState, type Node, type NodeServiceClient } from '../../common/gen/grid/v1/node.js';
import { LABEL_NODE_ID } from '../../agent/docker-driver.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = {
  controlPlane: join(ROOT, 'dist/control-plane/main.js'),
  agent: join(ROOT, 'dist/agent/main.js'),
  // The bundled gridctl users run (bin/gridctl.cjs loads dist/bundle/gridctl.cjs).
  gridctl: join(ROOT, 'bin/gridctl.cjs'),
};

export const BUSYBOX = 'grid-test/busybox:1';
export const PYTHON = 'grid-test/python:3';

/** Runtime presets pointing at the locally built images (nothing can be pulled here). */
export function testRuntimesFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'grid-test-'));
  const file = join(dir, 'runtimes.json');
  writeFileSync(
    file,
    JSON.stringify({
      sh: { image: BUSYBOX },
      bash: { image: BUSYBOX, interpreter: ['sh'] },
      python: { image: PYTHON },
    }),
  );
  return file;
}

export interface RunningProcess {
  child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

// Processes a test file started: killed when its worker ends, however it ends
// (a timed-out worker is terminated, and its children would otherwise live on).
const children = new Set<ChildProcess>();
// Nodes an agent of this file ran as: their containers are removed at the end
// too, or agents killed on purpose would leave exited containers on the engine.
const nodeIds = new Set<string>();
const cleanUp = () => {
  for (const child of children) child.kill('SIGKILL');
  if (nodeIds.size === 0) return;
  // One `docker ps` per node: several label filters would have to match all at once.
  const ids = [...nodeIds].flatMap((id) =>
    spawnSync('docker', ['ps', '-aq', '--filter', `label=${LABEL_NODE_ID}=${id}`], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [],
  );
  if (ids.length > 0) spawnSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
};
process.once('exit', cleanUp);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    cleanUp();
    process.exit(1);
  });
}

function startProcess(file: string, args: string[], env: Record<string, string> = {}): RunningProcess {
  return startProgram(process.execPath, [file, ...args], { GRID_LOG_LEVEL: 'info', ...env }, basename(dirname(file)));
}

/** Any program, killed with the worker like the Grid processes; `name` names its log file. */
export function startProgram(command: string, args: string[], env: Record<string, string>, name: string): RunningProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  // GRID_TEST_LOG_DIR keeps every process's log in a file, to read after a failure.
  const logFile = process.env.GRID_TEST_LOG_DIR ? join(process.env.GRID_TEST_LOG_DIR, `${name}-${child.pid}.log`) : undefined;
  const keep = (d: Buffer) => {
    output += d;
    if (logFile) appendFileSync(logFile, d);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface ControlPlaneProcess extends RunningProcess {
  address: string;
}

/**
 * The address in a control plane's "serving" log line (or, from builds before
 * its stderr was all NDJSON, its plain "serving on" line): scripts wait for it.
 */
export function servingAddress(output: string): string | undefined {
  for (const line of output.split('\n')) {
    if (line.startsWith('{') && line.includes('"msg":"serving"')) {
      try {
        return (JSON.parse(line) as { address?: string }).address;
      } catch {
        // A line still being written.
      }
    }
  }
  return /serving on (\S+)\s/.exec(output)?.[1];
}

export async function startControlPlane(
  databaseUrl: string,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
  /** The program: the built dist/ one, or e.g. a bundle copied elsewhere. */
  program = BIN.controlPlane,
): Promise<ControlPlaneProcess> {
  const listen = extraArgs.includes('--listen') ? [] : ['--listen', '127.0.0.1:0'];
  // Plaintext on loopback unless the test serves TLS (an env var, so bench runs of older builds take it too).
  const transport: Record<string, string> = extraArgs.includes('--tls-cert') || extraArgs.includes('--plaintext') ? {} : { GRID_PLAINTEXT: '1' };
  const proc = startProcess(
    program,
    [...listen, '--runtimes', testRuntimesFile(), '--default-image', BUSYBOX, ...extraArgs],
    { GRID_DATABASE_URL: databaseUrl, ...transport, ...env },
  );
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`control plane did not start:\n${proc.output()}`)), 30_000);
    const onData = () => {
      const address = servingAddress(proc.output());
      if (address) {
        clearTimeout(timer);
        resolve(address);
      }
    };
    proc.child.stderr!.on('data', onData);
    proc.child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`control plane exited with ${code}:\n${proc.output()}`));
    });
  });
  return { ...proc, address };
}

const STATE_ROOT = mkdtempSync(join(tmpdir(), 'grid-agents-'));

/** An agent process; its state dir depends only on the node id, so a restart finds it again. */
export function startAgent(server: string, nodeId: string, extraArgs: string[] = [], program = BIN.agent): RunningProcess {
  nodeIds.add(nodeId);
  // A test's SIGTERM (stop()) hands what still runs back at once rather than waiting for it to end.
  const drain = extraArgs.includes('--drain-deadline') ? [] : ['--drain-deadline', '0s'];
  return startProcess(program, [
    '--server', server, '--node-id', nodeId, '--name', nodeId, '--state-dir', join(STATE_ROOT, nodeId), ...drain, ...extraArgs,
  ]);
}

export { freePort };

export interface Clients {
  jobs: JobServiceClient;
  nodes: NodeServiceClient;
  tokens: TokenServiceClient;
  crons: CronServiceClient;
  close(): void;
}

/** Clients of a control plane: plaintext, or over TLS with a bearer token on every call. */
export function clients(address: string, options: { credentials?: ChannelCredentials; token?: string } = {}): Clients {
  const channel = createChannel(address, options.credentials ?? ChannelCredentials.createInsecure());
  const defaults = options.token ? { '*': { metadata: Metadata({ authorization: `Bearer ${options.token}` }) } } : {};
  return {
    jobs: createClient(JobServiceDefinition, channel, defaults),
    nodes: createClient(NodeServiceDefinition, channel, defaults),
    tokens: createClient(TokenServiceDefinition, channel, defaults),
    crons: createClient(CronServiceDefinition, channel, defaults),
    close: () => channel.close(),
  };
}

/** Every node, page by page (ListNodes answers at most 1000 at a time by default). */
export async function listAllNodes(c: Pick<Clients, 'nodes'>): Promise<Node[]> {
  const all: Node[] = [];
  let pageToken = '';
  do {
    const page = await c.nodes.listNodes({ pageSize: 1000, pageToken });
    all.push(...page.nodes);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return all;
}

export async function waitForNodes(c: Clients, nodeIds: string[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const nodes = await listAllNodes(c);
    const ready = new Set(nodes.filter((n) => n.state === NodeState.NODE_STATE_READY).map((n) => n.id));
    if (nodeIds.every((id) => ready.has(id))) return;
    if (Date.now() > deadline) throw new Error(`nodes ${nodeIds.join(', ')} did not become ready`);
    await sleep(50);
  }
}

export interface CommandResult {
  code: number | null;
  stdout: Buffer;
  stderr: Buffer;
}

export function gridctl(
  server: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; stdin?: Buffer | string } = {},
): Promise<CommandResult> {
  const child = spawn(process.execPath, [BIN.gridctl, ...args], {
    cwd: options.cwd,
    env: { ...process.env, GRID_SERVER: server, ...options.env },
    stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  return new Promise((resolve) =>
    child.once('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) })),
  );
}

/** A working directory holding the given files, for `gridctl run FILE`. */
export function workdir(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'grid-work-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

/** Polls a job until `done` holds for it. */
export async function waitForJob(
  c: Clients,
  jobId: string,
  done: (job: import('../../common/gen/grid/v1/job.js').Job) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<import('../../common/gen/grid/v1/job.js').Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await c.jobs.getJob({ jobId })).job!;
    if (done(job)) return job;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}; job is ${JSON.stringify(job, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    await sleep(25);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `holds` is true; past `timeoutMs` it throws, naming what it waited for. */
export async function until(what: string, holds: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await holds())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(25);
  }
}

/** A job's stored output as text: both streams (0), or stdout (1) or stderr (2) alone. */
export async function storedLogs(c: Pick<Clients, 'jobs'>, jobId: string, stream = 0): Promise<string> {
  const parts: Buffer[] = [];
  for await (const { chunk } of c.jobs.readJobLogs({ jobId, attempt: 0, stream })) parts.push(Buffer.from(chunk!.data));
  return Buffer.concat(parts).toString();
}

/**
 * The job once it has ended, or as it is after `timeoutMs` (for an assertion
 * to show). UNAVAILABLE is waited out: a control plane's pool may still be
 * reconnecting to a restarted Postgres.
 */
export async function jobWhenEnded(c: Clients, jobId: string, timeoutMs: number): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await c.jobs.getJob({ jobId }).then(
      (r) => r.job!,
      (err) => {
        if (err instanceof ClientError && err.code === Status.UNAVAILABLE && Date.now() < deadline) return undefined;
        throw err;
      },
    );
    if (job && (isTerminal(job.state) || Date.now() > deadline)) return job;
    await sleep(50);
  }
}

/** A job spec for tests: a command plus whatever fields the test sets. */
export function commandSpec(command: string[], fields: Partial<JobSpec> = {}): JobSpec {
  return JobSpec.fromPartial({ command, ...fields });
}

export interface GridFixture {
  db: TestDatabase;
  cp: ControlPlaneProcess;
  agent: RunningProcess;
  api: Clients;
}

/**
 * One control plane (own database) and one agent for a test file: started
 * before its tests, stopped after them. Fields are set once `before` has run.
 */
export function useGrid(
  test: TestFn,
  options: { nodeId: string; agentArgs?: string[]; controlPlaneArgs?: string[] },
): GridFixture {
  const grid = {} as GridFixture;
  test.before(async () => {
    grid.db = await createTestDatabase();
    grid.cp = await startControlPlane(grid.db.url, options.controlPlaneArgs);
    grid.agent = startAgent(grid.cp.address, options.nodeId, options.agentArgs);
    grid.api = clients(grid.cp.address);
    await waitForNodes(grid.api, [options.nodeId]);
  });
  test.after.always(async () => {
    grid.api?.close();
    await grid.agent?.stop();
    await grid.cp?.stop();
    await grid.db?.drop();
  });
  return grid;
}
