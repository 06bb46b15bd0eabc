import path from 'node:path';
import type { Config } from '../config.ts';
import { captureTransport } from './capture.ts';
import { sesTransport } from './ses.ts';
import { smtpTransport } from './smtp.ts';
import type { Transport } from './transport.ts';
import { transportTimeoutMs } from '../dispatch/lease.ts';

export function captureDir(config: Config): string {
  return path.join(config.dataDir, 'outbox');
}

/** The transport SEND_ENGINE_TRANSPORT names. */
export function createTransport(config: Config): Transport {
  if (config.transport === 'capture') return captureTransport(captureDir(config));
  // No single wait of a send may outlive the dispatcher's lease on the message.
  const timeoutMs = transportTimeoutMs(config.dispatch.leaseSeconds);
  if (config.transport === 'ses') return sesTransport({ ...config.ses, timeoutMs });
  return smtpTransport({ url: config.transport, maxConnections: config.dispatch.concurrency, dkim: config.dkim, timeoutMs });
}
