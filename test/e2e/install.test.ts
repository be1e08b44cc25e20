// scripts/install.sh from the package `npm run package` builds, run against a
// scratch root (this machine has no running systemd to start units with): it
// lays out the programs, the units (verified by systemd-analyze), the `grid`
// user and the settings from its flags. systemd is then mocked: each installed
// unit's ExecStart is started with its Environment= and EnvironmentFile=, as
// systemd would, and the installed control plane, agent and gridctl run a job.
import test from 'ava';
import Docker from 'dockerode';
import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUSYBOX, clients, freePort, startProgram, until, waitForNodes, type RunningProcess } from '../helpers/grid.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'grid-install-'));
const root = join(work, 'root');
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
let db: TestDatabase;
let installer: string;

test.before(async () => {
  db = await createTestDatabase();
  const tarball = execFileSync('bash', [join(REPO, 'scripts/package.sh'), work], { encoding: 'utf8' }).trim().split('\n').pop()!;
  execFileSync('tar', ['-C', work, '-xzf', tarball]);
  installer = join(work, `grid-${JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version}`, 'install.sh');
  mkdirSync(root);
});
test.after.always(async () => {
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

const install = (args: string[]) => spawnSync('bash', [installer, ...args, '--root', root], { encoding: 'utf8' });

/** What systemd would run for an installed unit: its ExecStart, with the unit's environment; paths of the install under the scratch root. */
function asSystemdWould(unit: string, name: string): RunningProcess {
  const text = readFileSync(join(root, 'etc/systemd/system', unit), 'utf8');
  const values = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);
  const inRoot = (value: string) => (/^\/(usr\/lib\/grid|var\/lib|etc\/grid)\b/.test(value) ? join(root, value) : value);
  const env: Record<string, string> = {};
  for (const line of values('Environment')) env[line.slice(0, line.indexOf('='))] = inRoot(line.slice(line.indexOf('=') + 1));
  for (const file of values('EnvironmentFile')) {
    for (const line of readFileSync(join(root, file.replace(/^-/, '')), 'utf8').split('\n')) {
      if (/^[A-Z_][A-Z0-9_]*=/.test(line)) env[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  for (const dir of values('StateDirectory')) mkdirSync((env.STATE_DIRECTORY = join(root, 'var/lib', dir)), { recursive: true });
  const [program, ...args] = values('ExecStart')[0]!.split(' ');
  return startProgram(program!, args.map(inRoot), { GRID_LOG_LEVEL: 'info', ...env }, name);
}

test.serial('install.sh lays out a control plane and an agent whose units verify, and they run a job', async (t) => {
  const listen = `127.0.0.1:${await freePort()}`;
  const node = `installed-${process.pid}`;
  const cpInstall = install(['control-plane', '--database-url', db.url, '--set', `GRID_LISTEN=${listen}`, '--set', 'GRID_PLAINTEXT=1']);
  t.is(cpInstall.status, 0, cpInstall.stderr);
  const agentInstall = install(['agent', '--server', listen, '--set', `GRID_NODE_ID=${node}`, '--set', 'GRID_DRAIN_DEADLINE=0s']);
  t.is(agentInstall.status, 0, agentInstall.stderr);
  t.log(cpInstall.stdout + agentInstall.stdout);

  // What the host gets.
  for (const file of ['usr/lib/grid/grid-agent.mjs', 'usr/lib/grid/grid-control-plane.mjs', 'usr/lib/grid/dist/bundle/gridctl.cjs']) t.true(statSync(join(root, file)).isFile(), file);
  t.is(readlinkSync(join(root, 'usr/bin/gridctl')), '/usr/lib/grid/bin/gridctl.cjs');
  t.regex(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^grid:x:\d+:\d+:Grid control plane:\/var\/lib\/grid:\/usr\/sbin\/nologin$/m);
  for (const unit of ['grid-agent.service', 'grid-control-plane.service']) {
    t.true(lstatSync(join(root, 'etc/systemd/system/multi-user.target.wants', unit)).isSymbolicLink(), `${unit} is enabled`);
    t.regex(readFileSync(join(root, 'etc/systemd/system', unit), 'utf8'), new RegExp(`^ExecStart=/\\S+/node /usr/lib/grid/${unit.replace('.service', '.mjs')}$`, 'm'));
  }
  const verify = spawnSync('systemd-analyze', ['verify', ...['grid-agent.service', 'grid-control-plane.service'].map((u) => join(root, 'etc/systemd/system', u))], { encoding: 'utf8' });
  t.is(verify.status, 0, verify.stderr);
  t.is(verify.stderr, '', 'systemd-analyze verify has nothing to say');
  const security = spawnSync('systemd-analyze', ['security', '--offline=true', join(root, 'etc/systemd/system/grid-control-plane.service')], { encoding: 'utf8' });
  const exposure = Number(/Overall exposure level for grid-control-plane\.service: ([\d.]+)/.exec(security.stdout)?.[1]);
  t.log(`systemd-analyze security: the control plane's exposure is ${exposure}`);
  t.true(exposure < 5, `exposure ${exposure} (systemd-analyze security), below 5 wanted`);
  t.is(statSync(join(root, 'etc/grid/agent.env')).mode & 0o777, 0o600);
  t.is(statSync(join(root, 'etc/grid/control-plane.env')).mode & 0o777, 0o640, 'readable by the grid group: it holds the database password');
  t.regex(readFileSync(join(root, 'etc/grid/agent.env'), 'utf8'), new RegExp(`^GRID_SERVER=${listen}$`, 'm'));

  // An upgrade keeps the settings and changes the one given.
  const again = install(['agent', '--upgrade', '--set', 'GRID_SLOTS=1']);
  t.is(again.status, 0, again.stderr);
  const settings = readFileSync(join(root, 'etc/grid/agent.env'), 'utf8');
  t.regex(settings, new RegExp(`^GRID_SERVER=${listen}$`, 'm'));
  t.regex(settings, /^GRID_SLOTS=1$/m);

  const cp = asSystemdWould('grid-control-plane.service', 'installed-control-plane');
  const agent = asSystemdWould('grid-agent.service', 'installed-agent');
  const api = clients(listen);
  try {
    await until('the installed control plane serves', () => api.nodes.listNodes({ pageSize: 0, pageToken: '' }).then(() => true, () => false), 30_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${cp.output()}`);
    });
    await waitForNodes(api, [node], 30_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${agent.output()}`);
    });
    const gridctl = spawnSync(process.execPath, [join(root, 'usr/lib/grid/bin/gridctl.cjs'), 'run', '--image', BUSYBOX, '--', 'echo', 'installed'], {
      env: { ...process.env, GRID_SERVER: listen },
      encoding: 'utf8',
      timeout: 30_000,
    });
    t.is(gridctl.status, 0, gridctl.stderr);
    t.is(gridctl.stdout, 'installed\n');
  } finally {
    api.close();
    await agent.stop();
    await cp.stop();
    for (const c of await docker.listContainers({ all: true, filters: { label: [`dev.grid.node-id=${node}`] } })) await docker.getContainer(c.Id).remove({ force: true });
  }
});

test.serial('install.sh refuses what it cannot do, saying what to do instead', (t) => {
  const cases: [string[], RegExp][] = [
    [['agent', '--database-url', 'postgres://x'], /--database-url is a control plane's setting/],
    [['worker'], /the first argument is the role, agent or control-plane/],
    [['agent', '--set', 'server=x'], /--set takes GRID_NAME=VALUE/],
    [['agent', '--keep-jobs'], /--keep-jobs goes with --upgrade/],
    [['agent', '--set', 'GRID_SLOTS=1\nGRID_EVIL=1'], /--set GRID_SLOTS: a value cannot hold a line break/],
  ];
  for (const [args, why] of cases) {
    const run = install(args);
    t.not(run.status, 0, args.join(' '));
    t.regex(run.stderr, why);
  }
  const fresh = spawnSync('bash', [installer, 'agent', '--upgrade', '--root', join(work, 'empty-root')], { encoding: 'utf8' });
  t.regex(fresh.stderr, /is not installed here yet/);
});
