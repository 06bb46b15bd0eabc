import type { FastifyInstance, FastifyRequest } from 'fastify';
import { applySubscriptionEvent, type SubscriptionEvent as SubscriptionEventBody } from '../../lists/events.ts';
import { applySyncBatch, type FullSyncBatch as FullSyncBatchBody } from '../../lists/sync.ts';
import { verifyWebhookRequest, WebhookAuthError, type VerifiedWebhook } from '../../lists/webhook-clients.ts';
import type { AppDeps } from '../app.ts';
import { forbidden, HttpError } from '../errors.ts';
import { keepRawJsonBody } from '../raw-body.ts';
import { errors } from '../schemas.ts';
import { FullSyncBatch, SubscriptionEvent, WebhookAccepted } from '../schemas/lists.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified Member Center client of a signed webhook request. */
    webhookClient: VerifiedWebhook | null;
  }
}

const header = (request: FastifyRequest, name: string) => {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
};

const security = [{ webhookSignature: [], webhookTimestamp: [], webhookNonce: [], webhookClientId: [] }];

/** POST /webhooks/subscriptions and /webhooks/lists/full-sync, signed by the Member Center. */
export async function webhookListRoutes(app: FastifyInstance, deps: AppDeps) {
  keepRawJsonBody(app);
  app.decorateRequest('webhookClient', null);

  // preValidation: after the body's bytes are read, before the schema, so that an unsigned
  // request answers 401 (never 422) and a foreign tenant_id answers 403.
  app.addHook('preValidation', async (request) => {
    let client: VerifiedWebhook;
    try {
      client = await verifyWebhookRequest(
        deps.db,
        {
          clientId: header(request, 'x-client-id'),
          timestamp: header(request, 'x-timestamp'),
          nonce: header(request, 'x-nonce'),
          signature: header(request, 'x-signature'),
        },
        request.rawBody ?? Buffer.alloc(0),
        deps.config.webhookToleranceSeconds,
      );
    } catch (err) {
      if (err instanceof WebhookAuthError) throw new HttpError(401, err.code, err.message);
      throw err;
    }
    request.webhookClient = client;
    const tenantId = (request.body as { tenant_id?: unknown } | undefined)?.tenant_id;
    if (typeof tenantId === 'string' && tenantId.toLowerCase() !== client.tenantId) {
      throw forbidden(`webhook client may not act for tenant ${tenantId}`);
    }
  });

  app.post<{ Body: SubscriptionEventBody }>(
    '/webhooks/subscriptions',
    {
      schema: {
        summary: 'Member Center subscription events',
        security,
        body: SubscriptionEvent,
        response: { 200: WebhookAccepted, ...errors(400, 401, 403, 409, 422) },
      },
    },
    async (request) => {
      const client = request.webhookClient!;
      const event = request.body;
      const result = await applySubscriptionEvent(deps.db, client.tenantId, client.clientId, event);
      request.log.info({ event_id: event.event_id, event_type: event.event_type, list_id: event.list_id, applied: result.applied }, 'subscription event');
      return { status: 'accepted' as const, applied: result.applied };
    },
  );

  app.post<{ Body: FullSyncBatchBody }>(
    '/webhooks/lists/full-sync',
    {
      schema: {
        summary: 'Member Center full list sync',
        security,
        body: FullSyncBatch,
        response: { 200: WebhookAccepted, ...errors(400, 401, 403, 409, 422) },
      },
    },
    async (request) => {
      const client = request.webhookClient!;
      const batch = request.body;
      const result = await applySyncBatch(deps.db, client.tenantId, batch);
      request.log.info(
        { sync_id: batch.sync_id, batch_no: batch.batch_no, batch_total: batch.batch_total, list_id: batch.list_id, subscribers: batch.subscribers.length, sync_state: result.syncState, removed: result.removed, kept_unsubscribed: result.keptUnsubscribed },
        'full sync batch',
      );
      return {
        status: 'accepted' as const,
        sync_state: result.syncState,
        batches_received: result.batchesReceived,
        batch_total: result.batchTotal,
        removed: result.removed,
        kept_unsubscribed: result.keptUnsubscribed,
      };
    },
  );
}
