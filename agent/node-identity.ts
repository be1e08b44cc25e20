// A node keeps its id across agent restarts (its running containers are labelled
// with it): from --node-id, else generated once and kept in the state directory.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';

export function defaultStateDir(): string {
  return process.getuid?.() === 0 ? '/var/lib/grid-agent' : join(homedir(), '.local', 'state', 'grid-agent');
}

export function resolveNodeId(explicit: string | undefined, stateDir: string): string {
  if (explicit) return explicit;
  const file = join(stateDir, 'node-id');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    const id = `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 80)}-${randomUUID().slice(0, 8)}`;
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(file, id + '\n');
    return id;
  }
}
