// OutputBatcher: chunks carry per-stream contiguous offsets, never exceed the
// chunk size, and together reproduce exactly the bytes that were written.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LogStream, type LogChunk } from '../../common/gen/grid/v1/job.js';
import { OutputBatcher } from '../../agent/output-batcher.js';

const OUT = LogStream.LOG_STREAM_STDOUT;
const ERR = LogStream.LOG_STREAM_STDERR;

/** A batcher whose timer never fires during a test, and the emit calls it made. */
function batcher(maxChunkBytes: number, flushIntervalMs = 60_000, capBytes = Infinity): { b: OutputBatcher; emits: LogChunk[][] } {
  const emits: LogChunk[][] = [];
  const b = new OutputBatcher({ flushIntervalMs, maxChunkBytes, capBytes, emit: (chunks) => emits.push(chunks) });
  return { b, emits };
}

function summary(chunks: LogChunk[]): Array<[string, bigint, string]> {
  return chunks.map((c) => [c.stream === OUT ? 'out' : 'err', c.offset, Buffer.from(c.data).toString()]);
}

test('offsets are per stream and contiguous across flushes', (t) => {
  const { b, emits } = batcher(1024);
  b.write(OUT, Buffer.from('hello '));
  b.write(ERR, Buffer.from('oops'));
  b.flush();
  b.write(OUT, Buffer.from('world'));
  b.flush();
  b.write(ERR, Buffer.from('!!'));
  b.write(OUT, Buffer.from('.'));
  b.flush();
  t.deepEqual(emits.map(summary), [
    [
      ['out', 0n, 'hello '],
      ['err', 0n, 'oops'],
    ],
    [['out', 6n, 'world']],
    [
      ['out', 11n, '.'],
      ['err', 4n, '!!'],
    ],
  ]);
});

test('chunks carry bigint offsets and attempt 0, with a time set', (t) => {
  const { b, emits } = batcher(1024);
  b.write(OUT, Buffer.from('x'));
  b.flush();
  const chunk = emits[0]![0]!;
  t.is(typeof chunk.offset, 'bigint');
  t.is(chunk.attempt, 0);
  t.true(chunk.time instanceof Date);
});

test('several writes before a flush are sent as one chunk per stream', (t) => {
  const { b, emits } = batcher(1024);
  b.write(OUT, Buffer.from('a'));
  b.write(OUT, Buffer.from('b'));
  b.write(OUT, Buffer.from('c'));
  t.is(emits.length, 0);
  b.flush();
  t.deepEqual(emits.map(summary), [[['out', 0n, 'abc']]]);
});

test('a write reaching maxChunkBytes flushes synchronously', (t) => {
  const { b, emits } = batcher(8);
  b.write(OUT, Buffer.from('1234567'));
  t.is(emits.length, 0, 'below the limit nothing is sent');
  b.write(OUT, Buffer.from('8'));
  t.is(emits.length, 1, 'reaching the limit sends at once');
  t.deepEqual(summary(emits[0]!), [['out', 0n, '12345678']]);
});

test('a flush triggered by one stream sends the other stream too, in the same emit', (t) => {
  const { b, emits } = batcher(4);
  b.write(ERR, Buffer.from('e'));
  b.write(OUT, Buffer.from('oooo'));
  t.deepEqual(emits.map(summary), [
    [
      ['out', 0n, 'oooo'],
      ['err', 0n, 'e'],
    ],
  ]);
});

test('flush() emits both streams in one emit call', (t) => {
  const { b, emits } = batcher(1024);
  b.write(OUT, Buffer.from('out'));
  b.write(ERR, Buffer.from('err'));
  b.flush();
  t.is(emits.length, 1);
  t.deepEqual(summary(emits[0]!), [
    ['out', 0n, 'out'],
    ['err', 0n, 'err'],
  ]);
});

test('data larger than maxChunkBytes is split into chunks of at most that size', (t) => {
  const { b, emits } = batcher(4);
  b.write(OUT, Buffer.from('abcdefghij'));
  t.is(emits.length, 1);
  t.deepEqual(summary(emits[0]!), [
    ['out', 0n, 'abcd'],
    ['out', 4n, 'efgh'],
    ['out', 8n, 'ij'],
  ]);
  b.write(OUT, Buffer.from('klmnopq'));
  t.deepEqual(summary(emits[1]!), [
    ['out', 10n, 'klmn'],
    ['out', 14n, 'opq'],
  ]);
});

