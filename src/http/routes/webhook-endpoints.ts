import type { FastifyInstance } from 'fastify';
import type { WebhookEventType, DeliveryStatus } from '../../webhooks/event-types.ts';
import {
  createEndpoint, deleteEndpoint, getEndpoint, listDeliveries, listEndpoints, retryDelivery, rotateEndpointSecret, updateEndpoint,
  type EndpointPatch,
} from '../../webhooks/endpoints.ts';
import { secretBoxFor, type SecretBox } from '../../webhooks/secret-box.ts';
import type { AppDeps } from '../app.ts';
import { HttpError } from '../errors.ts';
import { sendPage } from '../read-api.ts';
import { failures } from '../schemas.ts';
import {
  CreatedEndpoint, CreateEndpointRequest, Delivery, DeliveryPage, deliveryListQuery, Endpoint, EndpointPage, endpointListQuery, idParams,
  RotatedSecret, UpdateEndpointRequest,
} from '../schemas/webhooks.ts';

type Id = { Params: { id: string } };

/** Outbound webhook endpoints of the caller's tenant, and their deliveries (scope webhooks.manage). */
export async function webhookEndpointRoutes(app: FastifyInstance, deps: AppDeps) {
  const { db } = deps;
  const allowPrivate = deps.config.webhooks.allowPrivate;
  const common = { config: { scope: 'webhooks.manage' as const } };
  const security = [{ bearerAuth: [] }];
  const tags = ['webhooks'];
  let box: SecretBox | undefined;
  const secrets = () => {
    try {
      return (box ??= secretBoxFor(deps.config));
    } catch (err) {
      throw new HttpError(503, 'webhooks_unavailable', (err as Error).message);
    }
  };

  app.post<{ Body: { url: string; event_types?: WebhookEventType[] | null; description?: string | null } }>(
    '/v1/webhook-endpoints',
    { ...common, schema: { summary: 'Register a webhook endpoint (the signing secret is shown once)', tags, security, body: CreateEndpointRequest, response: { 201: CreatedEndpoint, ...failures(401, 403, 422, 503) } } },
    async (request, reply) => reply.code(201).send(await createEndpoint(db, secrets(), request.principal.tenantId, request.body, allowPrivate)),
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/webhook-endpoints',
    { ...common, schema: { summary: 'Webhook endpoints, newest first', tags, security, querystring: endpointListQuery, response: { 200: EndpointPage, ...failures(401, 403, 422) } } },
    async (request, reply) => sendPage(request, reply, await listEndpoints(db, request.principal.tenantId, request.query)),
  );

  app.get<Id>(
    '/v1/webhook-endpoints/:id',
    { ...common, schema: { summary: 'One webhook endpoint', tags, security, params: idParams, response: { 200: Endpoint, ...failures(401, 403, 404, 422) } } },
    async (request) => getEndpoint(db, request.principal.tenantId, request.params.id),
  );

  app.patch<Id & { Body: EndpointPatch }>(
    '/v1/webhook-endpoints/:id',
    { ...common, schema: { summary: 'Change url, event types, description or status (enabled | disabled)', tags, security, params: idParams, body: UpdateEndpointRequest, response: { 200: Endpoint, ...failures(401, 403, 404, 422) } } },
    async (request) => updateEndpoint(db, request.principal.tenantId, request.params.id, request.body, allowPrivate),
  );

  app.delete<Id>(
    '/v1/webhook-endpoints/:id',
    { ...common, schema: { summary: 'Delete an endpoint and what is still owed to it', tags, security, params: idParams, response: { 204: { type: 'null' }, ...failures(401, 403, 404, 422) } } },
    async (request, reply) => {
      await deleteEndpoint(db, request.principal.tenantId, request.params.id);
      return reply.code(204).send();
    },
  );

  app.post<Id>(
    '/v1/webhook-endpoints/:id/rotate-secret',
    { ...common, schema: { summary: 'New signing secret; the previous one keeps signing for 24 h', tags, security, params: idParams, response: { 200: RotatedSecret, ...failures(401, 403, 404, 422, 503) } } },
    async (request) => rotateEndpointSecret(db, secrets(), request.principal.tenantId, request.params.id),
  );

  app.get<Id & { Querystring: { limit: number; cursor?: string; status?: DeliveryStatus } }>(
    '/v1/webhook-endpoints/:id/deliveries',
    { ...common, schema: { summary: "An endpoint's deliveries, newest first", tags, security, params: idParams, querystring: deliveryListQuery, response: { 200: DeliveryPage, ...failures(401, 403, 404, 422) } } },
    async (request, reply) => sendPage(request, reply, await listDeliveries(db, request.principal.tenantId, request.params.id, request.query)),
  );

  app.post<Id>(
    '/v1/webhook-deliveries/:id/retry',
    { ...common, schema: { summary: 'Redeliver now', tags, security, params: idParams, response: { 202: Delivery, ...failures(401, 403, 404, 409, 422) } } },
    async (request, reply) => reply.code(202).send(await retryDelivery(db, request.principal.tenantId, request.params.id)),
  );
}
