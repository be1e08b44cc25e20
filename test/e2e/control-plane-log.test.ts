// The control plane's stderr is NDJSON from its first line to its last (jq and
// log collectors read it whole), and a job's end is one line with its reason,
// job id, attempt and node.
import test, { type ExecutionContext } from 'ava';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { BIN, clients, freePort, gridctl, startAgent, startControlPlane, startProgram, testRuntimesFile, waitForNodes } from '../helpers/grid.js';

// Each test has its own database: control planes sharing one would dispatch
// a job submitted to one test's control plane to another test's agent.
async function databaseFor(t: ExecutionContext): Promise<TestDatabase> {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  return db;
}

test('every line is JSON, and each ended job has its "job ended" line', async (t) => {
  const db = await databaseFor(t);
  const cp = await startControlPlane(db.url);
  const agent = startAgent(cp.address, 'log-node');
  const api = clients(cp.address);
  try {
    await waitForNodes(api, ['log-node']);
    t.is((await gridctl(cp.address, ['run', '--', 'true'])).code, 0);
    t.is((await gridctl(cp.address, ['run', '--', 'sh', '-c', 'exit 3'])).code, 3);
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
  }
  const lines = cp.output().trimEnd().split('\n');
  const parsed = lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  });
  t.deepEqual(lines.filter((_, i) => parsed[i] === undefined), [], 'lines that are not JSON');
  const ended = parsed.filter((l) => l?.msg === 'job ended');
  t.deepEqual(
    ended.map((l) => [l!.state, l!.reason, l!.exit_code, l!.attempt, l!.node, typeof l!.job_id]),
    [
      ['SUCCEEDED', 'SUCCEEDED', 0, 1, 'log-node', 'string'],
      ['FAILED', 'FAILED', 3, 1, 'log-node', 'string'],
    ],
  );
  t.truthy(parsed.find((l) => l?.msg === 'serving' && typeof l.address === 'string'));
});

test('Ctrl-C on a control plane with a local agent stops it quietly: no warning, the node recorded disconnected, its labels as given', async (t) => {
  const db = await databaseFor(t);
  const cp = await startControlPlane(db.url, ['--local-agent', '--docker-socket', '/var/run/docker.sock']);
  const api = clients(cp.address);
  try {
    for (const until = Date.now() + 20_000; (await api.nodes.listNodes({})).nodes.length === 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 100));
    // Labels come back as they were given (they were stored as a JSON string of the JSON, and listed as its characters).
    t.deepEqual((await api.nodes.listNodes({})).nodes[0]!.labels, { local: 'true' });
  } finally {
    api.close();
  }
  await cp.stop('SIGINT');
  t.is(cp.child.exitCode, 0);
  const warnings = cp.output().split('\n').filter((l) => /"level":(40|50)/.test(l));
  t.deepEqual(warnings, []);
  const [node] = await db.sql<{ state: string }[]>`SELECT state FROM nodes WHERE labels->>'local' = 'true'`;
  t.is(node?.state, 'DISCONNECTED');
});

test('a job that cannot start is one agent line with its reason, no stack (unless debug)', async (t) => {
  const db = await databaseFor(t);
  const cp = await startControlPlane(db.url);
  const agent = startAgent(cp.address, 'no-pull-node', ['--pull', 'never']);
  const api = clients(cp.address);
  try {
    await waitForNodes(api, ['no-pull-node']);
    const run = await gridctl(cp.address, ['run', '--image', 'grid-test/not-here:1', '--', 'true']);
    t.is(run.code, 121, run.stderr.toString());
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
  }
  const lines = agent.output().split('\n').filter((l) => l.includes('task did not start'));
  t.is(lines.length, 1);
  t.regex(lines[0]!, /"level":30.*"reason":"END_REASON_IMAGE_UNAVAILABLE".*"why":"image grid-test\/not-here:1 is not on node/);
  t.false(lines[0]!.includes('"stack"'));
});

test('--log-format pretty is one readable line per entry, not JSON; with NO_COLOR, no escape byte', async (t) => {
  const db = await databaseFor(t);
  const port = await freePort();
  const cp = startProgram(
    process.execPath,
    [BIN.controlPlane, '--listen', `127.0.0.1:${port}`, '--log-format', 'pretty', '--runtimes', testRuntimesFile()],
    { GRID_DATABASE_URL: db.url, GRID_PLAINTEXT: '1', GRID_LOG_LEVEL: 'info', NO_COLOR: '1' },
    'control-plane',
  );
  try {
    for (const until = Date.now() + 30_000; !/serving/.test(cp.output()) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 100));
  } finally {
    await cp.stop();
  }
  const out = cp.output();
  t.log(out.split('\n').slice(-6).join('\n'));
  t.regex(out, /^\[[\d:.]+\] INFO: grid-control-plane: serving \{"address":"127\.0\.0\.1:\d+"/m, 'one line, its fields on it');
  t.false(out.split('\n').some((l) => l.trimStart().startsWith('{"')), 'no JSON line');
  t.false(out.includes('\x1b'), 'NO_COLOR: no escape bytes');
});
