// The programs package.json names as bins run by themselves once built, as
// `npx gridctl` and the systemd units run them: tsc writes files without the
// execute bit, and `npx gridctl` in a fresh clone after `npm install && npm
// start` failed "Permission denied" unless npm happened to have set it.
import test from 'ava';
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bins: Record<string, string> = JSON.parse(readFileSync(`${root}package.json`, 'utf8')).bin;

for (const [name, path] of Object.entries(bins)) {
  test(`${name} (${path}) is executable and answers --version`, async (t) => {
    t.notThrows(() => accessSync(`${root}${path}`, constants.X_OK));
    const { stdout } = await promisify(execFile)(`${root}${path}`, ['--version'], { timeout: 20_000 });
    t.regex(stdout, /\d+\.\d+\.\d+/);
  });
}
