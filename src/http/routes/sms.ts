import type { FastifyInstance } from 'fastify';
import { applyReceipts } from '../../channels/receipts.ts';
import { e164OrUndefined } from '../../channels/sms/phone.ts';
import { keywordOf, recordInboundKeyword } from '../../channels/sms/opt-outs.ts';
import { listSenderIds, requestSenderId, reviewSenderId } from '../../channels/sms/sender-ids.ts';
import { sendSms, type SmsSendRequest } from '../../channels/sms/send.ts';
import { receiptFromStatusCallback } from '../../channels/sms/twilio.ts';
import type { ChannelState, Receipt, SmsFlow } from '../../channels/types.ts';
import { channelTimeline, getChannelMessage, listChannelMessages } from '../../channels/views.ts';
import { verifyBodyHmac } from '../../events/sns.ts';
import type { AppDeps } from '../app.ts';
import { HttpError, notFound, unauthorized, unprocessable } from '../errors.ts';
import { operatorOnly, secretMatches } from '../operator.ts';
import { keepRawJsonBody } from '../raw-body.ts';
import { errors, failures } from '../schemas.ts';
import {
  Accepted, ChannelMessage, ChannelPage, DlrBody, idParams, InboundSmsBody, Received, ReviewBody, SenderId, SenderIdList, SenderIdRequestBody,
  smsListQuery, SmsSendRequest as SendBody, Timeline, tokenQuery,
} from '../schemas/channels.ts';

type Id = { Params: { id: string } };
const security = [{ bearerAuth: [] }];
const tags = ['sms'];

// A carrier's receipt status word (SMPP Appendix B stat:, or already ours).
const DLR_OUTCOME: Record<string, Receipt['outcome'] | undefined> = {
  DELIVRD: 'delivered', DELIVERED: 'delivered', UNDELIV: 'failed', UNDELIVERED: 'failed', REJECTD: 'failed', REJECTED: 'failed',
  EXPIRED: 'failed', DELETED: 'failed', FAILED: 'failed', UNKNOWN: 'failed', ACCEPTD: 'sent', ENROUTE: 'sent', SENT: 'sent',
};

