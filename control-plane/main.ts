#!/usr/bin/env node
// grid-control-plane: the gRPC server (see systemd/grid-control-plane.service).
import { PLACEMENT_STRATEGIES } from './scheduler.js';
import { Command, Option } from 'commander';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { envOption, parseBytesFlag, parseDurationFlag, parseIntFlag, parseTimerFlag, readSwitchesFromEnv } from '../common/cli-options.js';
import { LOG_FORMATS, createLogger, type LogFormat, type Logger } from '../common/logger.js';
import { GRID_VERSION } from '../common/version.js';
import { launchAgent } from '../agent/launch.js';
import type { Agent } from '../agent/agent.js';
import { DEFAULT_CONTAINER_POLICY, type ContainerPolicy } from '../agent/container-policy.js';
import { HostAccessError } from '../agent/job-network.js';
import { connectDatabase } from './db/connect.js';
import { migrate } from './db/migrate.js';
import { loadRuntimes } from './runtime-presets.js';
import { startControlPlane } from './server.js';
import { DEFAULT_SPEC_POLICY } from './spec-validation.js';
import { parseScope } from '../common/token-scope.js';
import { createToken } from './token-store.js';
import { chooseTransport, hostOf, isLoopback } from './transport-security.js';

function defaultDataDir(): string {
  // Under systemd, the unit's StateDirectory= (the one place its hardening lets it write).
  if (process.env.STATE_DIRECTORY) return process.env.STATE_DIRECTORY.split(':')[0]!;
  // As root, the embedded PostgreSQL runs as the `postgres` user, which cannot
  // enter /root: keep the data where that user can reach it.
  return process.getuid?.() === 0 ? '/var/lib/grid' : join(homedir(), '.local', 'share', 'grid');
}

