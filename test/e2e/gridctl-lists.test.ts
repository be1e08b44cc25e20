// gridctl for scripts: -q prints ids alone, --no-headers drops the header,
// cancel takes several ids (reporting a bad one and cancelling the rest), and
// --log-level debug shows an error's stack.
import test from 'ava';
import { parse as parseYaml } from 'yaml';
import { JobState } from '../../common/gen/grid/v1/job.js';
import { commandSpec, gridctl, jobWhenEnded, useGrid } from '../helpers/grid.js';

const grid = useGrid(test, { nodeId: 'lists-node' });

test.serial('list -q gives the ids that cancel takes, several at once', async (t) => {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await grid.api.jobs.submitJob({ spec: commandSpec(['sleep', '60']), requestId: '' })).job!.id);
  const quiet = await gridctl(grid.cp.address, ['list', '-q', '--state', 'queued,assigned,running']);
  t.deepEqual(quiet.stdout.toString().trim().split('\n').sort(), [...ids].sort());
  const cancel = await gridctl(grid.cp.address, ['cancel', '--grace', '0s', ...ids.map((id) => id.slice(-12, -4)), 'ffffffffffff']);
  t.is(cancel.code, 125, 'one of them was unknown');
  t.regex(cancel.stderr.toString(), /gridctl: ffffffffffff: no job's short id starts with ffffffffffff/);
  for (const id of ids) t.is((await jobWhenEnded(grid.api, id, 30_000)).state, JobState.JOB_STATE_CANCELLED);
});

test.serial('--no-headers drops the header line; nodes -q prints node ids', async (t) => {
  const table = (await gridctl(grid.cp.address, ['nodes'])).stdout.toString();
  const bare = (await gridctl(grid.cp.address, ['nodes', '--no-headers'])).stdout.toString();
  t.regex(table, /^ID\s+NAME/);
  t.regex(bare, /^lists-node\s+lists-node\s+READY/);
  t.is(bare.split('\n').length, table.split('\n').length - 1);
  t.is((await gridctl(grid.cp.address, ['nodes', '-q'])).stdout.toString(), 'lists-node\n');
});

test('--log-level debug adds the stack to an error', async (t) => {
  const plain = await gridctl(grid.cp.address, ['status', 'ffffffffffff']);
  const debug = await gridctl(grid.cp.address, ['--log-level', 'debug', 'status', 'ffffffffffff']);
  t.is(plain.code, 125);
  t.notRegex(plain.stderr.toString(), /\n\s+at /);
  t.regex(debug.stderr.toString(), /\n\s+at /);
});

test('version shows the client\'s and the server\'s', async (t) => {
  const text = await gridctl(grid.cp.address, ['version']);
  t.is(text.code, 0, text.stderr.toString());
  t.regex(text.stdout.toString(), /^client: \d+\.\d+\.\d+\nserver: \d+\.\d+\.\d+ at 127\.0\.0\.1:\d+\n$/);
  const json = JSON.parse((await gridctl(grid.cp.address, ['version', '-o', 'json'])).stdout.toString());
  t.is(json.client, json.server);
  t.is((await gridctl('127.0.0.1:9', ['version', '--client'])).code, 0);
});

test('list fits 80 columns (wide does not), and filters by node and by age', async (t) => {
  const long = Array.from({ length: 30 }, (_, i) => `argument-${i}`);
  const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['echo', ...long]), requestId: '' });
  await jobWhenEnded(grid.api, job!.id, 30_000);
  const table = (await gridctl(grid.cp.address, ['list'])).stdout.toString();
  for (const line of table.trimEnd().split('\n')) t.true(line.length <= 80, `${line.length}: ${line}`);
  const wide = (await gridctl(grid.cp.address, ['list', '-o', 'wide'])).stdout.toString();
  t.true(wide.includes(job!.id) && wide.includes('argument-29'));
  const onNode = (await gridctl(grid.cp.address, ['list', '-q', '--node', 'lists-node'])).stdout.toString();
  t.true(onNode.includes(job!.id));
  t.is((await gridctl(grid.cp.address, ['list', '-q', '--node', 'no-such-node'])).stdout.toString(), '');
  t.true((await gridctl(grid.cp.address, ['list', '-q', '--since', '1m'])).stdout.toString().includes(job!.id));
  await new Promise((r) => setTimeout(r, 1100));
  t.false((await gridctl(grid.cp.address, ['list', '-q', '--since', '1s'])).stdout.toString().includes(job!.id));
});

test('-o yaml carries the same fields as -o json', async (t) => {
  const { job } = await grid.api.jobs.submitJob({ spec: commandSpec(['true']), requestId: '' });
  await jobWhenEnded(grid.api, job!.id, 30_000);
  const asJson = JSON.parse((await gridctl(grid.cp.address, ['status', job!.id, '-o', 'json'])).stdout.toString());
  const asYaml = parseYaml((await gridctl(grid.cp.address, ['status', job!.id, '-o', 'yaml'])).stdout.toString());
  t.deepEqual(asYaml, asJson);
  t.deepEqual(parseYaml((await gridctl(grid.cp.address, ['nodes', '-o', 'yaml'])).stdout.toString()).map((n: { id: string }) => n.id), ['lists-node']);
});
