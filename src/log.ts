import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(level = 'info'): Logger {
  return pino({
    level,
    base: { service: 'send-engine' },
    // Credentials never reach the logs, whatever a caller logs by mistake.
    redact: {
      paths: ['req.headers.authorization', 'req.headers["x-signature"]', 'req.headers["x-amz-sns-signature"]', '*.password', '*.secret', '*.token'],
      censor: '[redacted]',
    },
  });
}

/** "alice@example.com" -> "a***@example.com": enough to debug a domain, never the full address. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return '***';
  return `${email[0]}***${email.slice(at)}`;
}
