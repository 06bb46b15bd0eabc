import type { FastifyInstance } from 'fastify';
import type { WebhookEventType } from '../../webhooks/event-types.ts';
import { createEndpoint, deleteEndpoint, getEndpoint, listEndpoints, updateEndpoint, type EndpointView } from '../../webhooks/endpoints.ts';
import { secretBoxFor, type SecretBox } from '../../webhooks/secret-box.ts';
import { HttpError } from '../../http/errors.ts';
import { brevoFailures, notSupported } from './errors.ts';
import type { BrevoDeps } from './index.ts';
import { uuidParam } from './schemas.ts';

/**
 * Brevo's webhook events and ours (docs/compat/brevo.md has the table). A Brevo event subscribes
 * to the event types listed; reading an endpoint back names each Brevo event whose types it has.
 */
export const BREVO_EMAIL_EVENTS: Record<string, WebhookEventType[]> = {
  request: ['message.sent'],
  sent: ['message.sent'],
  delivered: ['message.delivered'],
  deferred: ['message.delivery_delayed'],
  softBounce: ['message.delivery_delayed'],
  hardBounce: ['message.bounced'],
  spam: ['message.complained'],
  blocked: ['message.suppressed'],
  invalid: ['message.failed'],
  opened: ['message.opened'],
  uniqueOpened: ['message.opened'],
  click: ['message.clicked'],
  unsubscribed: ['subscription.unsubscribed'],
};
export const BREVO_SMS_EVENTS: Record<string, WebhookEventType[]> = {
  sent: ['sms.sent'],
  delivered: ['sms.delivered'],
  hardBounce: ['sms.failed'],
  softBounce: ['sms.failed'],
  unsubscribe: ['sms.opt_out'],
};

type Channel = 'email' | 'sms';
const EVENTS: Record<Channel, Record<string, WebhookEventType[]>> = { email: BREVO_EMAIL_EVENTS, sms: BREVO_SMS_EVENTS };

interface WebhookBody {
  url?: string;
  description?: string;
  events?: string[];
  type?: 'transactional' | 'marketing' | 'inbound';
  channel?: Channel;
  batched?: boolean;
}

const body = (required: string[]) => ({
  type: 'object',
  required,
  additionalProperties: false,
  properties: {
    url: { type: 'string', minLength: 1, maxLength: 2048 },
    description: { type: 'string', maxLength: 500 },
    events: { type: 'array', items: { type: 'string', maxLength: 50 }, maxItems: 30 },
    type: { type: 'string', enum: ['transactional', 'marketing', 'inbound'] },
    channel: { type: 'string', enum: ['email', 'sms'] },
    batched: { type: 'boolean' },
  },
}) as const;

const WebhookView = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'Our endpoint id (uuid)' }, url: { type: 'string' }, description: { type: 'string' }, events: { type: 'array', items: { type: 'string' } },
    type: { type: 'string' }, channel: { type: 'string' }, batched: { type: 'boolean' }, createdAt: { type: 'string' }, modifiedAt: { type: 'string' },
  },
} as const;

function ourEvents(channel: Channel, events: string[] | undefined): WebhookEventType[] | undefined {
  if (events === undefined) return undefined;
  const table = EVENTS[channel];
  const unknown = events.filter((e) => !(e in table));
  if (unknown.length) throw notSupported(`events (${unknown.join(', ')})`, `${channel} webhooks here have ${Object.keys(table).join(', ')}`);
  return [...new Set(events.flatMap((e) => table[e]))];
}

function brevoView(e: EndpointView) {
  const types = e.event_types;
  const channel: Channel = types?.length && types.every((t) => t.startsWith('sms.')) ? 'sms' : 'email';
  const table = EVENTS[channel];
  const events = Object.keys(table).filter((name) => types === null || table[name].every((t) => types.includes(t)));
  return { id: e.id, url: e.url, description: e.description ?? '', events, type: 'transactional', channel, batched: false, createdAt: e.created_at, modifiedAt: e.updated_at };
}

