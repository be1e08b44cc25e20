// gridctl's own failures exit 125, usage errors included: a job's exit code of
// 1 must never be confused with a mistyped flag.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { gridctl } from '../helpers/grid.js';

for (const args of [['--bogus'], ['status'], ['list', '--limit', 'x'], ['run', '--cpu', 'abc', '--', 'true'], ['nosuchcommand'], ['token', 'create', '--name', 'x']]) {
  test(`gridctl ${args.join(' ')} is a usage error: exit 125, with a hint`, async (t) => {
    // No control plane is needed: every one is refused before dialling (port 9 would refuse anyway).
    const r = await gridctl('127.0.0.1:9', args);
    t.is(r.code, 125, r.stderr.toString());
    t.regex(r.stderr.toString(), /error|unknown|missing|invalid/i);
  });
}

test('--help and --version exit 0', async (t) => {
  t.is((await gridctl('127.0.0.1:9', ['--help'])).code, 0);
  t.is((await gridctl('127.0.0.1:9', ['--version'])).code, 0);
  t.is((await gridctl('127.0.0.1:9', ['run', '--help'])).code, 0);
});

test('logs -f against a control plane that is not there fails at once, as status does', async (t) => {
  const started = Date.now();
  const r = await gridctl('127.0.0.1:9', ['logs', '-f', '01900000-0000-7000-8000-000000000000']);
  t.is(r.code, 125, r.stderr.toString());
  t.regex(r.stderr.toString(), /cannot reach the Grid control plane at 127\.0\.0\.1:9/);
  t.true(Date.now() - started < 20_000, 'not an outage waited out (it was killed after 30 s before)');
});

test('-s without a port dials 7070', async (t) => {
  const r = await gridctl('localhost', ['nodes']);
  t.regex(r.stderr.toString(), /localhost:7070/);
});

test('completion bash completes commands, subcommands and flags from the real command tree; zsh and fish scripts too', async (t) => {
  const script = (await gridctl('127.0.0.1:9', ['completion', 'bash'])).stdout.toString();
  const complete = (words: string[]) => {
    const run = spawnSync('bash', ['-c', `${script}\nCOMP_WORDS=(${words.map((w) => `"${w}"`).join(' ')}); COMP_CWORD=${words.length - 1}; _gridctl; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
    return run.stdout.trim().split(' ');
  };
  t.deepEqual(complete(['gridctl', 'to']), ['token']);
  t.deepEqual(complete(['gridctl', 'token', 'rev']), ['revoke']);
  t.deepEqual(complete(['gridctl', 'run', '--secret']), ['--secret-env']);
  t.true(complete(['gridctl', '']).includes('cancel'));
  t.regex((await gridctl('127.0.0.1:9', ['completion', 'zsh'])).stdout.toString(), /bashcompinit[\s\S]*complete -o default -F _gridctl gridctl/);
  t.regex((await gridctl('127.0.0.1:9', ['completion', 'fish'])).stdout.toString(), /complete -c gridctl -n '__fish_seen_subcommand_from run' -l image/);
  t.is((await gridctl('127.0.0.1:9', ['completion', 'tcsh'])).code, 125);
});
