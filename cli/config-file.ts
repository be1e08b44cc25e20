// gridctl's config file: named contexts (a control plane's address, its CA,
// a token), as kubectl has, at ~/.config/grid/config.yaml or $GRID_CONFIG.
// Precedence: flags > environment > the context > defaults.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';

export interface Context {
  server?: string;
  'tls-ca'?: string;
  /** A file holding the token (or the token itself in `token`; the file keeps it out of this one). */
  'token-file'?: string;
  token?: string;
}

export interface ConfigFile {
  'current-context'?: string;
  contexts: Record<string, Context>;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.GRID_CONFIG || join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'grid', 'config.yaml');
}

export function readConfig(path: string): ConfigFile {
  if (!existsSync(path)) return { contexts: {} };
  let parsed: unknown;
  try {
    parsed = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path} is not valid YAML: ${(err as Error).message}`);
  }
  const config = (parsed ?? {}) as Partial<ConfigFile>;
  if (typeof config !== 'object' || (config.contexts !== undefined && typeof config.contexts !== 'object')) {
    throw new Error(`${path} should hold "contexts:" (a map of names to server, tls-ca, token-file) and "current-context:"`);
  }
  return { 'current-context': config['current-context'], contexts: config.contexts ?? {} };
}

export function writeConfig(path: string, config: ConfigFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, stringify(config), { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** The context a command uses: --context/GRID_CONTEXT, else the file's current one; none is fine. */
export function chosenContext(config: ConfigFile, name: string | undefined, path: string): Context | undefined {
  const chosen = name ?? config['current-context'];
  if (chosen === undefined) return undefined;
  const context = config.contexts[chosen];
  if (!context) {
    throw new Error(`no context "${chosen}" in ${path} (it has: ${Object.keys(config.contexts).join(', ') || 'none'}); make one with gridctl config set-context`);
  }
  return context;
}
