// gridctl's colour (the rule itself is common/colour.ts). Cursor movement on a
// live line is not colour and stays on a terminal.
import { colourOn } from '../common/colour.js';

export { colourOn };

/** Text dimmed (SGR 2) when colour is on. */
export function dim(text: string, on = colourOn()): string {
  return on ? `\x1b[2m${text}\x1b[0m` : text;
}
