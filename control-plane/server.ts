// Wires the control plane together: database, event bus, node registry,
// dispatcher and the three gRPC services. Holds no job state of its own beyond
// the streams it serves, so any number of these can run over one Postgres.
import type { PlacementStrategy } from './scheduler.js';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createSecretBox, ensureSecretKeyFile, readSecretKey, secretOpener } from './secret-box.js';
import { createServer } from 'nice-grpc';
import type { Logger } from 'pino';
import { AgentServiceDefinition } from '../common/gen/grid/v1/agent.js';
import { JobServiceDefinition } from '../common/gen/grid/v1/job.js';
import { NodeServiceDefinition } from '../common/gen/grid/v1/node.js';
import { SERVER_OPTIONS } from '../common/grpc-options.js';
import { createAgentService } from './agent-service.js';
import { connectDatabase, connectQueueHeadReader } from './db/connect.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded-postgres.js';
import { migrate } from './db/migrate.js';
import { startDeadlineEnforcer } from './deadline-enforcer.js';
import { createDispatcher } from './dispatcher.js';
import { errorMiddleware } from './error-middleware.js';
import { errorDetailsServerMiddleware } from 'nice-grpc-error-details';
import { startJobEventFeed } from './job-event-feed.js';
import { createLocalEventBus } from './job-events.js';
import { postgresBlobStore } from './blob-store.js';
import { createJobService } from './job-service.js';
import { createJobTransitions } from './job-transitions.js';
import { NodeRegistry } from './node-registry.js';
import { startNodeLiveness, type NodeLiveness } from './node-liveness.js';
import { startNodeReconciler } from './node-reconciler.js';
import { createNodeService } from './node-service.js';
import { startNodeDrain } from './node-drain.js';
import { runtimeTable, type RuntimePreset } from './runtime-presets.js';
import type { SpecPolicy } from './spec-validation.js';
import { TokenServiceDefinition } from '../common/gen/grid/v1/token.js';
import { CronServiceDefinition } from '../common/gen/grid/v1/cron.js';
import { startCronFirer } from './cron-firer.js';
import { createCronService } from './cron-service.js';
import { createTokenAuth } from './token-auth.js';
import { addOperatorServices, serverVersionHeader } from './operator-services.js';
import { createControlPlaneMetrics } from './metrics.js';
import { serveMetrics } from '../common/metrics-endpoint.js';
import { createTokenService } from './token-service.js';
import { serverCredentials, verifiedNodeInterceptor, type Transport } from './transport-security.js';

export interface ControlPlaneOptions {
  /** host:port to listen on; port 0 picks a free one. */
  listen: string;
  /** TLS (clients with tokens, agents with certificates) or plaintext; see transport-security.ts. */
  transport: Transport;
  /** Postgres URL; without one, an embedded PostgreSQL is started in dataDir. */
  databaseUrl?: string;
  /**
   * File of the key that seals jobs' secret env values. Without one, the
   * embedded PostgreSQL's Grid makes one in dataDir; with an external database,
   * jobs with secrets are refused. Every replica needs the same key.
   */
  secretKeyFile?: string;
  dataDir: string;
  runtimes: RuntimePreset[];
  policy: SpecPolicy;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  reconnectGraceMs: number;
  /** Submissions beyond this many queued jobs get RESOURCE_EXHAUSTED. */
  maxQueued: number;
  /** Added to a timeout (or a cancel's grace) before the control plane ends an attempt itself. */
  backstopMarginMs: number;
  /** How claims and placements at submit choose among the nodes a job may run on (default spread). */
  placement?: PlacementStrategy;
  /** At most this many active jobs per submitter (API token); 0 or none: no cap. */
  maxRunningPerSubmitter?: number;
  deadlineCheckMs: number;
  dispatchSweepMs: number;
  /** How often what each node holds is compared with Postgres (see node-reconciler.ts). */
  reconcileIntervalMs: number;
  /** host:port for Prometheus's GET /metrics (metrics.ts); none: not served. */
  metricsListen?: string;
  log: Logger;
}

export interface ControlPlane {
  /** host:port clients and agents can dial. */
  address: string;
  /** host:port of GET /metrics, when served. */
  metricsAddress?: string;
  close(): Promise<void>;
}

