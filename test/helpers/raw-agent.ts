// A hand-driven agent stream for tests: whatever an agent (or an impostor)
// could send, over a real socket.
import type { ChannelCredentials } from '@grpc/grpc-js';
import { createChannel, createClient, ClientError, Status } from 'nice-grpc';
import { AgentServiceDefinition, ConnectRequest, type ConnectResponse } from '../../common/gen/grid/v1/agent.js';
import { AsyncQueue } from '../../common/async-queue.js';
import { CLIENT_OPTIONS } from '../../common/grpc-options.js';
import { GRID_VERSION } from '../../common/version.js';

export interface RawAgentStream {
  /** The first answer: welcome, or the error that refused the stream. */
  first: Promise<ConnectResponse | ClientError>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  /** Every answer after the first, as it comes. */
  later: ConnectResponse[];
  /** The error that ended the stream, once it has (after the first answer). */
  failure(): ClientError | undefined;
  send(request: ConnectRequest): void;
  close(): void;
}

/** A raw AgentService.Connect stream that sends a hello for nodeId, over plaintext unless given credentials. */
export function connectRawAgent(address: string, nodeId: string, agentInstance: string, name = nodeId, credentials?: ChannelCredentials, agentVersion = GRID_VERSION): RawAgentStream {
  const channel = createChannel(address, credentials, { ...CLIENT_OPTIONS, 'grpc.use_local_subchannel_pool': 1 });
  const client = createClient(AgentServiceDefinition, channel);
  const outgoing = new AsyncQueue<ConnectRequest>();
  outgoing.push({
    seq: 0n,
    message: {
      $case: 'hello',
      value: { nodeId, name, capacity: { slots: 1, cpus: 1, memoryBytes: 1n << 30n }, labels: {}, agentVersion, attempts: [], agentInstance, acceptsBatches: false, draining: false },
    },
  });
  let firstResolve!: (r: ConnectResponse | ClientError) => void;
  const first = new Promise<ConnectResponse | ClientError>((r) => (firstResolve = r));
  const later: ConnectResponse[] = [];
  let answered = false;
  let failure: ClientError | undefined;
  const ended = (async () => {
    try {
      for await (const response of client.connect(outgoing)) {
        if (answered) later.push(response);
        answered = true;
        firstResolve(response);
      }
    } catch (err) {
      failure = err as ClientError;
      firstResolve(err as ClientError);
    } finally {
      firstResolve(new ClientError('/x', Status.UNKNOWN, 'ended without an answer'));
      channel.close();
    }
  })();
  return { first, ended, later, failure: () => failure, send: (r) => outgoing.push(r), close: () => outgoing.end() };
}

