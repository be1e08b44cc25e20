// The README's first command as a newcomer runs it: `npm start` (scripts/start-local.sh)
// on a machine that can pull no image runs a script of every built-in runtime,
// and Ctrl-C in its terminal stops it with one plain line.
import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, gridctl, workdir } from '../helpers/grid.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('npm start runs a .sh, .bash, .js and .py script offline, and Ctrl-C stops it with one plain line', async (t) => {
  t.timeout(240_000);
  const dir = mkdtempSync(join(tmpdir(), 'grid-npm-start-'));
  chmodSync(dir, 0o755); // as root the embedded PostgreSQL runs as `postgres`
  const address = `127.0.0.1:${await freePort()}`;
  // detached: its own process group, like a terminal's foreground job.
  const env: NodeJS.ProcessEnv = { ...process.env, GRID_LISTEN: address, GRID_DATA_DIR: join(dir, 'data'), GRID_DATABASE_URL: '' };
  delete env.GRID_LOG_LEVEL; // npm start's own default (warn) is what a newcomer sees
  const child = spawn('bash', ['scripts/start-local.sh'], {
    cwd: ROOT,
    detached: true,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    for (const until = Date.now() + 180_000; !stdout.includes('Grid is running') && Date.now() < until && child.exitCode === null; ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    t.regex(stdout, /hello from .*, a container run by Grid/, stderr);
    const cwd = workdir({
      'hi.sh': 'echo "sh $1"\n',
      'hi.bash': 'declare -A said=([k]=bash); echo "${said[k]} $1"\n',
      'hi.js': 'console.log(`node ${process.argv[2]}`)\n',
      'hi.py': 'import sys\nprint("python", sys.argv[1])\n',
    });
    for (const [file, runtime] of [['hi.sh', 'sh'], ['hi.bash', 'bash'], ['hi.js', 'node'], ['hi.py', 'python']]) {
      const run = await gridctl(address, ['run', file!, '--', 'ok'], { cwd });
      t.is(run.code, 0, `${file}: ${run.stderr}`);
      t.is(run.stdout.toString(), `${runtime} ok\n`, file);
    }
    const before = stderr.length;
    process.kill(-child.pid!, 'SIGINT'); // what Ctrl-C in its terminal does
    t.is(await exited, 0);
    const after = stderr.slice(before);
    t.log(`after Ctrl-C the terminal showed:\n${after}`);
    t.deepEqual(after.trim().split('\n'), ['Grid stopped; its jobs and logs are kept for the next npm start.']);
    t.notRegex(stderr, /"level":(40|50)|\n\s+at /, 'no warning and no stack trace in the terminal');
  } finally {
    // The control plane runs in a session of its own (see start-local.sh): the
    // script's trap stops it, so the script is asked first and killed only after.
    if (child.exitCode === null) {
      process.kill(-child.pid!, 'SIGTERM');
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