const SHUTDOWN_TIMEOUT_MS = 3000;

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { log } = options;
  // First: a bad key file is a plain error before anything is started.
  const keyFile = options.secretKeyFile ?? (options.databaseUrl ? undefined : ensureSecretKeyFile(join(options.dataDir, 'secret.key')));
  const secrets = keyFile ? createSecretBox(readSecretKey(keyFile)) : undefined;
  const openSecrets = secretOpener(secrets);
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = options.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres(options.dataDir, log.child({ part: 'postgres' }));
    databaseUrl = embedded.url;
  }
  const replicaId = `cp-${randomBytes(6).toString('hex')}`;
  const sql = connectDatabase(databaseUrl, { replicaId });
  try {
    await migrate(sql, log);
  } catch (err) {
    await sql.end({ timeout: 1 });
    await embedded?.stop();
    throw new Error(`cannot prepare the database: ${(err as Error).message}`, { cause: err });
  }

  const queueHeadSql = connectQueueHeadReader(databaseUrl, replicaId);
  const registry = new NodeRegistry();
  const metrics = createControlPlaneMetrics({ sql, registry, replicaId });
  const events = createLocalEventBus();
  const blobs = postgresBlobStore(sql);
  // The owner of every job transition, and the dispatcher that asks it to claim:
  // each needs the other, so the dispatcher reaches it through a closure.
  const dispatcher = createDispatcher({ sql, registry, transitions: () => transitions, log, sweepIntervalMs: options.dispatchSweepMs });
  const transitions = createJobTransitions({
    sql,
    queueHeadSql,
    registry,
    events,
    log,
    backstopMarginMs: options.backstopMarginMs,
    placement: options.placement,
    maxRunningPerSubmitter: options.maxRunningPerSubmitter,
    openSecrets,
    metrics,
    kick: (why) => dispatcher.kick(why),
  });

  // Over TLS every client call carries a token (agents, a certificate instead);
  // plaintext is a development control plane on loopback, with no authentication.
  const auth = options.transport.kind === 'tls' ? createTokenAuth({ sql, log }) : undefined;
  const base = createServer({ ...SERVER_OPTIONS, interceptors: [verifiedNodeInterceptor] })
    // Outermost: the google.rpc details of a RichServerError (common/errors.ts) go in the trailer.
    .use(errorDetailsServerMiddleware)
    .use(errorMiddleware(log))
    .use(serverVersionHeader);
  const server = auth ? base.use(auth.middleware) : base;
  const runtimes = runtimeTable(options.runtimes);
  server.add(TokenServiceDefinition, createTokenService({ sql, auth, log }));
  server.add(CronServiceDefinition, createCronService({ sql, policy: options.policy, runtimes, log }));
  const operator = addOperatorServices(server);
  server.add(
    JobServiceDefinition,
    createJobService({
      sql,
      events,
      transitions,
      policy: options.policy,
      runtimes,
      maxQueued: options.maxQueued,
      watchRecheckMs: 10_000,
      blobs,
      secrets,
      log,
    }),
  );
  const drains = await startNodeDrain({ sql, registry, kick: () => dispatcher.kick('queued'), log, checkIntervalMs: options.deadlineCheckMs });
  server.add(NodeServiceDefinition, createNodeService({ sql, drains }));
  let liveness: NodeLiveness | undefined;
  const reconciler = startNodeReconciler({ sql, registry, transitions: () => transitions, dispatcher, log, intervalMs: options.reconcileIntervalMs, openSecrets });
  server.add(
    AgentServiceDefinition,
    createAgentService({
      sql,
      registry,
      transitions,
      events,
      liveness: () => liveness!,
      reconciler,
      log,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs,
      blobs,
      transport: options.transport.kind,
      metrics,
    }),
  );
  liveness = startNodeLiveness({
    sql,
    registry,
    transitions,
    log,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs,
    reconnectGraceMs: options.reconnectGraceMs,
    persistIntervalMs: Math.max(100, Math.min(1000, options.heartbeatIntervalMs)),
    drainRead: (nodeId, drain) => drains.observed(nodeId, drain),
  });
  const feed = await startJobEventFeed({ sql, replicaId, events, deliverCancel: (row) => transitions.deliverCancel(row), log });
  const deadlines = startDeadlineEnforcer({ transitions, log, intervalMs: options.deadlineCheckMs });
  const crons = startCronFirer({ sql, transitions, policy: options.policy, runtimes, maxQueued: options.maxQueued, replicaId, log });
  const port = await server.listen(options.listen, await serverCredentials(options.transport));
  operator.setServing(true);
  const metricsEndpoint = options.metricsListen ? await serveMetrics(metrics.registry, options.metricsListen) : undefined;
  if (metricsEndpoint) log.info({ address: metricsEndpoint.address }, 'serving metrics');
  const host = options.listen.slice(0, options.listen.lastIndexOf(':'));
  const address = `${host === '0.0.0.0' || host === '' ? '127.0.0.1' : host}:${port}`;
  log.info({ address, replica: replicaId }, 'control plane listening');

  return {
    address,
    metricsAddress: metricsEndpoint?.address,
    async close() {
      // First: balancers and probes stop sending work here while it winds down,
      // and no new call is taken (an agent whose stream ends below reconnects to
      // another replica, not to this one); calls in flight go on.
      operator.setServing(false);
      const shutdown = server.shutdown().catch((err: unknown) => log.warn({ err }, 'graceful gRPC shutdown failed; forcing it'));
      liveness!.stop();
      await reconciler.stop();
      await deadlines.stop();
      await crons.stop();
      await dispatcher.stop();
      await drains.stop();
      await transitions.drain();
      await feed.stop();
      // A bidirectional stream keeps shutdown() waiting forever: end the agent
      // streams (their agents move to another replica), then give in-flight calls
      // a moment before forcing.
      for (const session of registry.all()) session.close();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        shutdown,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      server.forceShutdown();
      await auth?.stop();
      await metricsEndpoint?.close();
      await Promise.all([sql.end({ timeout: 2 }), queueHeadSql.end({ timeout: 2 })]);
      await embedded?.stop();
    },
  };
}
