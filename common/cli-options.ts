// Every flag of every Grid executable can also come from a GRID_* environment
// variable (the systemd units use that); commander shows both in --help.
import { InvalidArgumentError, Option } from 'commander';
import { parseBytes, parseDurationMs } from './units.js';

export function envOption(flags: string, description: string, env: string, defaultValue?: unknown): Option {
  const option = new Option(flags, description).env(env);
  return defaultValue === undefined ? option : option.default(defaultValue);
}

function wrap<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

export const parseDurationFlag = wrap(parseDurationMs);
export const parseBytesFlag = wrap(parseBytes);
export const parseIntFlag = wrap((text: string) => {
  if (!/^\d+$/.test(text.trim())) throw new Error(`"${text}" is not a whole number`);
  return Number(text);
});
export const parseNumberFlag = wrap((text: string) => {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new Error(`"${text}" is not a number`);
  return n;
});
