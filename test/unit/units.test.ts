// Human units: durations and sizes parsed and formatted, and the int64 edge.
import test from 'ava';
import {
  durationToMs,
  formatBytes,
  formatDurationMs,
  msToDuration,
  parseBytes,
  parseDurationMs,
  safeNumber,
} from '../../common/units.js';

test('parseDurationMs reads unit suffixes and combinations', (t) => {
  t.is(parseDurationMs('30s'), 30_000);
  t.is(parseDurationMs('1m30s'), 90_000);
  t.is(parseDurationMs('500ms'), 500);
  t.is(parseDurationMs('2h'), 7_200_000);
  t.is(parseDurationMs('1.5s'), 1_500);
  t.is(parseDurationMs('1h30m'), 5_400_000);
  t.is(parseDurationMs('1m500ms'), 60_500);
  t.is(parseDurationMs(' 5m '), 300_000);
});

test('parseDurationMs reads a bare number as seconds', (t) => {
  t.is(parseDurationMs('0'), 0);
  t.is(parseDurationMs('10'), 10_000);
  t.is(parseDurationMs('2.5'), 2_500);
});

test('parseDurationMs refuses text that is not a duration', (t) => {
  for (const bad of ['abc', '5x', '1m30', '', 's', '-5s', '5 s', '1.s']) {
    t.throws(() => parseDurationMs(bad), { message: /is not a duration; use e\.g\. 30s/ }, JSON.stringify(bad));
  }
});

test('formatDurationMs picks readable units', (t) => {
  t.is(formatDurationMs(0), '0ms');
  t.is(formatDurationMs(250), '250ms');
  t.is(formatDurationMs(1000), '1s');
  t.is(formatDurationMs(1500), '1.5s');
  t.is(formatDurationMs(59_000), '59s');
  t.is(formatDurationMs(60_000), '1m');
  t.is(formatDurationMs(90_000), '1m30s');
  t.is(formatDurationMs(3_600_000), '1h');
  t.is(formatDurationMs(3_661_000), '1h1m1s');
  t.is(formatDurationMs(7 * 24 * 3_600_000), '168h');
});

test('formatDurationMs carries rounded seconds into minutes instead of writing 60s', (t) => {
  // 119.7 s rounds to 2 minutes, not "1m60s".
  t.is(formatDurationMs(119_700), '2m');
  t.is(formatDurationMs(3_599_600), '1h');
  t.is(formatDurationMs(3_659_700), '1h1m');
});

test('durationToMs converts seconds and nanos, and undefined to 0', (t) => {
  t.is(durationToMs({ seconds: 5n, nanos: 0 }), 5_000);
  t.is(durationToMs({ seconds: 1n, nanos: 250_000_000 }), 1_250);
  t.is(durationToMs({ seconds: 0n, nanos: 1_000_000 }), 1);
  t.is(durationToMs(undefined), 0);
});

test('msToDuration splits milliseconds into bigint seconds and nanos', (t) => {
  t.deepEqual(msToDuration(0), { seconds: 0n, nanos: 0 });
  t.deepEqual(msToDuration(5_000), { seconds: 5n, nanos: 0 });
  t.deepEqual(msToDuration(1_250), { seconds: 1n, nanos: 250_000_000 });
  t.deepEqual(msToDuration(999), { seconds: 0n, nanos: 999_000_000 });
  t.is(typeof msToDuration(3_600_000).seconds, 'bigint');
});

test('msToDuration and durationToMs round-trip whole milliseconds', (t) => {
  for (const ms of [0, 1, 999, 1_000, 1_001, 90_500, 3_600_000, 604_800_000]) {
    t.is(durationToMs(msToDuration(ms)), ms, String(ms));
  }
});

test('parseBytes reads binary units, case-insensitively', (t) => {
  t.is(parseBytes('512m'), 536_870_912);
  t.is(parseBytes('2g'), 2_147_483_648);
  t.is(parseBytes('1024'), 1_024);
  t.is(parseBytes('1.5k'), 1_536);
  t.is(parseBytes('2GiB'), 2_147_483_648);
  t.is(parseBytes('256MB'), 268_435_456);
  t.is(parseBytes('1t'), 1_099_511_627_776);
  t.is(parseBytes('10b'), 10);
  t.is(parseBytes(' 64 kib '), 65_536);
});

test('parseBytes refuses text that is not a size', (t) => {
  for (const bad of ['abc', '', '5x', '1.5.2m', 'm', '2 gigabytes', '1p']) {
    t.throws(() => parseBytes(bad), { message: /is not a size; use e\.g\. 256m/ }, JSON.stringify(bad));
  }
});

test('formatBytes uses the largest binary unit, with one decimal when fractional', (t) => {
  t.is(formatBytes(0), '0 B');
  t.is(formatBytes(1023), '1023 B');
  t.is(formatBytes(1024), '1 KiB');
  t.is(formatBytes(1536), '1.5 KiB');
  t.is(formatBytes(536_870_912), '512 MiB');
  t.is(formatBytes(6_291_456), '6 MiB');
  t.is(formatBytes(1_099_511_627_776), '1 TiB');
  t.is(formatBytes(2 ** 60), '1 EiB');
  t.is(formatBytes(-1024), '-1 KiB');
  t.is(formatBytes(-1), '-1 B');
});

test('safeNumber converts int64 values that fit exactly, and refuses the rest', (t) => {
  t.is(safeNumber(0n), 0);
  t.is(safeNumber(-1n), -1);
  t.is(safeNumber(2n ** 53n - 1n), 9_007_199_254_740_991);
  t.is(safeNumber(-(2n ** 53n - 1n)), -9_007_199_254_740_991);
  t.is(safeNumber(2n ** 53n), undefined);
  t.is(safeNumber(2n ** 60n), undefined);
  t.is(safeNumber(-(2n ** 60n)), undefined);
});
