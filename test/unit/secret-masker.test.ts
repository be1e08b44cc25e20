// Secret values never leave the node in a job's output, however the writes split them.
import test from 'ava';
import { LogStream } from '../../common/gen/grid/v1/job.js';
import { maskSecrets } from '../../agent/secret-masker.js';

function run(values: string[], writes: [LogStream, string][]): Record<number, string> {
  const out: Record<number, string> = { 1: '', 2: '' };
  const masker = maskSecrets(values, (stream, data) => (out[stream] += data.toString()));
  for (const [stream, text] of writes) masker.sink(stream, Buffer.from(text));
  masker.flush();
  return out;
}

const OUT = LogStream.LOG_STREAM_STDOUT;
const ERR = LogStream.LOG_STREAM_STDERR;

test('a secret is masked with as many stars as it has bytes', (t) => {
  t.deepEqual(run(['s3cr3t'], [[OUT, 'token=s3cr3t and again s3cr3t\n']]), { 1: 'token=****** and again ******\n', 2: '' });
});

test('a secret split across writes, and across every split point, is masked', (t) => {
  const line = 'x s3cr3t y\n';
  for (let cut = 0; cut <= line.length; cut++) {
    t.is(run(['s3cr3t'], [[OUT, line.slice(0, cut)], [OUT, line.slice(cut)]])[1], 'x ****** y\n', `cut at ${cut}`);
  }
  t.is(run(['s3cr3t'], [...'s3cr3t'].map((c) => [OUT, c] as [LogStream, string]))[1], '******');
});

test('streams are masked apart, and a prefix held back at the end is sent', (t) => {
  t.deepEqual(run(['abcdef'], [[OUT, 'abc'], [ERR, 'def'], [OUT, 'xyz']]), { 1: 'abcxyz', 2: 'def' });
  t.deepEqual(run(['abcdef'], [[OUT, 'the end: abc']]), { 1: 'the end: abc', 2: '' });
});

test('with no secrets the output passes untouched', (t) => {
  t.deepEqual(run([''], [[OUT, 'plain']]), { 1: 'plain', 2: '' });
});

test('overlapping secrets are masked whole, each of them', (t) => {
  t.is(run(['abcd', 'cdxy'], [[OUT, '-abcdxy-']])[1], '-******-');
  t.is(run(['aaa'], [[OUT, 'aaaa']])[1], '****');
});

test('holding back stays cheap with a long secret and many small writes', (t) => {
  const secret = 'q'.repeat(60_000);
  const started = performance.now();
  const out = run([secret], Array.from({ length: 2000 }, () => [OUT, 'ab\n'] as [LogStream, string]));
  t.is(out[1], 'ab\n'.repeat(2000));
  t.log(`${(performance.now() - started).toFixed(0)} ms for 2000 writes against a 60 kB secret`);
});
