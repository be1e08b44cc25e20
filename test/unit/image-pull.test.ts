// pullImage against a fake engine: docker-modem's real followProgress over a
// PassThrough the test writes Docker's pull messages into. The real engine and
// registry are in test/e2e/image-pull.test.ts.
import { PassThrough } from 'node:stream';
import test from 'ava';
import Docker from 'dockerode';
import { followPull, pullImage, type PullEngine } from '../../agent/image-pull.js';
import type { PullSummary } from '../../agent/pull-progress.js';
import { TaskAbortedError } from '../../agent/runtime-driver.js';

const modem = new Docker({ socketPath: '/nonexistent/docker.sock' }).modem;
const line = (m: object) => JSON.stringify(m) + '\r\n';

/** A fake engine whose pull answers with `stream`, and whose image exists once `present` says so. */
function fakeEngine(stream: PassThrough, present: () => boolean = () => true): PullEngine & { pulls: number } {
  const engine = {
    pulls: 0,
    modem,
    async pull() {
      engine.pulls++;
      return stream;
    },
    getImage() {
      return {
        inspect: async () => {
          if (!present()) throw Object.assign(new Error('(HTTP code 404) no such image'), { statusCode: 404 });
          return {};
        },
      };
    },
  };
  return engine as unknown as PullEngine & { pulls: number };
}

function recorder() {
  const events: { summary: PullSummary; done: boolean }[] = [];
  return { events, onProgress: (summary: PullSummary, done: boolean) => events.push({ summary, done }) };
}

test('a pull reports each change and a final done once the image is on the engine', async (t) => {
  const stream = new PassThrough();
  const { events, onProgress } = recorder();
  const pulling = pullImage(fakeEngine(stream), 'r/app:1', { signal: new AbortController().signal, stallMs: 5000, onProgress });
  stream.write(line({ status: 'Pulling from r/app', id: '1' }));
  stream.write(line({ status: 'Pulling fs layer', progressDetail: {}, id: 'bbbbbbbbbbbb' }));
  // A message split across two reads still parses.
  const split = line({ status: 'Downloading', progressDetail: { current: 10, total: 40 }, id: 'bbbbbbbbbbbb' });
  stream.write(split.slice(0, 20));
  stream.write(split.slice(20));
  stream.end(line({ status: 'Pull complete', progressDetail: {}, id: 'bbbbbbbbbbbb' }));
  await pulling;
  t.deepEqual(
    events.map((e) => [e.summary.downloadedBytes, e.summary.layersDone, e.done]),
    [
      [0, 0, false],
      [10, 0, false],
      [40, 1, false],
      [40, 1, true],
    ],
  );
});

test('an error inside the 200 stream fails the pull with Docker\'s message, without a done', async (t) => {
  const stream = new PassThrough();
  const { events, onProgress } = recorder();
  const pulling = pullImage(fakeEngine(stream), 'r/app:1', { signal: new AbortController().signal, stallMs: 5000, onProgress });
  stream.end(line({ errorDetail: { message: 'manifest for r/app:1 not found' }, error: 'manifest for r/app:1 not found' }));
  await t.throwsAsync(pulling, { message: 'manifest for r/app:1 not found' });
  t.false(events.some((e) => e.done));
});

test('a stream that ends with no error but leaves no image is not a success', async (t) => {
  const stream = new PassThrough();
  const pulling = pullImage(fakeEngine(stream, () => false), 'r/app:1', { signal: new AbortController().signal, stallMs: 5000, onProgress: () => {} });
  stream.destroy();
  await t.throwsAsync(pulling, { message: /the pull ended but the image is not on the node/ });
});

test('a pull with no news for the stall limit is given up, saying how long', async (t) => {
  const stream = new PassThrough();
  const pulling = pullImage(fakeEngine(stream), 'r/app:1', { signal: new AbortController().signal, stallMs: 80, onProgress: () => {} });
  stream.write(line({ status: 'Pulling fs layer', progressDetail: {}, id: 'bbbbbbbbbbbb' }));
  await t.throwsAsync(pulling, { message: 'no progress for 80ms' });
  t.true(stream.destroyed, 'the stream to the engine is closed');
});

test('a cancel mid-pull stops it at once with TaskAbortedError and delivers nothing after', async (t) => {
  const stream = new PassThrough();
  const cancel = new AbortController();
  const { events, onProgress } = recorder();
  const pulling = pullImage(fakeEngine(stream), 'r/app:1', { signal: cancel.signal, stallMs: 0, onProgress });
  stream.write(line({ status: 'Pulling fs layer', progressDetail: {}, id: 'bbbbbbbbbbbb' }));
  await new Promise((resolve) => setImmediate(resolve));
  cancel.abort();
  const err = await t.throwsAsync(pulling, { instanceOf: TaskAbortedError });
  t.is(err.message, 'cancelled while pulling r/app:1');
  t.true(stream.destroyed);
  const seen = events.length;
  stream.write(line({ status: 'Pull complete', progressDetail: {}, id: 'bbbbbbbbbbbb' }));
  await new Promise((resolve) => setImmediate(resolve));
  t.is(events.length, seen);
  t.false(events.some((e) => e.done));
});

test('followPull: an already aborted signal never reads the stream', async (t) => {
  const stream = new PassThrough();
  const cancel = new AbortController();
  cancel.abort();
  const seen: unknown[] = [];
  await t.throwsAsync(followPull(modem, stream, cancel.signal, (m) => seen.push(m)), { message: 'pull aborted' });
  t.true(stream.destroyed);
  t.deepEqual(seen, []);
});

test('followPull: a stream error rejects with it', async (t) => {
  const stream = new PassThrough();
  const following = followPull(modem, stream, new AbortController().signal, () => {});
  stream.destroy(new Error('socket hang up'));
  await t.throwsAsync(following, { message: 'socket hang up' });
});
