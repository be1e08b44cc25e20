// Structured logs on stderr (stdout stays free for a command's own output):
// NDJSON, one object per line, for journald, jq and log shippers; or, for a
// person at a terminal, pino-pretty's one readable line per entry (`auto`
// chooses by whether stderr is a terminal). Same fields either way.
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { colourOn } from './colour.js';

export type { Logger };

export type LogFormat = 'auto' | 'json' | 'pretty';
export const LOG_FORMATS: LogFormat[] = ['auto', 'json', 'pretty'];

export function createLogger(name: string, level = 'info', format: LogFormat = 'json'): Logger {
  const options = { level, base: { component: name } };
  const readable = format === 'pretty' || (format === 'auto' && Boolean(process.stderr.isTTY));
  if (!readable) return pino(options, pino.destination({ fd: 2, sync: false }));
  return pino(
    options,
    pretty({
      destination: 2,
      // Colour by gridctl's rule: NO_COLOR, FORCE_COLOR, else only on a terminal.
      colorize: colourOn(),
      singleLine: true,
      messageFormat: '{component}: {msg}',
      ignore: 'pid,hostname,component',
      translateTime: 'SYS:HH:MM:ss.l',
    }),
  );
}