/** SMS: sends, reads, sender ids (docs/sms.md), and the providers' callbacks. */
export async function smsRoutes(app: FastifyInstance, deps: AppDeps) {
  const { db, config } = deps;
  const sms = config.channels.sms;

  app.post<{ Body: SmsSendRequest }>(
    '/v1/sms/send',
    { config: { scope: 'send:sms' }, schema: { summary: 'Queue one SMS (OTP or STANDARD) from an approved sender id', tags, security, body: SendBody, response: { 202: Accepted, ...failures(401, 403, 409, 422) } } },
    async (request, reply) => {
      if (!sms.provider) throw unprocessable('no SMS provider is configured (SMS_PROVIDER_URL)', 'sms_not_configured');
      const accepted = await sendSms(db, request.principal.tenantId, request.body, { ...sms, idempotencyTtlHours: config.idempotencyTtlHours });
      return reply.code(202).send({ id: accepted.messageId, status: 'QUEUED', replayed: accepted.replayed, segments: accepted.segments, encoding: accepted.encoding });
    },
  );

  app.get<{ Querystring: { flow?: SmsFlow; status?: ChannelState; query?: string; page: number; pageSize: number } }>(
    '/v1/sms',
    { config: { scope: 'read:sms' }, schema: { summary: 'SMS messages, newest first, by page', tags, security, querystring: smsListQuery, response: { 200: ChannelPage, ...failures(401, 403, 422) } } },
    async (request) => listChannelMessages(db, request.principal.tenantId, 'sms', request.query),
  );

  app.get(
    '/v1/sms/sender-ids',
    { config: { scope: 'read:sms' }, schema: { summary: "The account's sender ids and requests (approved ones may send)", tags, security, response: { 200: SenderIdList, ...failures(401, 403) } } },
    async (request) => ({ data: await listSenderIds(db, request.principal.tenantId) }),
  );

  app.get<Id>(
    '/v1/sms/:id',
    { config: { scope: 'read:sms' }, schema: { summary: 'One SMS', tags, security, params: idParams, response: { 200: ChannelMessage, ...failures(401, 403, 404, 422) } } },
    async (request) => getChannelMessage(db, request.principal.tenantId, 'sms', request.params.id),
  );

  app.get<Id>(
    '/v1/sms/:id/timeline',
    { config: { scope: 'read:sms' }, schema: { summary: "One SMS's timeline: accepted, sent, delivery receipt or failure", tags, security, params: idParams, response: { 200: Timeline, ...failures(401, 403, 404, 422) } } },
    async (request) => channelTimeline(db, request.principal.tenantId, 'sms', request.params.id),
  );

  app.post<{ Body: { senderId: string; purpose?: string } }>(
    '/v1/sms/sender-id-requests',
    { config: { scope: 'send:sms' }, schema: { summary: 'Ask the operator to approve a sender id', tags, security, body: SenderIdRequestBody, response: { 201: SenderId, ...failures(401, 403, 409, 422) } } },
    async (request, reply) => reply.code(201).send(await requestSenderId(db, request.principal.tenantId, request.body.senderId, request.body.purpose)),
  );

  app.post<Id & { Body: { decision: 'approve' | 'reject'; note?: string } }>(
    '/v1/sms/sender-id-requests/:id/review',
    {
      preHandler: operatorOnly(config.adminToken),
      schema: {
        summary: 'Operator only (Bearer ADMIN_TOKEN): approve or reject a sender id request', tags, security,
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', format: 'uuid' } } }, body: ReviewBody,
        response: { 200: SenderId, ...errors(401, 404, 409, 422) },
      },
    },
    async (request) => reviewSenderId(db, request.params.id, request.body.decision, request.body.note),
  );

  // Providers' callbacks: authenticated by a token or a signature, never by a tenant credential.
  const requireToken = (token: string | undefined) => {
    if (!sms.webhookToken) throw notFound();
    if (!secretMatches(sms.webhookToken, token)) throw unauthorized('invalid token');
  };

  app.post<{ Querystring: { token?: string }; Body: { id: string; status: string; err?: string } }>(
    '/v1/webhooks/sms/dlr',
    {
      schema: {
        summary: 'A delivery receipt from a carrier or aggregator; ?token=SMS_WEBHOOK_TOKEN', tags: ['sms', 'webhooks'],
        querystring: tokenQuery, body: DlrBody,
        response: { 200: Received, ...errors(401, 404, 422) },
      },
    },
    async (request) => {
      requireToken(request.query.token);
      const dlr = request.body;
      const outcome = DLR_OUTCOME[dlr.status.toUpperCase()];
      if (!outcome) throw unprocessable(`unknown receipt status ${JSON.stringify(dlr.status)}`, 'unknown_status');
      const receipt: Receipt = { channel: 'sms', providerMessageId: dlr.id, outcome, error: outcome === 'failed' ? `dlr ${dlr.status}${dlr.err ? ` err:${dlr.err}` : ''}` : undefined };
      const { unmatched } = await applyReceipts(db, [receipt]);
      return { received: unmatched.length || outcome === 'sent' ? 0 : 1 };
    },
  );

  app.post<{ Querystring: { token?: string }; Body: { from: string; to: string; text: string } }>(
    '/v1/webhooks/sms/inbound-opt-out',
    {
      schema: {
        summary: 'Inbound SMS (MO): STOP/UNSUBSCRIBE opt out, START/UNSTOP opt back in; ?token=SMS_WEBHOOK_TOKEN', tags: ['sms', 'webhooks'],
        querystring: tokenQuery, body: InboundSmsBody, response: { 200: { type: 'object', required: ['action', 'accounts'], properties: { action: { type: ['string', 'null'] }, accounts: { type: 'integer' } } }, ...errors(401, 404, 422) },
      },
    },
    async (request) => {
      requireToken(request.query.token);
      const from = e164OrUndefined(request.body.from);
      if (!from) throw unprocessable('from must be a phone number', 'invalid_phone_number');
      const keyword = keywordOf(request.body.text);
      if (!keyword) return { action: null, accounts: 0 };
      return { action: keyword.action, accounts: await recordInboundKeyword(db, from, request.body.to, keyword) };
    },
  );

  await app.register(async (signed) => {
    keepRawJsonBody(signed);
    signed.post<{ Body: Record<string, unknown> }>(
      '/v1/webhooks/sms/provider',
      {
        preValidation: async (request) => {
          if (!sms.providerWebhookSecret) throw notFound();
          const header = request.headers['x-signature'];
          const signature = typeof header === 'string' ? header.replace(/^sha256=/, '') : undefined;
          if (!request.rawBody || !verifyBodyHmac(sms.providerWebhookSecret, request.rawBody, signature)) throw new HttpError(401, 'invalid_signature', 'X-Signature is not the HMAC-SHA256 of the body');
        },
        schema: {
          summary: 'Provider status callback (MessageSid, MessageStatus, ErrorCode), X-Signature: sha256=HMAC-SHA256(body, SMS_PROVIDER_WEBHOOK_SECRET)',
          tags: ['sms', 'webhooks'],
          body: { type: 'object', required: ['MessageSid', 'MessageStatus'], properties: { MessageSid: { type: 'string', minLength: 1, maxLength: 200 }, MessageStatus: { type: 'string', maxLength: 40 }, ErrorCode: { type: ['string', 'integer', 'null'] } } },
          response: { 200: Received, ...errors(401, 404, 422) },
        },
      },
      async (request) => {
        const receipt = receiptFromStatusCallback(request.body);
        if (!receipt) return { received: 0 };
        const { unmatched } = await applyReceipts(db, [receipt]);
        return { received: unmatched.length ? 0 : 1 };
      },
    );
  });
}
