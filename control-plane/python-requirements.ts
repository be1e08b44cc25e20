// Turns "run this python script with these requirements" into a command: a
// virtual environment per distinct requirements file, kept on the node in a
// cache volume, built once under a lock (two jobs with the same file install
// it once), then the script run with it. Pure.
import { createHash } from 'node:crypto';
import type { CacheMount, TaskFile } from '../common/gen/grid/v1/agent.js';

export const PYTHON_CACHE: CacheMount = { name: 'grid-cache-python', path: '/grid/cache' };
const REQUIREMENTS_PATH = '/grid/in/.grid/requirements.txt';

export interface WithRequirements {
  argv: string[];
  files: TaskFile[];
  mounts: CacheMount[];
}

export function withRequirements(requirements: Uint8Array, scriptPath: string, args: string[]): WithRequirements {
  const hash = createHash('sha256').update(requirements).digest('hex').slice(0, 20);
  const venv = `${PYTHON_CACHE.path}/venv-${hash}`;
  const script = [
    'set -e',
    `venv=${venv}`,
    `exec 9>"$venv.lock"`,
    'flock 9',
    'if [ ! -f "$venv/.ready" ]; then',
    '  echo "grid: installing requirements (kept on this node for later runs)" >&2',
    '  rm -rf "$venv"',
    '  python3 -m venv "$venv"',
    `  "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q -r ${REQUIREMENTS_PATH} >&2`,
    '  touch "$venv/.ready"',
    'fi',
    'flock -u 9',
    'exec "$venv/bin/python" -u "$@"',
  ].join('\n');
  return {
    argv: ['sh', '-c', script, 'grid-python', scriptPath, ...args],
    files: [{ path: REQUIREMENTS_PATH, content: Buffer.from(requirements), mode: 0o644 }],
    mounts: [PYTHON_CACHE],
  };
}
