import path from 'node:path';
import type { Config } from '../config.ts';
import { captureTransport } from './capture.ts';
import { sesTransport } from './ses.ts';
import { smtpTransport } from './smtp.ts';
import type { Transport } from './transport.ts';

export function captureDir(config: Config): string {
  return path.join(config.dataDir, 'outbox');
}

/** The transport SEND_ENGINE_TRANSPORT names. */
export function createTransport(config: Config): Transport {
  if (config.transport === 'capture') return captureTransport(captureDir(config));
  if (config.transport === 'ses') return sesTransport(config.ses);
  return smtpTransport({ url: config.transport, maxConnections: config.dispatch.concurrency, dkim: config.dkim });
}
