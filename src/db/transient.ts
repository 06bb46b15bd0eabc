/**
 * Errors a process may meet while starting beside others or beside a server that is itself
 * starting: worth a retry, not an exit.
 */
const TRANSIENT_SQLSTATES = new Set([
  '40P01', // deadlock_detected
  '40001', // serialization_failure
  '57P03', // cannot_connect_now: the server is starting up or recovering
  '53300', // too_many_connections: others are starting too
  '08000', '08001', '08003', '08006', // connection exceptions
]);
const TRANSIENT_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']);

export function isTransientDbError(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: string; message?: string };
  if (code && (TRANSIENT_SQLSTATES.has(code) || TRANSIENT_ERRNOS.has(code))) return true;
  return /Connection terminated unexpectedly|timeout exceeded when trying to connect/i.test(message ?? '');
}

/**
 * Runs fn, retrying transient database errors with jittered exponential backoff (0.2 s doubling,
 * at most 5 s apart) for at most `forMs`; any other error, or the last one, is thrown.
 */
export async function retryTransient<T>(
  what: string,
  fn: () => Promise<T>,
  onRetry: (info: { what: string; attempt: number; error: string; delayMs: number }) => void = () => {},
  forMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + forMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const delayMs = Math.round(Math.min(5000, 200 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2));
      if (!isTransientDbError(err) || Date.now() + delayMs > deadline) throw err;
      onRetry({ what, attempt, error: (err as Error).message, delayMs });
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}
