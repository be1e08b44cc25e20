// Colour for people, never for programs: on when stderr is a terminal, off
// with NO_COLOR (https://no-color.org: any non-empty value), on with
// FORCE_COLOR (anything but 0) even when piped. Cursor movement on a live line
// is not colour and stays on a terminal.
export function colourOn(env: NodeJS.ProcessEnv = process.env, tty = Boolean(process.stderr.isTTY)): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0';
  return tty;
}

/** Text dimmed (SGR 2) when colour is on. */
export function dim(text: string, on = colourOn()): string {
  return on ? `\x1b[2m${text}\x1b[0m` : text;
}
