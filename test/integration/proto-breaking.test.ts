// buf breaking guards the contract clients generate from: proto/ must stay
// wire- and source-compatible with the previous commit's (buf's FILE rules),
// and the check is shown to bite: a copy of proto/ with a field removed fails it.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const buf = (args: string[]) => spawnSync(join(REPO, 'node_modules/.bin/buf'), args, { cwd: REPO, encoding: 'utf8' });

test('proto/ breaks nothing of the previous commit\'s', (t) => {
  const previous = spawnSync('git', ['rev-parse', '--verify', 'HEAD~1'], { cwd: REPO, encoding: 'utf8' });
  if (previous.status !== 0) return t.fail(`no previous commit to compare with (a shallow clone?): ${previous.stderr}`);
  const run = buf(['breaking', 'proto', '--against', '.git#ref=HEAD~1,subdir=proto']);
  t.is(run.status, 0, run.stdout + run.stderr);
});

test('the check fails for a copy of proto/ with a field removed', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grid-proto-'));
  try {
    cpSync(join(REPO, 'proto'), dir, { recursive: true });
    const file = join(dir, 'grid/v1/job.proto');
    const text = readFileSync(file, 'utf8');
    const removed = text.replace(/^\s*string waiting_reason = 17;\n/m, '');
    t.not(removed, text, 'the field to remove is there');
    writeFileSync(file, removed);
    const run = buf(['breaking', dir, '--against', 'proto']);
    t.not(run.status, 0);
    t.regex(run.stdout + run.stderr, /Previously present field "17" with name "waiting_reason" on message "Job" was deleted/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
