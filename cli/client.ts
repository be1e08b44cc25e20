// The gRPC clients gridctl uses, and how their failures read to a person.
import { readFileSync } from 'node:fs';
import { ClientError, createChannel, createClient, Metadata, Status, type Channel } from 'nice-grpc';
import { channelCredentials, type ClientTls } from '../common/client-credentials.js';
import type { Context } from './config-file.js';
import { JobServiceDefinition, type JobServiceClient } from '../common/gen/grid/v1/job.js';
import { NodeServiceDefinition, type NodeServiceClient } from '../common/gen/grid/v1/node.js';
import { TokenServiceDefinition, type TokenServiceClient } from '../common/gen/grid/v1/token.js';
import { CronServiceDefinition, type CronServiceClient } from '../common/gen/grid/v1/cron.js';
import { CLIENT_OPTIONS } from '../common/grpc-options.js';

export interface GridClients {
  server: string;
  jobs: JobServiceClient;
  nodes: NodeServiceClient;
  tokens: TokenServiceClient;
  crons: CronServiceClient;
  close(): void;
}

export interface Connection {
  tls?: ClientTls;
  /** The API token, sent as `authorization: Bearer …` on every call. */
  token?: string;
}

/**
 * TLS and token from gridctl's global flags and GRID_TOKEN, else the chosen
 * context of the config file (flags and environment win over it).
 */
export function connectionOf(flags: { tlsCa?: string; tokenFile?: string }, env = process.env, context: Context = {}): Connection {
  flags = { tlsCa: flags.tlsCa ?? context['tls-ca'], tokenFile: flags.tokenFile ?? (env.GRID_TOKEN ? undefined : context['token-file']) };
  let token = env.GRID_TOKEN?.trim() || context.token?.trim() || undefined;
  if (flags.tokenFile) {
    try {
      token = readFileSync(flags.tokenFile, 'utf8').trim();
    } catch (err) {
      throw new Error(`cannot read the token file ${flags.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return { tls: flags.tlsCa ? { caFile: flags.tlsCa } : undefined, token };
}

/** The control plane's default port when an address names none: `-s localhost` means localhost:7070, not port 80. */
export const DEFAULT_PORT = 7070;

/** host:port as given, or with the default port when it has none (IPv6 in brackets). */
export function withDefaultPort(server: string): string {
  const hasPort = server.startsWith('[') ? /\]:\d+$/.test(server) : /:\d+$/.test(server);
  return hasPort ? server : `${server}:${DEFAULT_PORT}`;
}

export function connect(given: string, connection: Connection = {}): GridClients {
  const server = withDefaultPort(given);
  const channel: Channel = createChannel(server, channelCredentials(connection.tls), CLIENT_OPTIONS);
  const defaults = connection.token ? { '*': { metadata: Metadata({ authorization: `Bearer ${connection.token}` }) } } : {};
  return {
    server,
    jobs: createClient(JobServiceDefinition, channel, defaults),
    nodes: createClient(NodeServiceDefinition, channel, defaults),
    tokens: createClient(TokenServiceDefinition, channel, defaults),
    crons: createClient(CronServiceDefinition, channel, defaults),
    close: () => channel.close(),
  };
}

/** A deadline for one unary call; never used on streams that follow a job. */
export function callOptions(ms = 30_000): { signal: AbortSignal } {
  return { signal: AbortSignal.timeout(ms) };
}

export function describeError(err: unknown, server: string): string {
  if (err instanceof ClientError) {
    if (err.code === Status.UNAVAILABLE && /connect|ECONNREFUSED|No connection/i.test(err.details)) {
      return `cannot reach the Grid control plane at ${server} (${err.details}). Is it running? ` +
        'Start one with `npm start`, or point --server / GRID_SERVER at it. ' +
        'If it serves TLS, give its CA with --tls-ca or GRID_TLS_CA.';
    }
    // The server's message fits any client; how gridctl is given a token is gridctl's to say.
    if (err.code === Status.UNAUTHENTICATED) return `${err.details} (gridctl reads the token from GRID_TOKEN or --token-file; \`gridctl token create\` makes one)`;
    return err.details;
  }
  if (isSlowAnswer(err)) return `the control plane at ${server} did not answer in time`;
  return err instanceof Error ? err.message : String(err);
}

export function isRetryable(err: unknown): boolean {
  return err instanceof ClientError && (err.code === Status.UNAVAILABLE || err.code === Status.INTERNAL && /RST_STREAM|stream/i.test(err.details));
}

/** The call's deadline (callOptions) passed before the control plane answered. */
export function isSlowAnswer(err: unknown): boolean {
  if (err instanceof ClientError) return err.code === Status.DEADLINE_EXCEEDED;
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}
