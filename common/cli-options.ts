// Every flag of every Grid executable can also come from a GRID_* environment
// variable (the systemd units use that); commander shows both in --help.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseBytes, parseDurationMs } from './units.js';

export function envOption(flags: string, description: string, env: string, defaultValue?: unknown): Option {
  const option = new Option(flags, description).env(env);
  return defaultValue === undefined ? option : option.default(defaultValue);
}

/** A commander argParser from a parser that throws: its message becomes commander's "invalid argument". */
export function flagParser<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

export const parseDurationFlag = flagParser(parseDurationMs);
export const parseBytesFlag = flagParser(parseBytes);

/** Node fires a timer at once when its delay is past 2^31-1 ms (about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A duration that drives a timer: at most MAX_TIMER_MS, so it cannot wrap around and fire at once. */
export const parseTimerFlag = flagParser((text: string) => {
  const ms = parseDurationMs(text);
  if (ms > MAX_TIMER_MS) throw new Error(`"${text}" is too long: at most 24 days`);
  return ms;
});
/** A whole number that may be negative (e.g. --priority -5). */
export const parseWholeNumberFlag = flagParser((text: string) => {
  if (!/^-?\d+$/.test(text.trim())) throw new Error(`"${text}" is not a whole number`);
  return Number(text);
});
export const parseIntFlag = flagParser((text: string) => {
  if (!/^\d+$/.test(text.trim())) throw new Error(`"${text}" is not a whole number`);
  return Number(text);
});
export const parseNumberFlag = flagParser((text: string) => {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new Error(`"${text}" is not a number`);
  return n;
});

/**
 * Commander sets a switch (a flag without a value) whenever its variable is
 * defined, whatever it holds: GRID_PLAINTEXT=0 would turn plaintext on. This
 * reads the value instead: 1/true/yes/on or 0/false/no/off/empty, anything
 * else an error naming the variable. Installed once on a program's root.
 */
export function readSwitchesFromEnv(program: Command): Command {
  return program.hook('preAction', (root, action) => {
    for (let cmd: Command | null = action; cmd; cmd = cmd.parent) {
      for (const option of cmd.options) {
        const name = option.attributeName();
        if (option.required || option.optional || !option.envVar || cmd.getOptionValueSource(name) !== 'env') continue;
        const text = (process.env[option.envVar] ?? '').trim().toLowerCase();
        if (['1', 'true', 'yes', 'on'].includes(text)) cmd.setOptionValueWithSource(name, true, 'env');
        else if (['0', 'false', 'no', 'off', ''].includes(text)) cmd.setOptionValueWithSource(name, undefined, 'env');
        else cmd.error(`${root.name()}: ${option.envVar}="${process.env[option.envVar]}" is not a yes or no: use 1 or 0`);
      }
    }
  });
}
