import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** JSON lines on stdout; secrets are redacted wherever a caller might pass them. */
export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    base: { service: 'nb-cluster-relay' },
    redact: {
      paths: ['authSecret', 'clusterSecret', '*.authSecret', '*.clusterSecret', 'token'],
      censor: '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
