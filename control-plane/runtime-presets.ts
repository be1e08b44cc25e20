// Runtime presets turn "run this script" into an image and an interpreter. The
// control plane owns them (configurable with --runtimes FILE), so every client,
// in any language, gets the same mapping.
import { readFileSync } from 'node:fs';

export interface RuntimePreset {
  name: string;
  image: string;
  /** The interpreter's argv; the script path and the job's args follow it. */
  interpreter: string[];
  /** File extensions (with the dot) that select this runtime when none is named. */
  extensions: string[];
  /** Whether a pip requirements file can come with a script (the image needs python3 with venv, and flock). */
  requirements?: boolean;
}

export const DEFAULT_RUNTIMES: readonly RuntimePreset[] = [
  { name: 'python', image: 'python:3.12-slim', interpreter: ['python3', '-u'], extensions: ['.py'], requirements: true },
  { name: 'node', image: 'node:22-slim', interpreter: ['node'], extensions: ['.js', '.mjs', '.cjs'] },
  { name: 'bash', image: 'bash:5.2', interpreter: ['bash'], extensions: ['.bash'] },
  { name: 'sh', image: 'busybox:1.37', interpreter: ['sh'], extensions: ['.sh'] },
];

export type RuntimeTable = ReadonlyMap<string, RuntimePreset>;

export function runtimeTable(presets: readonly RuntimePreset[]): RuntimeTable {
  return new Map(presets.map((p) => [p.name, p]));
}

export function inferRuntime(fileName: string, runtimes: RuntimeTable): RuntimePreset | undefined {
  const lower = fileName.toLowerCase();
  for (const preset of runtimes.values()) {
    if (preset.extensions.some((ext) => lower.endsWith(ext))) return preset;
  }
  return undefined;
}

/**
 * Reads a JSON file of presets: `{ "python": { "image": "...", "interpreter": [...],
 * "extensions": [...] }, ... }`. Fields left out keep the default preset's value, so
 * a file that only swaps images stays short.
 */
export function loadRuntimes(file: string | undefined, defaultImage?: string): RuntimePreset[] {
  // sh needs nothing but a POSIX shell, which the default image for commands has: an
  // operator who points --default-image at a local image has sh scripts run there too.
  const withDefault = (presets: RuntimePreset[], shImageGiven: boolean) =>
    presets.map((p) => (p.name === 'sh' && defaultImage && !shImageGiven ? { ...p, image: defaultImage } : p));
  if (!file) return withDefault([...DEFAULT_RUNTIMES], false);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read runtimes file ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`runtimes file ${file} must hold a JSON object of name → preset`);
  }
  const merged = new Map(DEFAULT_RUNTIMES.map((p) => [p.name, { ...p }]));
  for (const [name, raw] of Object.entries(parsed as Record<string, Partial<RuntimePreset>>)) {
    const base = merged.get(name);
    const preset = { name, ...base, ...raw } as RuntimePreset;
    if (typeof preset.image !== 'string' || !Array.isArray(preset.interpreter) || preset.interpreter.length === 0) {
      throw new Error(`runtime "${name}" in ${file} needs an "image" and a non-empty "interpreter"`);
    }
    preset.extensions ??= [];
    merged.set(name, preset);
  }
  const shImageGiven = typeof (parsed as Record<string, Partial<RuntimePreset>>).sh?.image === 'string';
  return withDefault([...merged.values()], shImageGiven);
}
