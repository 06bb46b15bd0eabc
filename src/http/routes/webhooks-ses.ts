import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EventWriter } from '../../events/ingest.ts';
import { normalizeContractEvent, normalizeSesMessage, type ContractSesEvent } from '../../events/normalize.ts';
import { parseSnsEnvelope, SnsVerifier, verifyBodyHmac, type SnsEnvelope } from '../../events/sns.ts';
import type { EventOutcome, NormalizedEvent } from '../../events/types.ts';
import { maskEmail } from '../../log.ts';
import type { AppDeps } from '../app.ts';
import { DomainError } from '../../errors.ts';
import { errorHandler, HttpError, notFound, sendError, unauthorized, unprocessable } from '../errors.ts';
import { keepRawJsonBody } from '../raw-body.ts';
import { errors } from '../schemas.ts';

/** The contract's SesEvent (shared/spec/send-engine.openapi.yaml). */
export const SesEvent = {
  type: 'object',
  required: ['event_type', 'message_id', 'tenant_id', 'email', 'occurred_at'],
  properties: {
    event_type: { type: 'string', enum: ['bounce', 'hard_bounced', 'soft_bounced', 'complaint', 'suppression', 'delivery', 'open', 'click'] },
    message_id: { type: 'string' },
    tenant_id: { type: 'string', format: 'uuid' },
    email: { type: 'string', format: 'email' },
    bounce_type: { type: 'string', enum: ['hard', 'soft'] },
    occurred_at: { type: 'string', format: 'date-time' },
  },
} as const;

type Input =
  | { kind: 'contract'; event: NormalizedEvent }
  | { kind: 'sns'; envelope: SnsEnvelope };

declare module 'fastify' {
  interface FastifyRequest {
    sesInput?: Input;
  }
}

const ajv = new Ajv({ allErrors: false, strict: false });
addFormats.default(ajv);
const validateContract = ajv.compile<ContractSesEvent>(SesEvent);

const snsUnauthorized = (message: string) => new HttpError(401, 'unauthorized', message);

/**
 * POST /webhooks/ses: the contract's HMAC-signed SesEvent (from a forwarder) and genuine Amazon
 * SNS deliveries on one endpoint. Authentication happens in preValidation, over the raw bytes,
 * before anything is looked up; the body shape is checked here since two shapes share the route.
 */
export async function sesWebhookRoutes(app: FastifyInstance, deps: AppDeps) {
  keepRawJsonBody(app);
  const { events: rules } = deps.config;
  const verifier = new SnsVerifier(rules.snsTopicArns, deps.snsFetcher);
  const writer = new EventWriter(deps.db, rules, deps.logger);

  // Unparseable JSON is a malformed body: 422 here, as for every other shape error.
  app.setErrorHandler((err, request, reply) =>
    errorHandler(err instanceof HttpError && err.status === 400 ? unprocessable(err.message, 'malformed_body') : (err as Error), request, reply),
  );

  app.post(
    '/webhooks/ses',
    {
      bodyLimit: 1024 * 1024,
      schema: {
        summary: 'SES/SNS events',
        description:
          'Either the SesEvent below, signed with X-Amz-Sns-Signature = hex HMAC-SHA256(raw body, SES_WEBHOOK_SECRET), ' +
          'or an Amazon SNS HTTPS delivery (x-amz-sns-message-type header) carrying SES event JSON, verified with its SNS signature.',
        security: [{ sesSignature: [] }],
        body: SesEvent,
        response: { 200: { type: 'object', additionalProperties: true, properties: { status: { type: 'string' } } }, ...errors(401, 403, 404, 422) },
      },
      // The body is validated by hand after authentication: SNS envelopes are not SesEvents.
      validatorCompiler: () => () => true,
      preValidation: async (request: FastifyRequest) => {
        request.sesInput = await authenticate(request);
      },
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const input = request.sesInput!;
      if (input.kind === 'contract') {
        const [outcome] = await writer.write([input.event]);
        // Unknown tenant, unknown message and another tenant's message answer alike.
        if (outcome === 'unmatched') throw notFound('no such message for this tenant');
        request.log.info({ event: input.event.type, recipient: maskEmail(input.event.recipient), outcome }, 'ses event');
        return { status: outcome === 'applied' ? 'processed' : 'duplicate' };
      }
      return handleSns(input.envelope, request, reply);
    },
  );

  async function authenticate(request: FastifyRequest): Promise<Input> {
    const raw = request.rawBody ?? Buffer.alloc(0);
    const snsType = request.headers['x-amz-sns-message-type'];
    if (snsType !== undefined) {
      const envelope = parseSnsEnvelope(request.body, String(snsType));
      verifier.assertTopic(envelope);
      const result = await verifier.verify(envelope);
      if (!result.ok) throw snsUnauthorized(result.reason);
      return { kind: 'sns', envelope };
    }
    const secret = rules.sesWebhookSecret;
    if (!secret) throw unauthorized('signed SES events are not enabled (SES_WEBHOOK_SECRET is not set)');
    const signature = request.headers['x-amz-sns-signature'];
    if (!verifyBodyHmac(secret, raw, typeof signature === 'string' ? signature : undefined)) {
      throw unauthorized('missing or invalid X-Amz-Sns-Signature');
    }
    if (!validateContract(request.body)) {
      const e = validateContract.errors?.[0];
      throw unprocessable(`body${e?.instancePath ?? ''} ${e?.message ?? 'is not a SesEvent'}`);
    }
    return { kind: 'contract', event: normalizeContractEvent(request.body) };
  }

  async function handleSns(envelope: SnsEnvelope, request: FastifyRequest, reply: FastifyReply) {
    const log = { sns_message_id: envelope.MessageId, topic: envelope.TopicArn, type: envelope.Type };
    if (envelope.Type === 'SubscriptionConfirmation') {
      try {
        await verifier.confirmSubscription(envelope);
      } catch (err) {
        if (err instanceof DomainError) throw err;
        request.log.warn({ ...log, err: (err as Error).message }, 'SNS subscription confirmation failed');
        return sendError(request, reply, new HttpError(502, 'confirmation_failed', 'could not confirm the subscription with SNS'));
      }
      request.log.info(log, 'SNS subscription confirmed');
      return { status: 'confirmed' };
    }
    if (envelope.Type === 'UnsubscribeConfirmation') {
      request.log.warn(log, 'SNS subscription removed; not re-subscribing');
      return { status: 'ignored' };
    }
    let message: unknown;
    try {
      message = JSON.parse(envelope.Message);
    } catch {
      throw unprocessable('SNS Message is not JSON', 'malformed_body');
    }
    const normalized = normalizeSesMessage(message);
    if (normalized.kind === 'ignored') return { status: 'ignored', reason: normalized.reason };
    const outcomes = await writer.write(normalized.events);
    request.log.info({ ...log, event: normalized.eventType, outcomes: count(outcomes) }, 'ses event');
    // SNS redelivers anything but 2xx: a message we do not know (another sender on the same
    // configuration set, or one already purged) is acknowledged, not retried for hours.
    if (outcomes.every((o) => o === 'unmatched')) return { status: 'ignored', reason: 'no matching message' };
    return { status: outcomes.some((o) => o === 'applied') ? 'processed' : 'duplicate' };
  }
}

function count(outcomes: EventOutcome[]) {
  const c: Record<string, number> = {};
  for (const o of outcomes) c[o] = (c[o] ?? 0) + 1;
  return c;
}
