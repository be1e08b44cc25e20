// The gRPC clients gridctl uses, and how their failures read to a person.
import { ChannelCredentials } from '@grpc/grpc-js';
import { ClientError, createChannel, createClient, Status, type Channel } from 'nice-grpc';
import { JobServiceDefinition, type JobServiceClient } from '../common/gen/grid/v1/job.js';
import { NodeServiceDefinition, type NodeServiceClient } from '../common/gen/grid/v1/node.js';
import { CLIENT_OPTIONS } from '../common/grpc-options.js';

export interface GridClients {
  server: string;
  jobs: JobServiceClient;
  nodes: NodeServiceClient;
  close(): void;
}

export function connect(server: string): GridClients {
  const channel: Channel = createChannel(server, ChannelCredentials.createInsecure(), CLIENT_OPTIONS);
  return {
    server,
    jobs: createClient(JobServiceDefinition, channel),
    nodes: createClient(NodeServiceDefinition, channel),
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
        'Start one with `npm start`, or point --server / GRID_SERVER at it.';
    }
    return err.details;
  }
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return `the control plane at ${server} did not answer in time`;
  }
  return err instanceof Error ? err.message : String(err);
}

export function isRetryable(err: unknown): boolean {
  return err instanceof ClientError && (err.code === Status.UNAVAILABLE || err.code === Status.INTERNAL && /RST_STREAM|stream/i.test(err.details));
}
