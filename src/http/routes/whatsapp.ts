import type { FastifyInstance } from 'fastify';
import { applyReceipts } from '../../channels/receipts.ts';
import type { ChannelState } from '../../channels/types.ts';
import { channelTimeline, getChannelMessage, listChannelMessages } from '../../channels/views.ts';
import { getLine, patchLine, type LinePatch } from '../../channels/whatsapp/line.ts';
import { sendWhatsApp, type WhatsAppSendRequest } from '../../channels/whatsapp/send.ts';
import { openSessions, parseNotification } from '../../channels/whatsapp/webhook.ts';
import { verifyBodyHmac } from '../../events/sns.ts';
import type { AppDeps } from '../app.ts';
import { HttpError, notFound } from '../errors.ts';
import { secretMatches } from '../../secrets.ts';
import { keepRawJsonBody } from '../raw-body.ts';
import { errors, failures } from '../schemas.ts';
import {
  Accepted, ChannelMessage, ChannelPage, idParams, Received, Timeline, whatsappListQuery, WhatsAppLine, WhatsAppLinePatch, WhatsAppSendRequest as SendBody,
} from '../schemas/channels.ts';

type Id = { Params: { id: string } };
const security = [{ bearerAuth: [] }];
const tags = ['whatsapp'];

/** WhatsApp Cloud API: sends, reads, the account's line, and Meta's webhook (docs/whatsapp.md). */
export async function whatsappRoutes(app: FastifyInstance, deps: AppDeps) {
  const { db, config } = deps;
  const wa = config.channels.whatsapp;
  const platform = { phoneNumberId: wa.phoneNumberId, accessToken: wa.accessToken };

  app.post<{ Body: WhatsAppSendRequest }>(
    '/v1/whatsapp/send',
    { config: { scope: 'send:whatsapp' }, schema: { summary: 'Queue a template message, or a text message inside the 24 h session window', tags, security, body: SendBody, response: { 202: Accepted, ...failures(401, 403, 409, 422) } } },
    async (request, reply) => {
      const accepted = await sendWhatsApp(db, request.principal.tenantId, request.body, { secretsKey: config.secretsKey, platform, idempotencyTtlHours: config.idempotencyTtlHours });
      return reply.code(202).send({ id: accepted.messageId, status: 'QUEUED', replayed: accepted.replayed });
    },
  );

  app.get<{ Querystring: { status?: ChannelState; query?: string; page: number; pageSize: number } }>(
    '/v1/whatsapp',
    { config: { scope: 'read:whatsapp' }, schema: { summary: 'WhatsApp messages, newest first, by page', tags, security, querystring: whatsappListQuery, response: { 200: ChannelPage, ...failures(401, 403, 422) } } },
    async (request) => listChannelMessages(db, request.principal.tenantId, 'whatsapp', request.query),
  );

  app.get<Id>(
    '/v1/whatsapp/:id',
    { config: { scope: 'read:whatsapp' }, schema: { summary: 'One WhatsApp message', tags, security, params: idParams, response: { 200: ChannelMessage, ...failures(401, 403, 404, 422) } } },
    async (request) => getChannelMessage(db, request.principal.tenantId, 'whatsapp', request.params.id),
  );

  app.get<Id>(
    '/v1/whatsapp/:id/timeline',
    { config: { scope: 'read:whatsapp' }, schema: { summary: "One WhatsApp message's timeline: accepted, sent, delivered, read or failed", tags, security, params: idParams, response: { 200: Timeline, ...failures(401, 403, 404, 422) } } },
    async (request) => channelTimeline(db, request.principal.tenantId, 'whatsapp', request.params.id),
  );

  app.get(
    '/v1/account/whatsapp-cloud-line',
    { config: { scope: 'read:whatsapp' }, schema: { summary: "The account's WhatsApp Cloud line (else the platform default)", tags, security, response: { 200: WhatsAppLine, ...failures(401, 403) } } },
    async (request) => getLine(db, request.principal.tenantId, platform),
  );

  app.patch<{ Body: LinePatch }>(
    '/v1/account/whatsapp-cloud-line',
    {
      config: { scope: 'send:whatsapp' },
      schema: { summary: 'Set or clear (null) the line: Meta phone number id and access token (stored encrypted)', tags, security, body: WhatsAppLinePatch, response: { 200: WhatsAppLine, ...failures(401, 403, 409, 422) } },
    },
    async (request) => patchLine(db, config.secretsKey, request.principal.tenantId, request.body, platform),
  );

  // Meta's webhook: the GET handshake and signed POSTs (X-Hub-Signature-256 over the raw body).
  app.get<{ Querystring: { 'hub.mode'?: string; 'hub.verify_token'?: string; 'hub.challenge'?: string } }>(
    '/v1/webhooks/whatsapp',
    {
      schema: {
        summary: "Meta's verification handshake: echoes hub.challenge when hub.verify_token is WHATSAPP_VERIFY_TOKEN", tags: ['whatsapp', 'webhooks'],
        querystring: { type: 'object', properties: { 'hub.mode': { type: 'string', maxLength: 64 }, 'hub.verify_token': { type: 'string', maxLength: 256 }, 'hub.challenge': { type: 'string', maxLength: 256 } } },
        response: { 200: { type: 'string' }, ...errors(403, 404) },
      },
    },
    async (request, reply) => {
      if (!wa.verifyToken) throw notFound();
      const q = request.query;
      if (q['hub.mode'] !== 'subscribe' || !secretMatches(wa.verifyToken, q['hub.verify_token']) || !q['hub.challenge']) {
        throw new HttpError(403, 'verification_failed', 'hub.mode must be subscribe and hub.verify_token must match');
      }
      return reply.type('text/plain').send(q['hub.challenge']);
    },
  );

  await app.register(async (signed) => {
    keepRawJsonBody(signed);
    signed.post<{ Body: unknown }>(
      '/v1/webhooks/whatsapp',
      {
        preValidation: async (request) => {
          if (!wa.appSecret) throw notFound();
          const header = request.headers['x-hub-signature-256'];
          const signature = typeof header === 'string' && header.startsWith('sha256=') ? header.slice(7) : undefined;
          if (!request.rawBody || !verifyBodyHmac(wa.appSecret, request.rawBody, signature)) throw new HttpError(401, 'invalid_signature', 'X-Hub-Signature-256 is not the HMAC-SHA256 of the body with the app secret');
        },
        schema: {
          summary: 'WhatsApp Cloud notifications: message statuses (sent, delivered, read, failed) and inbound messages (open the 24 h window)',
          tags: ['whatsapp', 'webhooks'],
          body: { type: 'object', properties: { object: { type: 'string' }, entry: { type: 'array', maxItems: 1000 } } },
          response: { 200: Received, ...errors(401, 404, 422) },
        },
      },
      async (request) => {
        const notification = parseNotification(request.body);
        await openSessions(db, notification.inbound);
        const { unmatched } = await applyReceipts(db, notification.receipts);
        return { received: notification.receipts.length - unmatched.length + notification.inbound.length };
      },
    );
  });
}
