// Structured logs on stderr (stdout stays free for a command's own output).
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level = 'info'): Logger {
  return pino({ level, base: { component: name } }, pino.destination({ fd: 2, sync: false }));
}