function refuseUnsupported(b: WebhookBody) {
  if (b.type !== undefined && b.type !== 'transactional') throw notSupported('type', 'webhooks here are transactional (message and SMS events); marketing and inbound webhooks are not available');
  if (b.batched === true) throw notSupported('batched', 'each event is delivered on its own');
}

/** Brevo's webhooks onto our outbound webhook endpoints (signed, retried; src/webhooks). */
export async function webhookRoutes(app: FastifyInstance, deps: BrevoDeps) {
  const { db, config } = deps;
  const allowPrivate = config.webhooks.allowPrivate;
  const common = { config: { scope: 'webhooks.manage', credentialHeader: 'api-key' } } as const;
  const tags = ['brevo'];
  let box: SecretBox | undefined;
  const secrets = () => {
    try {
      return (box ??= secretBoxFor(config));
    } catch (err) {
      throw new HttpError(503, 'webhooks_unavailable', (err as Error).message);
    }
  };

  app.post<{ Body: WebhookBody }>(
    '/webhooks',
    { ...common, schema: { summary: 'Brevo: create a webhook (our signing secret comes back beside the id, once)', tags, body: body(['url']), response: { 201: { type: 'object', properties: { id: { type: 'string' }, secret: { type: 'string' } } }, ...brevoFailures } } },
    async (request, reply) => {
      const b = request.body;
      refuseUnsupported(b);
      const events = ourEvents(b.channel ?? 'email', b.events ?? Object.keys(EVENTS[b.channel ?? 'email']));
      const created = await createEndpoint(db, secrets(), request.principal.tenantId, { url: b.url!, event_types: events, description: b.description }, allowPrivate);
      return reply.code(201).send({ id: created.id, secret: created.secret });
    },
  );

  app.get<{ Querystring: { type?: string; sort: 'asc' | 'desc' } }>(
    '/webhooks',
    {
      ...common,
      schema: {
        summary: 'Brevo: webhooks', tags,
        querystring: { type: 'object', properties: { type: { type: 'string', enum: ['transactional', 'marketing', 'inbound'] }, sort: { type: 'string', enum: ['asc', 'desc'], default: 'desc' } } },
        response: { 200: { type: 'object', properties: { webhooks: { type: 'array', items: WebhookView } } }, ...brevoFailures },
      },
    },
    async (request) => {
      if (request.query.type !== undefined && request.query.type !== 'transactional') return { webhooks: [] };
      const all: EndpointView[] = [];
      let cursor: string | undefined;
      do {
        const page = await listEndpoints(db, request.principal.tenantId, { limit: 200, cursor });
        all.push(...page.data);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      if (request.query.sort === 'asc') all.reverse();
      return { webhooks: all.map(brevoView) };
    },
  );

  app.get<{ Params: { webhookId: string } }>(
    '/webhooks/:webhookId',
    { ...common, schema: { summary: 'Brevo: one webhook', tags, params: uuidParam('webhookId'), response: { 200: WebhookView, ...brevoFailures } } },
    async (request) => brevoView(await getEndpoint(db, request.principal.tenantId, request.params.webhookId)),
  );

  app.put<{ Params: { webhookId: string }; Body: WebhookBody }>(
    '/webhooks/:webhookId',
    { ...common, schema: { summary: 'Brevo: update a webhook', tags, params: uuidParam('webhookId'), body: body([]), response: { 204: { type: 'null' }, ...brevoFailures } } },
    async (request, reply) => {
      const b = request.body;
      refuseUnsupported(b);
      const tenantId = request.principal.tenantId;
      const channel = b.channel ?? brevoView(await getEndpoint(db, tenantId, request.params.webhookId)).channel;
      await updateEndpoint(db, tenantId, request.params.webhookId, { url: b.url, description: b.description, event_types: ourEvents(channel, b.events) }, allowPrivate);
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: { webhookId: string } }>(
    '/webhooks/:webhookId',
    { ...common, schema: { summary: 'Brevo: delete a webhook', tags, params: uuidParam('webhookId'), response: { 204: { type: 'null' }, ...brevoFailures } } },
    async (request, reply) => {
      await deleteEndpoint(db, request.principal.tenantId, request.params.webhookId);
      return reply.code(204).send();
    },
  );
}