const program = new Command('grid-control-plane')
  .description('Grid control plane: the job API, the agents\' streams and the dispatcher.')
  .version(GRID_VERSION)
  .addOption(envOption('--listen <host:port>', 'address to serve gRPC on', 'GRID_LISTEN', '127.0.0.1:7070'))
  .addOption(envOption('--tls-cert <file>', 'certificate (PEM) to serve TLS with; re-read when it changes', 'GRID_TLS_CERT'))
  .addOption(envOption('--tls-key <file>', 'private key (PEM) of --tls-cert', 'GRID_TLS_KEY'))
  .addOption(envOption('--tls-client-ca <file>', 'CA (PEM) whose certificates identify agents; a certificate names its node', 'GRID_TLS_CLIENT_CA'))
  .addOption(envOption('--plaintext', 'serve without TLS and without authentication (development; loopback only)', 'GRID_PLAINTEXT'))
  .addOption(envOption('--allow-plaintext-on-network-INSECURE', 'let --plaintext listen on an address that is not loopback', 'GRID_ALLOW_PLAINTEXT_ON_NETWORK_INSECURE'))
  .addOption(envOption('--database-url <url>', 'PostgreSQL URL (default: an embedded PostgreSQL in the data dir)', 'GRID_DATABASE_URL'))
  .addOption(envOption('--secret-key-file <file>', 'key (32 bytes, base64: `openssl rand -base64 32`) sealing jobs\' secret env values in the database; the same on every replica', 'GRID_SECRET_KEY_FILE'))
  .addOption(envOption('--data-dir <dir>', 'where the embedded PostgreSQL keeps its data', 'GRID_DATA_DIR', defaultDataDir()))
  .addOption(envOption('--runtimes <file>', 'JSON file of runtime presets (name → image, interpreter, extensions)', 'GRID_RUNTIMES'))
  .addOption(envOption('--default-image <image>', 'image for commands submitted without one', 'GRID_DEFAULT_IMAGE', DEFAULT_SPEC_POLICY.defaultImage))
  .addOption(envOption('--default-memory <size>', 'memory limit of jobs that set none', 'GRID_DEFAULT_MEMORY', DEFAULT_SPEC_POLICY.defaultMemoryBytes).argParser(parseBytesFlag))
  .addOption(envOption('--max-memory <size>', 'largest memory limit a job may ask for', 'GRID_MAX_MEMORY', DEFAULT_SPEC_POLICY.maxMemoryBytes).argParser(parseBytesFlag))
  .addOption(envOption('--default-timeout <duration>', 'run timeout of jobs that set none', 'GRID_DEFAULT_TIMEOUT', DEFAULT_SPEC_POLICY.defaultTimeoutMs).argParser(parseTimerFlag))
  .addOption(envOption('--max-timeout <duration>', 'longest run timeout a job may ask for', 'GRID_MAX_TIMEOUT', DEFAULT_SPEC_POLICY.maxTimeoutMs).argParser(parseTimerFlag))
  .addOption(envOption('--default-queue-timeout <duration>', 'queue timeout of jobs that set none', 'GRID_DEFAULT_QUEUE_TIMEOUT', DEFAULT_SPEC_POLICY.defaultQueueTimeoutMs).argParser(parseDurationFlag))
  .addOption(envOption('--default-grace <duration>', 'stop grace (stop signal → SIGKILL) of jobs that set none', 'GRID_DEFAULT_GRACE', DEFAULT_SPEC_POLICY.defaultStopGraceMs).argParser(parseTimerFlag))
  .addOption(envOption('--max-grace <duration>', 'longest stop grace a job or a cancel may ask for', 'GRID_MAX_GRACE', DEFAULT_SPEC_POLICY.maxStopGraceMs).argParser(parseTimerFlag))
  .addOption(envOption('--max-output <size>', 'output kept per stream of a job; the rest is dropped and reported', 'GRID_MAX_OUTPUT', DEFAULT_SPEC_POLICY.outputCapBytes).argParser(parseBytesFlag))
  .addOption(envOption('--max-inputs <size>', 'input files of one job, in all', 'GRID_MAX_INPUTS', DEFAULT_SPEC_POLICY.maxInputBytes).argParser(parseBytesFlag))
  .addOption(envOption('--max-output-files <size>', 'the /grid/out archive collected from one job', 'GRID_MAX_OUTPUT_FILES', DEFAULT_SPEC_POLICY.maxOutputFilesBytes).argParser(parseBytesFlag))
  .addOption(envOption('--max-queued <n>', 'queue depth beyond which submissions get RESOURCE_EXHAUSTED', 'GRID_MAX_QUEUED', 100_000).argParser(parseIntFlag))
  .addOption(envOption('--max-running-per-submitter <n>', 'jobs one API token may have assigned or running at once, so a burst leaves others room (0: no cap)', 'GRID_MAX_RUNNING_PER_SUBMITTER', 0).argParser(parseIntFlag))
  .addOption(envOption('--placement <strategy>', 'among the nodes a job may run on: spread (emptiest first; keeps small hosts evenly loaded) or pack (fullest first; keeps whole nodes free)', 'GRID_PLACEMENT', 'spread').choices(PLACEMENT_STRATEGIES))
  .addOption(envOption('--backstop-margin <duration>', 'past timeout + grace + this without a result, the control plane ends an attempt itself', 'GRID_BACKSTOP_MARGIN', 5000).argParser(parseTimerFlag))
  .addOption(envOption('--heartbeat-interval <duration>', 'how often agents heartbeat', 'GRID_HEARTBEAT_INTERVAL', 1000).argParser(parseTimerFlag))
  .addOption(envOption('--heartbeat-timeout <duration>', 'silence after which a connected node is lost', 'GRID_HEARTBEAT_TIMEOUT', 3000).argParser(parseTimerFlag))
  .addOption(envOption('--reconnect-grace <duration>', 'how long a disconnected node keeps its jobs', 'GRID_RECONNECT_GRACE', 10_000).argParser(parseTimerFlag))
  .addOption(envOption('--dispatch-sweep <duration>', 'safety re-check of the queue (dispatch itself is pushed, not polled)', 'GRID_DISPATCH_SWEEP', 5000).argParser(parseTimerFlag))
  .addOption(envOption('--reconcile-interval <duration>', 'how often what each node holds is compared with the database (repairs any divergence)', 'GRID_RECONCILE_INTERVAL', 2000).argParser(parseTimerFlag))
  .addOption(envOption('--metrics-listen <host:port>', 'serve Prometheus metrics on GET /metrics here (default: not served)', 'GRID_METRICS_LISTEN'))
  .addOption(envOption('--local-agent', 'also run an agent in this process (one-machine Grid)', 'GRID_LOCAL_AGENT'))
  .addOption(envOption('--docker-socket <path>', 'Docker socket of the local agent', 'GRID_DOCKER_SOCKET', '/var/run/docker.sock'))
  .addOption(envOption('--log-level <level>', 'trace, debug, info, warn or error', 'GRID_LOG_LEVEL', 'info'))
  .addOption(envOption('--log-format <format>', 'json (NDJSON), pretty (one readable line each), or auto: pretty on a terminal', 'GRID_LOG_FORMAT', 'auto').choices(LOG_FORMATS))
  .action(async (flags) => {
    const log = createLogger('grid-control-plane', flags.logLevel, flags.logFormat);
    let agent: Agent | undefined;
    let controlPlane;
    try {
      const transport = chooseTransport({ ...flags, allowPlaintextOnNetwork: flags.allowPlaintextOnNetworkINSECURE });
      if (transport.kind === 'plaintext' && !isLoopback(hostOf(flags.listen))) {
        log.warn({ listen: flags.listen }, 'serving PLAINTEXT WITHOUT AUTHENTICATION on a network address: anyone who can reach it can run containers on every node');
      }
      if (flags.localAgent && transport.kind === 'tls') {
        throw new Error('--local-agent is for a --plaintext development control plane; over TLS, run grid-agent with its own certificate');
      }
      controlPlane = await startControlPlane({
        listen: flags.listen,
        transport,
        databaseUrl: flags.databaseUrl,
        secretKeyFile: flags.secretKeyFile,
        dataDir: flags.dataDir,
        runtimes: loadRuntimes(flags.runtimes, flags.defaultImage),
        policy: {
          ...DEFAULT_SPEC_POLICY,
          defaultImage: flags.defaultImage,
          defaultMemoryBytes: flags.defaultMemory,
          maxMemoryBytes: flags.maxMemory,
          defaultTimeoutMs: flags.defaultTimeout,
          maxTimeoutMs: flags.maxTimeout,
          defaultQueueTimeoutMs: flags.defaultQueueTimeout,
          defaultStopGraceMs: flags.defaultGrace,
          maxStopGraceMs: flags.maxGrace,
          outputCapBytes: flags.maxOutput,
          maxInputBytes: flags.maxInputs,
          maxOutputFilesBytes: flags.maxOutputFiles,
        },
        heartbeatIntervalMs: flags.heartbeatInterval,
        heartbeatTimeoutMs: flags.heartbeatTimeout,
        reconnectGraceMs: flags.reconnectGrace,
        maxQueued: flags.maxQueued,
        backstopMarginMs: flags.backstopMargin,
        placement: flags.placement,
        maxRunningPerSubmitter: flags.maxRunningPerSubmitter,
        deadlineCheckMs: 250,
        dispatchSweepMs: flags.dispatchSweep,
        reconcileIntervalMs: flags.reconcileInterval,
        metricsListen: flags.metricsListen,
        log,
      });
      if (flags.localAgent) agent = await startLocalAgent(controlPlane.address, flags, log);
    } catch (err) {
      await controlPlane?.close();
      fail(err);
    }
    // A log line like every other (stderr is NDJSON for jq and collectors); scripts read its address.
    log.info({ address: controlPlane.address, version: GRID_VERSION, local_agent: Boolean(agent) }, 'serving');
    const shutdown = async () => {
      // Running jobs keep running; the next start takes them up again.
      await agent?.stop();
      await controlPlane.close();
      process.exit(0);
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });

program
  .command('migrate')
  .description('apply pending database migrations and exit')
  .addOption(envOption('--database-url <url>', 'PostgreSQL URL', 'GRID_DATABASE_URL').makeOptionMandatory())
  .action(async (flags) => {
    const log = createLogger('grid-control-plane');
    const sql = connectDatabase(flags.databaseUrl, { max: 1 });
    try {
      const applied = await migrate(sql, log);
      process.stdout.write(applied.length ? `applied migrations ${applied.join(', ')}\n` : 'database is up to date\n');
    } catch (err) {
      fail(err);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

const token = program.command('token').description('API tokens, straight in the database: the first admin token of a Grid');
token
  .command('create')
  .description('make an API token and print it (once); run on the control-plane host')
  .addOption(envOption('--database-url <url>', 'PostgreSQL URL', 'GRID_DATABASE_URL').makeOptionMandatory())
  .requiredOption('--name <name>', 'a label for people, e.g. "root" or "ci"')
  .addOption(new Option('--scope <scope>', 'read, submit or admin').choices(['read', 'submit', 'admin']).default('admin'))
  .option('--expires-in <duration>', 'valid for this long (default: until revoked)', parseDurationFlag)
  .action(async (flags) => {
    const log = createLogger('grid-control-plane', 'warn');
    const sql = connectDatabase(flags.databaseUrl, { max: 1 });
    try {
      await migrate(sql, log);
      const made = await createToken(sql, flags.name, parseScope(flags.scope), flags.expiresIn);
      process.stderr.write(`made ${flags.scope} token "${made.info.name}" (id ${made.info.id}); it is shown only now:\n`);
      process.stdout.write(`${made.token}\n`);
    } catch (err) {
      fail(err);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

async function startLocalAgent(server: string, flags: Record<string, string>, log: Logger): Promise<Agent> {
  try {
    return await launchLocalAgent(server, flags, log, DEFAULT_CONTAINER_POLICY);
  } catch (err) {
    // A development Grid run without root: jobs keep Docker's bridge, and are told so.
    if (!(err instanceof HostAccessError)) throw err;
    log.warn({ why: err.message }, 'the local agent cannot keep jobs off this host\'s ports; its jobs use Docker\'s default bridge');
    return launchLocalAgent(server, flags, log, { ...DEFAULT_CONTAINER_POLICY, network: 'bridge' });
  }
}

async function launchLocalAgent(server: string, flags: Record<string, string>, log: Logger, containerPolicy: ContainerPolicy): Promise<Agent> {
  const agent = await launchAgent(
    {
      containerPolicy,
      servers: [server],
      stateDir: join(flags.dataDir!, 'agent'),
      labels: { local: 'true' },
      dockerSocket: flags.dockerSocket!,
      pull: 'missing',
      heartbeatIntervalMs: 1000,
      timeoutGraceMs: 10_000,
    },
    createLogger('grid-agent', log.level, flags.logFormat as LogFormat),
  );
  await agent.connected();
  return agent;
}

function fail(err: unknown): never {
  let message = (err as Error).message;
  for (let cause = (err as Error).cause; cause instanceof Error; cause = cause.cause) message += `\n  caused by: ${cause.message}`;
  process.stderr.write(`grid-control-plane: ${message}\n`);
  process.exit(1);
}

readSwitchesFromEnv(program);
await program.parseAsync();
