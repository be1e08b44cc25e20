#!/usr/bin/env node
// grid-agent: the daemon on each host (see systemd/grid-agent.service).
import { Command, Option } from 'commander';
import { envOption, flagParser, parseBytesFlag, parseIntFlag, parseNumberFlag, parseTimerFlag, readSwitchesFromEnv } from '../common/cli-options.js';
import { LOG_FORMATS, createLogger } from '../common/logger.js';
import { GRID_VERSION } from '../common/version.js';
import { launchAgent, parseLabels, parseServers } from './launch.js';
import { defaultStateDir } from './node-identity.js';
import { DEFAULT_CONTAINER_POLICY, parseCapabilities } from './container-policy.js';
import { GRID_NETWORK } from './job-network.js';
import type { ClientTls } from '../common/client-credentials.js';

/** How long running jobs may go on after a SIGTERM; the unit's TimeoutStopSec leaves room for it (systemd/grid-agent.service). */
const DEFAULT_DRAIN_DEADLINE_MS = 5 * 60_000;
/** After the deadline: for stopped jobs to end and the control plane to acknowledge every report. */
const DRAIN_SETTLE_MS = 30_000;

const program = new Command('grid-agent')
  .description('Runs Grid jobs as Docker containers on this host.')
  .version(GRID_VERSION)
  .addOption(
    envOption('-s, --server <host:port,...>', 'control plane address; several replicas comma-separated (the agent moves to the next when one fails)', 'GRID_SERVER', ['127.0.0.1:7070'])
      .argParser(flagParser(parseServers)),
  )
  .addOption(envOption('--tls-ca <file>', 'CA (PEM) of the control plane\'s certificate: dial with TLS', 'GRID_TLS_CA'))
  .addOption(envOption('--tls-cert <file>', 'this agent\'s certificate (PEM, from `gridctl certs issue-agent`): it names the node', 'GRID_TLS_CERT'))
  .addOption(envOption('--tls-key <file>', 'private key (PEM) of --tls-cert', 'GRID_TLS_KEY'))
  .addOption(envOption('--node-id <id>', 'stable node id (default: generated once, kept in the state dir)', 'GRID_NODE_ID'))
  .addOption(envOption('--name <name>', 'node name shown by `gridctl nodes` (default: host name)', 'GRID_NODE_NAME'))
  .addOption(envOption('--state-dir <dir>', 'where the agent keeps its node id', 'GRID_STATE_DIR', defaultStateDir()))
  .addOption(envOption('--slots <n>', 'jobs run at once (default: CPU count)', 'GRID_SLOTS').argParser(parseIntFlag))
  .addOption(envOption('--cpus <n>', 'CPUs offered to jobs (default: all)', 'GRID_CPUS').argParser(parseNumberFlag))
  .addOption(envOption('--memory <size>', 'memory offered to jobs, e.g. 3g (default: all)', 'GRID_MEMORY').argParser(parseBytesFlag))
  .addOption(
    envOption('--labels <k=v,...>', 'labels of this node', 'GRID_LABELS', {}).argParser(flagParser(parseLabels)),
  )
  .addOption(envOption('--docker-socket <path>', 'Docker engine socket', 'GRID_DOCKER_SOCKET', '/var/run/docker.sock'))
  .addOption(envOption('--allowed-images <prefixes>', 'only run images starting with one of these, comma-separated (default: any)', 'GRID_ALLOWED_IMAGES', []).argParser((t: string) => t.split(',').map((s) => s.trim()).filter(Boolean)))
  .addOption(new Option('--pull <policy>', 'pull images that are not on the node').choices(['missing', 'never']).default('missing').env('GRID_PULL'))
  .addOption(envOption('--pull-stall-timeout <duration>', 'give up a pull that reports no progress for this long; 0: never', 'GRID_PULL_STALL_TIMEOUT', 120_000).argParser(parseTimerFlag))
  .addOption(envOption('--heartbeat-interval <duration>', 'heartbeat interval until the control plane sets one', 'GRID_HEARTBEAT_INTERVAL', 1000).argParser(parseTimerFlag))
  .addOption(envOption('--timeout-grace <duration>', 'grace between SIGTERM and SIGKILL when a job times out', 'GRID_TIMEOUT_GRACE', 10_000).argParser(parseTimerFlag))
  .addOption(envOption('--drain-deadline <duration>', 'on SIGTERM, how long running jobs may go on before they are stopped and handed back to the queue (0: at once)', 'GRID_DRAIN_DEADLINE', DEFAULT_DRAIN_DEADLINE_MS).argParser(parseTimerFlag))
  .addOption(envOption('--outbox-memory <size>', 'reports held in memory while the control plane is away, before spilling to disk', 'GRID_OUTBOX_MEMORY', 32 * 1024 * 1024).argParser(parseBytesFlag))
  .addOption(envOption('--network <network>', `Docker network of job containers: ${GRID_NETWORK} (Grid's own: no connections to this host, none between jobs), bridge (Docker's default: jobs reach this host's ports), none, or another network`, 'GRID_NETWORK', DEFAULT_CONTAINER_POLICY.network))
  .addOption(envOption('--cap-add <caps>', 'capabilities given back to jobs after all are dropped, comma-separated (e.g. CHOWN,SETUID,SETGID for package managers)', 'GRID_CAP_ADD', []).argParser(flagParser(parseCapabilities)))
  .addOption(envOption('--read-only-rootfs', 'job containers get a read-only root filesystem (/tmp and /grid stay writable)', 'GRID_READ_ONLY_ROOTFS'))
  .addOption(envOption('--user <uid[:gid]>', 'user jobs run as (default: the image\'s)', 'GRID_USER', ''))
  .addOption(envOption('--pids-limit <n>', 'processes a job container may have', 'GRID_PIDS_LIMIT', DEFAULT_CONTAINER_POLICY.pidsLimit).argParser(parseIntFlag))
  .addOption(envOption('--metrics-listen <host:port>', 'serve Prometheus metrics on GET /metrics here (default: not served)', 'GRID_METRICS_LISTEN'))
  .addOption(envOption('--log-level <level>', 'trace, debug, info, warn or error', 'GRID_LOG_LEVEL', 'info'))
  .addOption(envOption('--log-format <format>', 'json (NDJSON), pretty (one readable line each), or auto: pretty on a terminal', 'GRID_LOG_FORMAT', 'auto').choices(LOG_FORMATS))
  .action(async (flags) => {
    const log = createLogger('grid-agent', flags.logLevel, flags.logFormat);
    let agent;
    try {
      agent = await launchAgent(
        {
          servers: flags.server,
          tls: tlsOf(flags),
          nodeId: flags.nodeId,
          name: flags.name,
          stateDir: flags.stateDir,
          slots: flags.slots,
          cpus: flags.cpus,
          memoryBytes: flags.memory,
          labels: flags.labels,
          dockerSocket: flags.dockerSocket,
          pull: flags.pull,
          pullStallMs: flags.pullStallTimeout,
          allowedImages: flags.allowedImages,
          heartbeatIntervalMs: flags.heartbeatInterval,
          timeoutGraceMs: flags.timeoutGrace,
          outboxMemoryBytes: flags.outboxMemory,
          metricsListen: flags.metricsListen,
          containerPolicy: {
            network: flags.network,
            capAdd: flags.capAdd,
            readOnlyRootfs: Boolean(flags.readOnlyRootfs),
            user: flags.user,
            pidsLimit: flags.pidsLimit,
          },
        },
        log,
      );
    } catch (err) {
      process.stderr.write(`grid-agent: ${(err as Error).message}\n`);
      process.exit(1);
    }
    log.info({ node: agent.nodeId, server: flags.server }, 'agent started');
    // SIGINT (Ctrl-C; or `systemctl kill -s SIGINT` to restart onto a new version
    // keeping jobs): stop at once. Containers keep running, and the next agent of
    // this node takes them up again (a restart within the control plane's
    // reconnect grace loses no job).
    const stopNow = async () => {
      await agent.stop();
      process.exit(0);
    };
    // SIGTERM (systemctl stop or restart): drain first. A second signal stops at once.
    const drain = async () => {
      process.once('SIGTERM', stopNow);
      const left = await agent.drain(flags.drainDeadline, DRAIN_SETTLE_MS);
      log.info({ unreported: left }, 'drained; exiting');
      process.exit(0);
    };
    process.once('SIGTERM', drain);
    process.once('SIGINT', stopNow);
  });

function tlsOf(flags: Record<string, string | undefined>): ClientTls | undefined {
  if (!flags.tlsCa) {
    if (flags.tlsCert || flags.tlsKey) throw new Error('--tls-cert and --tls-key need --tls-ca, the CA of the control plane\'s certificate');
    return undefined;
  }
  if (!flags.tlsCert || !flags.tlsKey) throw new Error('over TLS the agent needs its certificate: --tls-cert and --tls-key (`gridctl certs issue-agent NODE_ID` makes them)');
  return { caFile: flags.tlsCa, certFile: flags.tlsCert, keyFile: flags.tlsKey };
}

readSwitchesFromEnv(program);
await program.parseAsync();
