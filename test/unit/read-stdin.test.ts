// gridctl run --stdin reads its standard input to the end, within a bound.
import test from 'ava';
import { Readable } from 'node:stream';
import { readStdin } from '../../cli/inputs.js';

test('the whole input, in order, from several chunks', async (t) => {
  t.is((await readStdin(Readable.from([Buffer.from('a\n'), Buffer.from('b\n')]), 10)).toString(), 'a\nb\n');
});

test('past the bound: an error saying what to do instead, not a job with part of it', async (t) => {
  await t.throwsAsync(readStdin(Readable.from([Buffer.alloc(6), Buffer.alloc(6)]), 10), { message: /more than .* MiB: pass a file with --input instead/ });
});
