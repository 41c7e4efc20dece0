import { pino } from 'pino';
import type { Logger } from 'pino';

export type { Logger } from 'pino';

/** JSON lines to stderr (stdout belongs to the text emitter), level from LOG_LEVEL. */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { name, pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that writes nothing, for tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
