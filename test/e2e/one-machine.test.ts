// The README's first command in miniature: a control plane with no database URL
// starts an embedded PostgreSQL and a local agent, runs a job, and keeps its
// data across a restart. And a host without Docker gets told what to do.
import test from 'ava';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, BUSYBOX, gridctl, startControlPlane } from '../helpers/grid.js';

test.serial('with no database configured, an embedded PostgreSQL keeps jobs across a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grid-embedded-'));
  // As root the embedded PostgreSQL runs as `postgres`, which must be able to enter the directory.
  chmodSync(dir, 0o755);
  const dataDir = join(dir, 'data');
  const args = ['--local-agent', '--data-dir', dataDir];
  let cp = await startControlPlane('', args, { GRID_DATABASE_URL: '' });
  let jobId: string;
  try {
    const run = await gridctl(cp.address, ['run', '--image', BUSYBOX, '--', 'echo', 'from embedded']);
    t.is(run.code, 0, run.stderr.toString() + cp.output());
    t.is(run.stdout.toString(), 'from embedded\n');
    jobId = JSON.parse((await gridctl(cp.address, ['list', '-o', 'json'])).stdout.toString())[0].id;
    t.regex(cp.output(), /embedded PostgreSQL started/);
  } finally {
    await cp.stop();
  }
  cp = await startControlPlane('', args, { GRID_DATABASE_URL: '' });
  try {
    t.notRegex(cp.output(), /creating embedded PostgreSQL data directory/);
    const status = await gridctl(cp.address, ['status', jobId, '-o', 'json']);
    t.is(JSON.parse(status.stdout.toString()).state, 'JOB_STATE_SUCCEEDED');
    const logs = await gridctl(cp.address, ['logs', jobId]);
    t.is(logs.stdout.toString(), 'from embedded\n');
  } finally {
    await cp.stop();
  }
});

test('an agent that cannot reach Docker says so plainly and how to fix it', async (t) => {
  const child = spawn(process.execPath, [BIN.agent, '--docker-socket', '/nonexistent/docker.sock', '--node-id', 'no-docker'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  t.is(code, 1);
  t.regex(stderr, /cannot reach the Docker engine at \/nonexistent\/docker\.sock/);
  t.regex(stderr, /apt-get install -y docker\.io/);
});

test('each of the three executables answers --help, naming its GRID_* variables', async (t) => {
  for (const [bin, variable] of [
    [BIN.gridctl, 'GRID_SERVER'],
    [BIN.controlPlane, 'GRID_DATABASE_URL'],
    [BIN.agent, 'GRID_NODE_ID'],
  ] as const) {
    const child = spawn(process.execPath, [bin, ...(bin === BIN.gridctl ? ['run', '--help'] : ['--help'])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    t.is(code, 0, bin);
    t.true(out.includes(bin === BIN.gridctl ? '--timeout' : variable), `${bin} --help: ${out}`);
  }
  const top = spawn(process.execPath, [BIN.gridctl, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  top.stdout.on('data', (d) => (out += d));
  await new Promise((resolve) => top.once('exit', resolve));
  t.regex(out, /GRID_SERVER/);
  t.regex(out, /124 timed out/);
});
