import test from 'ava';
import type { ImagePullProgress } from '../../common/gen/grid/v1/job.js';
import { createPullDisplay, PLAIN_INTERVAL_MS } from '../../cli/pull-display.js';
import { pullProgressLine } from '../../cli/format.js';

const MiB = 1024n * 1024n;
const progress = (layersDone: number, downloadedMiB: number, done = false): ImagePullProgress => ({
  attempt: 1,
  image: 'localhost:5000/grid-test/app:1',
  layersTotal: 3,
  layersDone,
  downloadedBytes: BigInt(downloadedMiB) * MiB,
  totalBytes: 30n * MiB,
  done,
  time: undefined,
});

test('plain: the first line, one per finished layer, one per interval, and the last; nothing in between', (t) => {
  let time = 0;
  const out: string[] = [];
  const display = createPullDisplay('plain', { write: (s) => out.push(s) }, () => time);
  display.onPullProgress!(progress(0, 1));
  time += 250;
  display.onPullProgress!(progress(0, 2));
  time += 250;
  display.onPullProgress!(progress(1, 10));
  time += PLAIN_INTERVAL_MS - 1;
  display.onPullProgress!(progress(1, 12));
  time += 1;
  display.onPullProgress!(progress(1, 20));
  display.onPullProgress!(progress(3, 30, true));
  display.end();
  t.deepEqual(out, [
    'grid: pulling localhost:5000/grid-test/app:1: 0/3 layers, 1 MiB of 30 MiB\n',
    'grid: pulling localhost:5000/grid-test/app:1: 1/3 layers, 10 MiB of 30 MiB\n',
    'grid: pulling localhost:5000/grid-test/app:1: 1/3 layers, 20 MiB of 30 MiB\n',
    'grid: pulled localhost:5000/grid-test/app:1 (3 layers, 30 MiB)\n',
  ]);
});

test('tty: one line rewritten in place, cut to the width, ended by the done event or by end()', (t) => {
  const out: string[] = [];
  const display = createPullDisplay('tty', { write: (s) => out.push(s), columns: 40 });
  display.onPullProgress!(progress(0, 1));
  t.is(out.length, 1);
  t.true(out[0]!.startsWith('\r\x1b[K'));
  const visible = out[0]!.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace('\r', '');
  t.is(visible.length, 39);
  t.true(visible.endsWith('…'));
  display.end();
  t.is(out.at(-1), '\n');
  display.end();
  t.is(out.length, 2, 'end() twice writes one newline');
  display.onPullProgress!(progress(3, 30, true));
  t.is(out.at(-1), '\n', 'the done event ends its own line');
});

test('none: the watch is not asked for progress, and end() writes nothing', (t) => {
  const out: string[] = [];
  const display = createPullDisplay('none', { write: (s) => out.push(s) });
  t.is(display.onPullProgress, undefined);
  display.end();
  t.deepEqual(out, []);
});

test('progress reads as one line', (t) => {
  const base = { attempt: 1, image: 'localhost:5000/app:1', time: undefined };
  t.is(
    pullProgressLine({ ...base, layersTotal: 3, layersDone: 1, downloadedBytes: 3n * 1024n * 1024n, totalBytes: 40n * 1024n * 1024n, done: false }),
    'pulling localhost:5000/app:1: 1/3 layers, 3 MiB of 40 MiB',
  );
  t.is(pullProgressLine({ ...base, layersTotal: 0, layersDone: 0, downloadedBytes: 0n, totalBytes: 0n, done: false }), 'pulling localhost:5000/app:1: 0/0 layers');
  t.is(pullProgressLine({ ...base, layersTotal: 1, layersDone: 1, downloadedBytes: 5n, totalBytes: 2048n, done: true }), 'pulled localhost:5000/app:1 (1 layer, 2 KiB)');
});
