// gridctl on a real terminal (a pty from script(1)): its notes are dimmed, and
// with NO_COLOR they carry no escape bytes at all.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { BIN, useGrid } from '../helpers/grid.js';

const grid = useGrid(test, { nodeId: 'terminal-node' });

function onTerminal(env: Record<string, string>, args: string[]): string {
  const command = [process.execPath, BIN.gridctl, '-s', grid.cp.address, ...args].map((a) => `'${a}'`).join(' ');
  const run = spawnSync('script', ['-qec', command, '/dev/null'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return run.stdout;
}

test('on a terminal the notes are dimmed; with NO_COLOR there is no escape byte', (t) => {
  const coloured = onTerminal({}, ['run', '--', 'echo', 'hi']);
  t.regex(coloured, /\x1b\[2mgrid: job \S+ queued/);
  t.regex(coloured, /hi/);
  const plain = onTerminal({ NO_COLOR: '1' }, ['run', '--', 'echo', 'hi']);
  t.regex(plain, /grid: job \S+ queued/);
  t.false(plain.includes('\x1b'), JSON.stringify(plain));
});
