import type { Config } from '../config.ts';
import type { Db } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { WebhookHttpClient } from '../webhooks/http-client.ts';
import { applyReceipts } from './receipts.ts';
import { keywordOf, recordInboundKeyword } from './sms/opt-outs.ts';
import { e164OrUndefined } from './sms/phone.ts';
import { SmppTransport } from './sms/smpp.ts';
import { HttpSmsTransport } from './sms/twilio.ts';
import type { ChannelTransports, Receipt } from './types.ts';
import { GraphApiTransport } from './whatsapp/graph.ts';

const UNMATCHED_RETRIES = 3;
const UNMATCHED_DELAY_MS = 1000;

/**
 * Writes receipts; those that matched no message yet (a receipt that overtook the dispatcher's
 * record of the send, written within ~20 ms) are tried again a few times, then logged and dropped.
 */
export function receiptRecorder(db: Db, log: Logger) {
  const record = async (receipts: Receipt[], attempt = 0): Promise<void> => {
    const { unmatched } = await applyReceipts(db, receipts);
    if (!unmatched.length) return;
    const again = receipts.filter((r) => unmatched.includes(r.providerMessageId));
    if (attempt >= UNMATCHED_RETRIES) {
      log.warn({ count: again.length }, 'receipts for unknown provider message ids dropped');
      return;
    }
    setTimeout(() => void record(again, attempt + 1).catch((err) => log.error({ err: (err as Error).message }, 'receipts not recorded')), UNMATCHED_DELAY_MS * (attempt + 1));
  };
  return (receipts: Receipt[]) => record(receipts);
}

/** The dispatcher's transports of the text channels, as configured (none when unconfigured). */
export function createChannelTransports(config: Config, db: Db, log: Logger): ChannelTransports {
  const { channels } = config;
  const client = new WebhookHttpClient({ allowPrivate: channels.providerAllowPrivate, timeoutMs: 15_000, maxSocketsPerHost: config.dispatch.concurrency });
  const transports: ChannelTransports = {
    whatsapp: new GraphApiTransport(
      db,
      { baseUrl: channels.whatsapp.graphBaseUrl, secretsKey: config.secretsKey, platform: { phoneNumberId: channels.whatsapp.phoneNumberId, accessToken: channels.whatsapp.accessToken } },
      client,
    ),
  };
  const provider = channels.sms.provider;
  if (provider?.kind === 'smpp') {
    transports.sms = new SmppTransport({
      url: provider.url, systemId: provider.systemId, password: provider.password, log,
      onReceipts: receiptRecorder(db, log),
      onInbound: async ({ from, to, text }) => {
        const keyword = keywordOf(text);
        const phone = e164OrUndefined(from);
        if (keyword && phone) await recordInboundKeyword(db, phone, to, keyword);
      },
    });
  } else if (provider?.kind === 'http') {
    const statusCallbackUrl = channels.sms.providerWebhookSecret ? `${config.tracking.baseUrl}/v1/webhooks/sms/provider` : undefined;
    transports.sms = new HttpSmsTransport({ ...provider, statusCallbackUrl }, client);
  }
  return transports;
}
