import { createRequire } from 'node:module';
import pino from 'pino';

// pino-pretty is loaded only for a terminal's logs: a server writing JSON never needs it (docs/operations.md#memory).
const require = createRequire(import.meta.url);

export type Logger = pino.Logger;

/**
 * JSON lines for machines; readable coloured lines (pino-pretty, synchronous: nothing lost on exit)
 * when `pretty`, which the CLI sets when stdout is a terminal and LOG_FORMAT does not say json.
 * Redaction applies to both.
 */
export function createLogger(level = 'info', options: { pretty?: boolean } = {}): Logger {
  const stream = options.pretty ? (require('pino-pretty') as typeof import('pino-pretty'))({ colorize: !process.env.NO_COLOR, sync: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,service' }) : undefined;
  return pino({
    level,
    base: { service: 'send-engine' },
    // Credentials never reach the logs, whatever a caller logs by mistake.
    redact: {
      paths: ['req.headers.authorization', 'req.headers["x-signature"]', 'req.headers["x-amz-sns-signature"]', '*.password', '*.secret', '*.token'],
      censor: '[redacted]',
    },
  }, stream as pino.DestinationStream | undefined);
}

/** LOG_FORMAT: `json`, `pretty`, or `auto` (pretty on a terminal). */
export function wantsPrettyLogs(format = process.env.LOG_FORMAT ?? 'auto'): boolean {
  return format === 'pretty' || (format !== 'json' && process.stdout.isTTY === true);
}

/** "alice@example.com" -> "a***@example.com": enough to debug a domain, never the full address. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return '***';
  return `${email[0]}***${email.slice(at)}`;
}
