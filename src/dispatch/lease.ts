/**
 * How a worker spends a lease of `leaseSeconds` on a message: a send is not started in the last
 * `startMarginMs`, must be over `endMarginMs` before the lease ends (time to record the outcome while
 * the message is still ours), and no single wait of a transport (connect, greeting, reply) is longer
 * than `transportTimeoutMs`. Past its lease another worker may claim the message, so nothing of a
 * send may outlive it.
 */
export function leaseTimings(leaseSeconds: number) {
  const leaseMs = leaseSeconds * 1000;
  const startMarginMs = Math.min(5_000, leaseMs / 4);
  const endMarginMs = Math.min(2_000, leaseMs / 8);
  return { startMarginMs, endMarginMs, transportTimeoutMs: Math.min(60_000, leaseMs - startMarginMs - endMarginMs) };
}

/** The per-wait timeout transports are built with (src/transports/index.ts). */
export const transportTimeoutMs = (leaseSeconds: number) => leaseTimings(leaseSeconds).transportTimeoutMs;
