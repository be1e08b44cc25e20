// Runs one of examples/*/grid_client.* as its README says: stubs generated from
// proto/ into a directory of its own (removed after), then the client against
// a running control plane, with Debian's interpreter and gRPC library.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

const COMMANDS = {
  python: (gen: string, address: string) => ({ program: '/usr/bin/python3', args: [join(EXAMPLES, 'python/grid_client.py'), '--server', address], env: { PYTHONPATH: gen } }),
  ruby: (gen: string, address: string) => ({ program: '/usr/bin/ruby', args: ['-I', gen, join(EXAMPLES, 'ruby/grid_client.rb'), address], env: {} }),
};

export interface ExampleRun {
  /** The stub generator's failure, if it failed (then the client was not run). */
  generateError?: string;
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runClientExample(example: keyof typeof COMMANDS, address: string): ExampleRun {
  const gen = mkdtempSync(join(tmpdir(), `grid-${example}-`));
  try {
    const generate = spawnSync('bash', [join(EXAMPLES, example, 'generate.sh'), gen], { encoding: 'utf8' });
    if (generate.status !== 0) return { generateError: generate.stderr, status: generate.status, stdout: '', stderr: generate.stderr };
    const { program, args, env } = COMMANDS[example](gen, address);
    const run = spawnSync(program, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
  } finally {
    rmSync(gen, { recursive: true, force: true });
  }
}
