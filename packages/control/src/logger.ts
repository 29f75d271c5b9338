import { type Logger, pino } from 'pino';

export type { Logger };

/** silentLogger is the default when the composition root passes none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
