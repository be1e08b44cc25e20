// Input and output files end to end: a directory of files (one binary) goes in
// under /grid/in, the job writes files under /grid/out, and `gridctl outputs`
// brings them back byte for byte. Both directions are size-capped with a message.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase } from '../helpers/postgres.js';
import {
  clients,
  gridctl,
  startAgent,
  startControlPlane,
  waitForNodes,
  useGrid,
} from '../helpers/grid.js';

const NODE = `files-${process.pid}`;
const grid = useGrid(test, { nodeId: NODE, controlPlaneArgs: ['--max-inputs', '4m', '--max-output-files', '3m'] });

test.serial('input and output files round-trip byte for byte (a directory of several files, one binary)', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'grid-files-'));
  const binary = randomBytes(300_000);
  mkdirSync(join(work, 'data', 'nested'), { recursive: true });
  writeFileSync(join(work, 'data', 'table.csv'), 'a,b\n1,2\n');
  writeFileSync(join(work, 'data', 'nested', 'blob.bin'), binary);
  writeFileSync(join(work, 'notes.txt'), 'just one file\n');
  writeFileSync(
    join(work, 'job.sh'),
    [
      'set -e',
      'ls -R /grid/in > /grid/out/listing.txt',
      'cp -r /grid/in/data /grid/out/copy',
      'cat /grid/in/notes.txt /grid/in/data/table.csv > /grid/out/joined.txt',
      'echo done',
    ].join('\n'),
  );
  const run = await gridctl(grid.cp.address, ['run', 'job.sh', '--input', 'data/', '--input', 'notes.txt'], { cwd: work });
  t.is(run.code, 0, run.stderr.toString());
  t.is(run.stdout.toString(), 'done\n');
  const jobId = JSON.parse((await gridctl(grid.cp.address, ['list', '-o', 'json'])).stdout.toString())[0].id;

  const status = await gridctl(grid.cp.address, ['status', jobId]);
  t.regex(status.stdout.toString(), /^Files:\s+4 under \/grid\/out/m);
  t.regex(status.stdout.toString(), /293 KiB\s+copy\/nested\/blob\.bin$/m);

  const dest = join(work, 'fetched');
  const fetched = await gridctl(grid.cp.address, ['outputs', jobId, '--dest', dest]);
  t.is(fetched.code, 0, fetched.stderr.toString());
  t.deepEqual(readFileSync(join(dest, 'copy', 'nested', 'blob.bin')), binary);
  t.is(readFileSync(join(dest, 'copy', 'table.csv'), 'utf8'), 'a,b\n1,2\n');
  t.is(readFileSync(join(dest, 'joined.txt'), 'utf8'), 'just one file\na,b\n1,2\n');
  t.regex(readFileSync(join(dest, 'listing.txt'), 'utf8'), /job\.sh/);
});

test.serial('inputs above the server limit are refused at submit; outputs above it are reported, not kept', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'grid-files-'));
  writeFileSync(join(work, 'big.bin'), randomBytes(5 * 1024 * 1024));
  const tooBig = await gridctl(grid.cp.address, ['run', '--input', 'big.bin', '--', 'true'], { cwd: work });
  t.is(tooBig.code, 125);
  t.regex(tooBig.stderr.toString(), /spec\.inputs add up to more than this server's limit of 4 MiB/);

  const many = await gridctl(grid.cp.address, ['run', '--', 'sh', '-c', 'head -c 4194304 /dev/urandom > /grid/out/big.bin']);
  t.is(many.code, 0);
  const jobId = JSON.parse((await gridctl(grid.cp.address, ['list', '-o', 'json'])).stdout.toString())[0].id;
  const status = await gridctl(grid.cp.address, ['status', jobId]);
  t.regex(status.stdout.toString(), /^Files:\s+none kept: the files under \/grid\/out are more than this server's limit of 3145728 bytes/m);
  const fetch = await gridctl(grid.cp.address, ['outputs', jobId, '--dest', join(work, 'x')]);
  t.is(fetch.code, 125);
  t.regex(fetch.stderr.toString(), /has no output files: the files under \/grid\/out are more than/);

  const none = await gridctl(grid.cp.address, ['run', '-d', '--', 'true']);
  await gridctl(grid.cp.address, ['logs', '-f', none.stdout.toString().trim()]);
  const empty = await gridctl(grid.cp.address, ['outputs', none.stdout.toString().trim()]);
  t.regex(empty.stderr.toString(), /has no output files \(it wrote nothing under \/grid\/out\)/);
});

