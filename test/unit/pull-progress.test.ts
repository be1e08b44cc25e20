import test from 'ava';
import { pacePullProgress, PullTally, type DockerPullMessage, type PullSummary } from '../../agent/pull-progress.js';


// The messages Engine 20.10 sends for a two-layer image whose first layer is already on the node.
const PULL: DockerPullMessage[] = [
  { status: 'Pulling from grid-test/app', id: '1' },
  { status: 'Already exists', progressDetail: {}, id: 'aaaaaaaaaaaa' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'bbbbbbbbbbbb' },
  { status: 'Downloading', progressDetail: { current: 1000, total: 4000 }, progress: '[==>   ]', id: 'bbbbbbbbbbbb' } as DockerPullMessage,
  { status: 'Downloading', progressDetail: { current: 3000, total: 4000 }, id: 'bbbbbbbbbbbb' },
  { status: 'Verifying Checksum', progressDetail: {}, id: 'bbbbbbbbbbbb' },
  { status: 'Download complete', progressDetail: {}, id: 'bbbbbbbbbbbb' },
  { status: 'Extracting', progressDetail: { current: 500, total: 4000 }, id: 'bbbbbbbbbbbb' },
  { status: 'Pull complete', progressDetail: {}, id: 'bbbbbbbbbbbb' },
  { status: 'Digest: sha256:0123' },
  { status: 'Status: Downloaded newer image for localhost:5000/grid-test/app:1' },
];

test('a pull folds into layers on the node and bytes downloaded', (t) => {
  const tally = new PullTally();
  const seen: PullSummary[] = [];
  for (const m of PULL) if (tally.add(m)) seen.push(tally.summary);
  t.deepEqual(seen[2], { layersTotal: 2, layersDone: 1, downloadedBytes: 1000, totalBytes: 4000 });
  t.deepEqual(tally.summary, { layersTotal: 2, layersDone: 2, downloadedBytes: 4000, totalBytes: 4000 });
  t.is(tally.error, undefined);
  // Extracting counts the same bytes again: the download never goes past the total or back.
  const downloaded = seen.map((s) => s.downloadedBytes);
  t.deepEqual(downloaded, [...downloaded].sort((a, b) => a - b));
  t.true(downloaded.every((d) => d <= 4000));
});

test('messages that change nothing are not news', (t) => {
  const tally = new PullTally();
  t.false(tally.add({ status: 'Pulling from grid-test/app', id: 'latest' }));
  t.true(tally.add({ status: 'Pulling fs layer', id: 'bbbbbbbbbbbb' }));
  t.false(tally.add({ status: 'Waiting', id: 'bbbbbbbbbbbb' }));
  t.false(tally.add({ status: 'Digest: sha256:0123' }));
});

test('an error inside the stream is the pull failing', (t) => {
  const tally = new PullTally();
  tally.add({ status: 'Pulling fs layer', id: 'bbbbbbbbbbbb' });
  tally.add({ errorDetail: { message: 'manifest unknown' }, error: 'manifest unknown' });
  t.is(tally.error, 'manifest unknown');
});

/** A clock that moves only when told, firing due timers in order. */
function fakeClock() {
  let time = 0;
  let nextId = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => time,
    setTimeout(fn: () => void, ms: number) {
      const id = ++nextId;
      timers.set(id, { at: time + ms, fn });
      return id as unknown as NodeJS.Timeout;
    },
    clearTimeout(timer: NodeJS.Timeout | undefined) {
      timers.delete(timer as unknown as number);
    },
    advance(ms: number) {
      const until = time + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        time = due[1].at;
        due[1].fn();
      }
      time = until;
    },
  };
}

const summary = (downloadedBytes: number): PullSummary => ({ layersTotal: 1, layersDone: 0, downloadedBytes, totalBytes: 100 });

test('pacing: the first after a settle, then the latest at most once per interval, and the final one at once', (t) => {
  const clock = fakeClock();
  const sent: { at: number; downloaded: number; done: boolean }[] = [];
  const pacer = pacePullProgress({ intervalMs: 250, settleMs: 50 }, (s, done) => sent.push({ at: clock.now(), downloaded: s.downloadedBytes, done }), clock);
  pacer.update(summary(1));
  pacer.update(summary(2));
  clock.advance(49);
  t.deepEqual(sent, []);
  clock.advance(1);
  // The burst is counted together: one message, the latest.
  t.deepEqual(sent, [{ at: 50, downloaded: 2, done: false }]);
  pacer.update(summary(3));
  pacer.update(summary(4));
  clock.advance(249);
  t.is(sent.length, 1);
  clock.advance(1);
  t.deepEqual(sent.at(-1), { at: 300, downloaded: 4, done: false });
  // An interval has passed since the last send: the next goes at once.
  clock.advance(400);
  pacer.update(summary(5));
  t.deepEqual(sent.at(-1), { at: 700, downloaded: 5, done: false });
  pacer.update(summary(6));
  pacer.finish({ ...summary(100), layersDone: 1 });
  t.deepEqual(sent.at(-1), { at: 700, downloaded: 100, done: true });
  pacer.update(summary(7));
  clock.advance(1000);
  t.is(sent.length, 4, 'nothing after the final one');
});

test('pacing: a stopped pull sends nothing more', (t) => {
  const clock = fakeClock();
  const sent: boolean[] = [];
  const pacer = pacePullProgress({ intervalMs: 250, settleMs: 50 }, (_s, done) => sent.push(done), clock);
  pacer.update(summary(1));
  clock.advance(50);
  pacer.update(summary(2));
  pacer.stop();
  clock.advance(1000);
  pacer.finish(summary(100));
  t.deepEqual(sent, [false]);
});

test('a tag that looks like a layer id is not a layer', (t) => {
  const tally = new PullTally();
  t.false(tally.add({ status: 'Pulling from grid-test/app', id: 'a1b2c3d4e5f6' }));
  tally.add({ status: 'Pulling fs layer', id: 'bbbbbbbbbbbb' });
  t.is(tally.summary.layersTotal, 1);
});
