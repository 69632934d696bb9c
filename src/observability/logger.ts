import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/parse-values.js';
import { DEFAULT_LOG_RATE_LIMIT, LogRateLimiter, type LogRateLimit } from './log-rate-limit.js';

export type { Logger } from 'pino';

export { LOG_LEVELS, type LogLevel } from '../config/parse-values.js';

const WARN = 40;
const FATAL = 60;

/**
 * JSON lines on stdout; secrets are redacted wherever a caller might pass them.
 * Warnings and errors are rate-limited per message, so anyone who can make the
 * relay warn (refused dials, bad peers) cannot flood the log.
 */
export function createLogger(
  level: LogLevel,
  destination?: DestinationStream,
  rateLimit: LogRateLimit = DEFAULT_LOG_RATE_LIMIT,
): Logger {
  const limiter = new LogRateLimiter(rateLimit);
  const options = {
    level,
    base: { service: 'nb-cluster-relay' },
    redact: {
      paths: ['authSecret', 'clusterSecret', '*.authSecret', '*.clusterSecret', 'token'],
      censor: '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void, levelValue: number): void {
        if (levelValue < WARN || levelValue >= FATAL) return method.apply(this, args);
        const kind = typeof args[0] === 'string' ? args[0] : String(args[1] ?? '');
        const admitted = limiter.admit(kind, (suppressed) =>
          method.apply(this, [{ suppressed, window_ms: rateLimit.windowMs }, `${kind} (repeats suppressed)`]),
        );
        if (admitted) method.apply(this, args);
      },
    },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