/** A minimal wheel, built here (no network): gridhello 1.0 with one module. */
function buildWheel(dir: string): void {
  const script = String.raw`
import base64, hashlib, sys, zipfile
files = {
    'gridhello/__init__.py': 'GREETING = "hello from a wheel"\n',
    'gridhello-1.0.dist-info/METADATA': 'Metadata-Version: 2.1\nName: gridhello\nVersion: 1.0\n',
    'gridhello-1.0.dist-info/WHEEL': 'Wheel-Version: 1.0\nGenerator: grid-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
}
record = []
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    for name, text in files.items():
        data = text.encode()
        z.writestr(name, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
        record.append(f'{name},sha256={digest},{len(data)}')
    record.append('gridhello-1.0.dist-info/RECORD,,')
    z.writestr('gridhello-1.0.dist-info/RECORD', '\n'.join(record) + '\n')
`;
  mkdirSync(join(dir, 'wheels'), { recursive: true });
  execFileSync('python3', ['-c', script, join(dir, 'wheels', 'gridhello-1.0-py3-none-any.whl')]);
}

test.serial('a python script with a requirements.txt beside it installs from a local wheelhouse; the second run skips the install', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'grid-req-'));
  buildWheel(work);
  writeFileSync(join(work, 'hello.py'), 'import gridhello\nprint(gridhello.GREETING)\n');
  // A token of this run makes the requirements new to the node's cache, whatever ran before.
  writeFileSync(
    join(work, 'requirements.txt'),
    `# run ${randomBytes(6).toString('hex')}\n--no-index\n--find-links /grid/in/wheels\ngridhello==1.0\n`,
  );
  const first = await gridctl(grid.cp.address, ['run', 'hello.py', '--input', 'wheels'], { cwd: work });
  t.is(first.code, 0, first.stderr.toString());
  t.is(first.stdout.toString(), 'hello from a wheel\n');
  t.regex(first.stderr.toString(), /grid: installing requirements/);
  const second = await gridctl(grid.cp.address, ['run', 'hello.py', '--input', 'wheels'], { cwd: work });
  t.is(second.code, 0, second.stderr.toString());
  t.is(second.stdout.toString(), 'hello from a wheel\n');
  t.notRegex(second.stderr.toString(), /installing/);

  writeFileSync(join(work, 'job.sh'), 'echo hi\n');
  const refused = await gridctl(grid.cp.address, ['run', '--requirements', 'requirements.txt', 'job.sh'], { cwd: work });
  t.is(refused.code, 125);
  t.regex(refused.stderr.toString(), /spec\.requirements needs a runtime that installs them \(python\); "sh" does not/);
});

test.serial('an agent with an image policy ends a job with another image IMAGE_UNAVAILABLE, saying why', async (t) => {
  const other = await createTestDatabase();
  const strictCp = await startControlPlane(other.url);
  const strictApi = clients(strictCp.address);
  const strict = startAgent(strictCp.address, `strict-${process.pid}`, ['--allowed-images', 'grid-test/busybox']);
  try {
    await waitForNodes(strictApi, [`strict-${process.pid}`]);
    const refused = await gridctl(strictCp.address, ['run', '--image', 'grid-test/python:3', '--', 'true']);
    t.is(refused.code, 121);
    t.regex(refused.stderr.toString(), /IMAGE_UNAVAILABLE\): image grid-test\/python:3 is not allowed on this node \(allowed: grid-test\/busybox\)/);
    const allowed = await gridctl(strictCp.address, ['run', '--', 'echo', 'ok']);
    t.is(allowed.stdout.toString(), 'ok\n');
  } finally {
    strictApi.close();
    await strict.stop();
    await strictCp.stop();
    await other.drop();
  }
});
