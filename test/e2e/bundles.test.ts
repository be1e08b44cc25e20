// What a production host installs: dist/bundle/grid-agent.mjs and
// grid-control-plane.mjs, copied alone into an empty directory (no
// node_modules, no repository above them), start against PostgreSQL and Docker
// and run a job. A bundled control plane without a database URL says what to give.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { clients, commandSpec, jobWhenEnded, startAgent, startControlPlane, storedLogs, waitForNodes } from '../helpers/grid.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const BUNDLES = fileURLToPath(new URL('../../dist/bundle/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'grid-bundles-'));
let db: TestDatabase;

test.before(async () => {
  db = await createTestDatabase();
  for (const file of ['grid-agent.mjs', 'grid-control-plane.mjs']) copyFileSync(join(BUNDLES, file), join(dir, file));
});
test.after.always(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

test.serial('the bundles alone start, connect and run a job', async (t) => {
  const cp = await startControlPlane(db.url, [], {}, join(dir, 'grid-control-plane.mjs'));
  const node = `bundled-${process.pid}`;
  const agent = startAgent(cp.address, node, [], join(dir, 'grid-agent.mjs'));
  const api = clients(cp.address);
  try {
    await waitForNodes(api, [node]);
    const { job } = await api.jobs.submitJob({ spec: commandSpec(['echo', 'from a bundle']), requestId: '' });
    const ended = await jobWhenEnded(api, job!.id, 30_000);
    t.is(JobState[ended.state], 'JOB_STATE_SUCCEEDED', ended.message);
    t.is(ended.nodeId, node);
    t.is(await storedLogs(api, job!.id, 1), 'from a bundle\n');
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
  }
});

test.serial('a bundled control plane with no database URL names the flag to give', (t) => {
  const run = spawnSync(process.execPath, [join(dir, 'grid-control-plane.mjs'), '--listen', '127.0.0.1:0', '--plaintext', '--data-dir', join(dir, 'data')], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: dir },
    encoding: 'utf8',
    timeout: 20_000,
  });
  t.not(run.status, 0);
  t.regex(run.stderr, /no embedded PostgreSQL .*--database-url/);
});

test.serial('each bundle answers --version without anything beside it', (t) => {
  for (const file of ['grid-agent.mjs', 'grid-control-plane.mjs']) {
    const run = spawnSync(process.execPath, [join(dir, file), '--version'], { cwd: dir, encoding: 'utf8' });
    t.is(run.status, 0, run.stderr);
    t.regex(run.stdout, /^\d+\.\d+\.\d+/);
  }
});
