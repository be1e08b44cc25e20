// Batches on the agent stream (ConnectRequest.batch, ConnectResponse.batch):
// what one side has queued for the other goes out as one message. grpc-js
// writes a stream's messages one at a time, each waiting for the last to reach
// the socket, so a message costs a write system call (and a wake-up of the
// reader): at thousands of jobs a second, one per assignment and one per ack
// was most of the control plane's time in the kernel. Nothing waits to fill a
// batch: it holds what was queued by the time the previous write went out (the
// assignments of one dispatch pass, the acks of one commit), and a lone
// message goes as it is. Both sides announce they understand batches (Hello
// and Welcome accepts_batches), so an older peer only ever gets single messages.
import type { AsyncQueue } from './async-queue.js';
import { ConnectRequest, ConnectResponse } from './gen/grid/v1/agent.js';

/** At most this many messages in one batch. */
const MAX_MESSAGES = 1000;
/** About this many bytes in one batch at most; a larger message goes alone. */
const MAX_BYTES = 1024 * 1024;
const SMALL_MESSAGE_BYTES = 128;

/**
 * The queue's messages, several at once in `wrap` while `enabled()` says the
 * peer takes batches. `bytesOf` estimates a message's size (cheaply, without
 * encoding it) so that a batch stays far below the 32 MiB message cap.
 */
export async function* inBatches<T>(
  queue: AsyncQueue<T>,
  options: { enabled: () => boolean; wrap: (messages: T[]) => T; bytesOf: (message: T) => number },
): AsyncGenerator<T> {
  const messages = queue[Symbol.asyncIterator]();
  let carried: T | undefined;
  for (;;) {
    let first = carried;
    carried = undefined;
    if (first === undefined) {
      const next = await messages.next();
      if (next.done) return;
      first = next.value;
    }
    if (!options.enabled() || queue.size === 0) {
      yield first;
      continue;
    }
    const batch = [first];
    let bytes = options.bytesOf(first);
    while (queue.size > 0 && batch.length < MAX_MESSAGES && bytes < MAX_BYTES) {
      const [next] = queue.takeQueued(1);
      const size = options.bytesOf(next!);
      if (bytes + size > MAX_BYTES) {
        carried = next;
        break;
      }
      batch.push(next!);
      bytes += size;
    }
    yield batch.length === 1 ? batch[0]! : options.wrap(batch);
  }
}

/** The agent's outgoing messages, batched once the control plane's welcome says it takes them. */
export function requestBatches(queue: AsyncQueue<ConnectRequest>, enabled: () => boolean): AsyncGenerator<ConnectRequest> {
  return inBatches(queue, {
    enabled,
    wrap: (messages) => ({ seq: 0n, message: { $case: 'batch', value: { messages } } }),
    bytesOf: requestBytes,
  });
}

/** The control plane's messages to an agent, batched if its hello says it takes them. */
export function responseBatches(queue: AsyncQueue<ConnectResponse>, enabled: boolean): AsyncGenerator<ConnectResponse> {
  return inBatches(queue, {
    enabled: () => enabled,
    wrap: (messages) => ({ message: { $case: 'batch', value: { messages } } }),
    bytesOf: responseBytes,
  });
}

function requestBytes(request: ConnectRequest): number {
  const m = request.message;
  if (m?.$case === 'jobOutput') return m.value.chunks.reduce((n, c) => n + c.data.length + 32, SMALL_MESSAGE_BYTES);
  if (m?.$case === 'jobOutputFiles') return m.value.data.length + SMALL_MESSAGE_BYTES;
  if (m?.$case === 'jobFinished') return m.value.message.length + SMALL_MESSAGE_BYTES;
  if (m?.$case === 'heartbeat') return m.value.attempts.length * 48 + SMALL_MESSAGE_BYTES;
  return SMALL_MESSAGE_BYTES;
}

function responseBytes(response: ConnectResponse): number {
  const m = response.message;
  if (m?.$case !== 'assignment') return SMALL_MESSAGE_BYTES;
  const task = m.value.task;
  if (!task) return SMALL_MESSAGE_BYTES;
  let bytes = 512 + task.image.length + task.argv.reduce((n, a) => n + a.length + 2, 0);
  for (const [k, v] of Object.entries(task.env)) bytes += k.length + v.length + 4;
  for (const f of task.files) bytes += f.path.length + f.content.length + 8;
  return bytes;
}

/**
 * The messages a received one stands for: a batch's, in order, or itself.
 * A batch inside a batch is not something either side sends: undefined.
 */
export function unbatchRequest(request: ConnectRequest): ConnectRequest[] | undefined {
  if (request.message?.$case !== 'batch') return [request];
  const inner = request.message.value.messages;
  return inner.some((m) => m.message?.$case === 'batch') ? undefined : inner;
}

export function unbatchResponse(response: ConnectResponse): ConnectResponse[] | undefined {
  if (response.message?.$case !== 'batch') return [response];
  const inner = response.message.value.messages;
  return inner.some((m) => m.message?.$case === 'batch') ? undefined : inner;
}