test('flush with nothing pending emits nothing', (t) => {
  const { b, emits } = batcher(1024);
  b.flush();
  b.write(OUT, Buffer.from('x'));
  b.flush();
  b.flush();
  t.is(emits.length, 1);
});

test('empty writes emit nothing, even on flush, and leave offsets at 0', (t) => {
  const { b, emits } = batcher(4);
  b.write(OUT, Buffer.alloc(0));
  b.write(ERR, Buffer.alloc(0));
  b.flush();
  t.is(emits.length, 0);
  t.deepEqual(b.offsets, { stdout: 0, stderr: 0 });
});

test('pending output is flushed by the timer after flushIntervalMs', async (t) => {
  const { b, emits } = batcher(1024, 20);
  b.write(OUT, Buffer.from('tick'));
  b.write(ERR, Buffer.from('tock'));
  t.is(emits.length, 0, 'nothing is sent at once');
  await sleep(60);
  t.deepEqual(emits.map(summary), [
    [
      ['out', 0n, 'tick'],
      ['err', 0n, 'tock'],
    ],
  ]);
});

test('an explicit flush cancels the pending timer', async (t) => {
  const { b, emits } = batcher(1024, 20);
  b.write(OUT, Buffer.from('x'));
  b.flush();
  await sleep(60);
  t.is(emits.length, 1);
});

test('concatenated chunks reproduce exactly the random binary data written to each stream', (t) => {
  const max = 100;
  const { b, emits } = batcher(max);
  const written = { out: [] as Buffer[], err: [] as Buffer[] };
  for (let i = 0; i < 200; i++) {
    const data = randomBytes(Math.floor(Math.random() * 250));
    const stream = Math.random() < 0.5 ? OUT : ERR;
    (stream === OUT ? written.out : written.err).push(data);
    b.write(stream, data);
    if (i % 17 === 0) b.flush();
  }
  b.flush();

  const chunks = emits.flat();
  for (const [stream, parts] of [
    [OUT, written.out],
    [ERR, written.err],
  ] as const) {
    const mine = chunks.filter((c) => c.stream === stream);
    let expectedOffset = 0n;
    for (const c of mine) {
      t.true(c.data.length > 0 && c.data.length <= max, 'chunk size within limits');
      t.is(c.offset, expectedOffset, 'offsets are contiguous');
      expectedOffset += BigInt(c.data.length);
    }
    const expected = Buffer.concat(parts);
    t.true(Buffer.concat(mine.map((c) => c.data)).equals(expected), `${LogStream[stream]} reproduced exactly`);
  }
  t.deepEqual(b.offsets, {
    stdout: Buffer.concat(written.out).length,
    stderr: Buffer.concat(written.err).length,
  });
});

test('offsets counts bytes written per stream, including ones not yet sent', (t) => {
  const { b } = batcher(1024);
  t.deepEqual(b.offsets, { stdout: 0, stderr: 0 });
  b.write(OUT, Buffer.from('abc'));
  t.deepEqual(b.offsets, { stdout: 3, stderr: 0 });
  b.write(ERR, Buffer.from('de'));
  b.flush();
  t.deepEqual(b.offsets, { stdout: 3, stderr: 2 });
  b.write(OUT, Buffer.from('fghij'));
  t.deepEqual(b.offsets, { stdout: 8, stderr: 2 });
  b.flush(); // clears the timer, which would otherwise keep the process alive
  t.deepEqual(b.offsets, { stdout: 8, stderr: 2 });
});

test('past the cap a stream keeps only its first capBytes, and counts everything written', (t) => {
  const { b, emits } = batcher(4, 60_000, 10);
  b.write(OUT, Buffer.from('0123456'));
  b.write(OUT, Buffer.from('789abcdef'));
  b.write(ERR, Buffer.from('xy'));
  b.write(OUT, Buffer.from('more'));
  b.flush();
  const kept = (stream: LogStream) => Buffer.concat(emits.flat().filter((c) => c.stream === stream).map((c) => Buffer.from(c.data))).toString();
  t.is(kept(OUT), '0123456789');
  t.is(kept(ERR), 'xy');
  t.deepEqual(b.written, { stdout: 20, stderr: 2 });
  t.deepEqual(b.offsets, { stdout: 10, stderr: 2 });
});
