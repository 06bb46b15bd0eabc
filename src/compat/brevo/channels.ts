import type { FastifyInstance } from 'fastify';
import { withTransaction } from '../../db/pool.ts';
import { sendSms } from '../../channels/sms/send.ts';
import { e164 } from '../../channels/sms/phone.ts';
import { sendWhatsApp } from '../../channels/whatsapp/send.ts';
import { HttpError } from '../../http/errors.ts';
import { brevoFailures, missing, notSupported } from './errors.ts';
import type { BrevoDeps } from './index.ts';

/** Brevo numbers come with or without `+`: `33612345678` is `+33612345678`. */
const plus = (n: string) => (n.startsWith('+') ? n : `+${n}`);

interface SmsBody {
  sender: string;
  recipient: string;
  content?: string;
  type?: 'transactional' | 'marketing';
  unicodeEnabled?: boolean;
}

interface WhatsAppBody {
  senderNumber: string;
  contactNumbers: string[];
  text?: string;
  templateId?: number;
  params?: Record<string, unknown>;
}

/** Brevo's transactional SMS and WhatsApp sends onto ours (src/channels): same outbox, sender ids, opt-outs. */
export async function channelRoutes(app: FastifyInstance, deps: BrevoDeps) {
  const { db, config } = deps;
  const sms = config.channels.sms;
  const wa = config.channels.whatsapp;
  const tags = ['brevo'];

  app.post<{ Body: SmsBody }>(
    '/transactionalSMS/sms',
    {
      config: { scope: 'send:sms', credentialHeader: 'api-key' },
      schema: {
        summary: 'Brevo: send a transactional SMS (sender = an approved sender id; type transactional or marketing: STANDARD flow)', tags,
        body: {
          type: 'object',
          required: ['sender', 'recipient'],
          additionalProperties: false,
          properties: {
            sender: { type: 'string', minLength: 1, maxLength: 15 },
            recipient: { type: 'string', minLength: 1, maxLength: 20 },
            content: { type: 'string', minLength: 1, maxLength: 10_000 },
            type: { type: 'string', enum: ['transactional', 'marketing'] },
            unicodeEnabled: { type: 'boolean', description: 'Ours is chosen from the text (GSM-7 or UCS-2)' },
            templateId: { type: 'integer' },
          },
        },
        response: {
          201: { type: 'object', properties: { reference: { type: 'string' }, messageId: { type: 'string' }, smsCount: { type: 'integer' }, usedCredits: { type: 'number' }, remainingCredits: { type: 'number' } } },
          ...brevoFailures,
        },
      },
    },
    async (request, reply) => {
      const b = request.body as SmsBody & { templateId?: number };
      if (b.templateId !== undefined) throw notSupported('templateId', 'SMS templates are not stored here: give content');
      if (b.content === undefined) throw missing('content');
      if (!sms.provider) throw new HttpError(422, 'sms_not_configured', 'no SMS provider is configured (SMS_PROVIDER_URL)');
      const accepted = await sendSms(db, request.principal.tenantId, { to: plus(b.recipient), body: b.content, senderId: b.sender, flow: 'STANDARD' }, { ...sms, idempotencyTtlHours: config.idempotencyTtlHours });
      return reply.code(201).send({ reference: accepted.messageId, messageId: accepted.messageId, smsCount: accepted.segments, usedCredits: accepted.segments, remainingCredits: 0 });
    },
  );

  app.post<{ Body: WhatsAppBody }>(
    '/whatsapp/sendMessage',
    {
      config: { scope: 'send:whatsapp', credentialHeader: 'api-key' },
      schema: {
        summary: "Brevo: send a WhatsApp text (inside the 24 h session window) from the account's line", tags,
        body: {
          type: 'object',
          required: ['senderNumber', 'contactNumbers'],
          additionalProperties: false,
          properties: {
            senderNumber: { type: 'string', minLength: 1, maxLength: 20 },
            contactNumbers: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 20 }, minItems: 1, maxItems: 100 },
            text: { type: 'string', minLength: 1, maxLength: 4096 },
            templateId: { type: 'integer' },
            params: { type: 'object' },
          },
        },
        response: { 201: { type: 'object', properties: { messageId: { type: 'string' }, messageIds: { type: 'array', items: { type: 'string' } } } }, ...brevoFailures },
      },
    },
    async (request, reply) => {
      const b = request.body;
      if (b.templateId !== undefined || b.params !== undefined) {
        throw notSupported(b.templateId !== undefined ? 'templateId' : 'params', 'WhatsApp templates are named by their Meta name here: send them with POST /v1/whatsapp/send');
      }
      if (b.text === undefined) throw missing('text');
      const numbers = b.contactNumbers.map((n, i) => e164(plus(n), `contactNumbers[${i}]`));
      const settings = { secretsKey: config.secretsKey, platform: { phoneNumberId: wa.phoneNumberId, accessToken: wa.accessToken }, idempotencyTtlHours: config.idempotencyTtlHours };
      // Every number or none.
      const ids = await withTransaction(db, async (client) => {
        const out: string[] = [];
        for (const to of numbers) out.push((await sendWhatsApp(client, request.principal.tenantId, { to, type: 'text', text: b.text }, settings)).messageId);
        return out;
      });
      return reply.code(201).send({ messageId: ids[0], messageIds: ids });
    },
  );
}
