// Colour for people, never for programs: on when stderr is a terminal, off
// with NO_COLOR (https://no-color.org: any non-empty value), on with
// FORCE_COLOR (anything but 0) even when piped. One rule for gridctl's notes
// and for the daemons' pretty logs.
export function colourOn(env: NodeJS.ProcessEnv = process.env, tty = Boolean(process.stderr.isTTY)): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0';
  return tty;
}
