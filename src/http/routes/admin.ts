import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiKeyError, createApiKey, listApiKeys, revokeApiKey, rotateApiKey, type KeyEnvironment } from '../../auth/api-keys.ts';
import { DEFAULT_SCOPES, type Scope } from '../../auth/scopes.ts';
import { resumeNewsletters } from '../../events/guardrail.ts';
import { createWebhookClient, listWebhookClients, retireOldSecret, rotateWebhookSecret } from '../../lists/webhook-clients.ts';
import { decodeCursor, encodeCursor } from '../../observability/cursor.ts';
import { createTenant, getTenant, listTenants, pauseTenantSending, updateTenant } from '../../tenants/tenants.ts';
import type { AppDeps } from '../app.ts';
import { HttpError, notFound, unauthorized } from '../errors.ts';
import { sendPage } from '../read-api.ts';
import { errors } from '../schemas.ts';
import {
  ApiKeyList, ClientParams, CreatedTenant, CreateKeyRequest, CreateTenantRequest, IssuedKey, KeyParams, PauseTenantRequest, Tenant, TenantPage,
  TenantParams, TenantsQuery, UpdateTenantRequest, WebhookClientList, WebhookClientSecret,
} from '../schemas/admin.ts';

const security = [{ adminToken: [] }];
const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * The operator's API (/v1/admin/*): tenants, their API keys and Member Center webhook clients,
 * mirroring the CLI. Guarded by ADMIN_TOKEN as a bearer token, compared in constant time (both
 * sides hashed first, so lengths never leak); unset, every admin route answers 403 admin_disabled.
 */
export async function adminRoutes(app: FastifyInstance, deps: AppDeps) {
  const expected = deps.config.adminToken ? sha256(deps.config.adminToken) : undefined;

  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (!request.url.startsWith('/v1/admin/')) return;
    if (!expected) throw new HttpError(403, 'admin_disabled', 'the admin API is off: set ADMIN_TOKEN to enable it');
    const given = request.headers.authorization?.match(/^Bearer (\S+)$/)?.[1];
    if (!given || !timingSafeEqual(sha256(given), expected)) throw unauthorized('missing or wrong operator token (ADMIN_TOKEN)');
  });

  const tenantOr404 = async (id: string) => {
    const t = await getTenant(deps.db, id);
    if (!t) throw notFound(`tenant ${id} not found`);
    return t;
  };
  const keyError = (err: unknown) => {
    if (err instanceof ApiKeyError) throw notFound(err.message);
    throw err;
  };
  const schema = (summary: string, extra: Record<string, unknown>, response: Record<number, unknown>) => ({ schema: { summary, tags: ['admin'], security, ...extra, response } });

  app.post<{ Body: { name: string; max_send_rate?: number | null } }>(
    '/v1/admin/tenants',
    schema('Create a tenant; answers a live API key with the default scopes, once', { body: CreateTenantRequest }, { 201: CreatedTenant, ...errors(401, 403, 422) }),
    async (request, reply) => {
      const created = await createTenant(deps.db, request.body.name);
      if (request.body.max_send_rate !== undefined) await updateTenant(deps.db, created.id, { max_send_rate: request.body.max_send_rate });
      const key = await createApiKey(deps.db, created.id, DEFAULT_SCOPES, { environment: 'live', name: 'created with the tenant' });
      request.log.info({ tenant_id: created.id }, 'tenant created (admin)');
      return reply.code(201).send({ ...(await tenantOr404(created.id)), token: key.secret });
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/admin/tenants',
    schema('Tenants, oldest first', { querystring: TenantsQuery }, { 200: TenantPage, ...errors(401, 403, 422) }),
    async (request, reply) => {
      const after = decodeCursor(request.query.cursor, { id: 'uuid' });
      const { data, more } = await listTenants(deps.db, { limit: request.query.limit, after: after?.id });
      return sendPage(request, reply, { data, nextCursor: more ? encodeCursor({ id: data[data.length - 1].id }) : null });
    },
  );

  app.get<{ Params: { id: string } }>('/v1/admin/tenants/:id', schema('A tenant', { params: TenantParams }, { 200: Tenant, ...errors(401, 403, 404, 422) }), async (request) =>
    tenantOr404(request.params.id),
  );

  app.patch<{ Params: { id: string }; Body: { name?: string; max_send_rate?: number | null } }>(
    '/v1/admin/tenants/:id',
    schema('Rename a tenant, set its send rate', { params: TenantParams, body: UpdateTenantRequest }, { 200: Tenant, ...errors(401, 403, 404, 422) }),
    async (request) => (await updateTenant(deps.db, request.params.id, request.body)) ?? (await tenantOr404(request.params.id)),
  );

  app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>(
    '/v1/admin/tenants/:id/pause-sending',
    schema('Pause the tenant\'s newsletters (transactional sends go on)', { params: TenantParams, body: PauseTenantRequest }, { 200: Tenant, ...errors(401, 403, 404, 422) }),
    async (request) => (await pauseTenantSending(deps.db, request.params.id, `operator: ${request.body?.reason ?? 'paused'}`)) ?? tenantOr404(request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/admin/tenants/:id/resume-sending',
    schema('Resume the tenant\'s newsletters (paused by an operator or the guardrail)', { params: TenantParams }, { 200: Tenant, ...errors(401, 403, 404, 422) }),
    async (request) => {
      await resumeNewsletters(deps.db, request.params.id);
      return tenantOr404(request.params.id);
    },
  );

  app.post<{ Params: { id: string }; Body: { scopes: Scope[]; environment: KeyEnvironment; name?: string } }>(
    '/v1/admin/tenants/:id/api-keys',
    schema('Create an API key (its secret shown once)', { params: TenantParams, body: CreateKeyRequest }, { 201: IssuedKey, ...errors(401, 403, 404, 422) }),
    async (request, reply) => {
      await tenantOr404(request.params.id);
      const key = await createApiKey(deps.db, request.params.id, request.body.scopes, { environment: request.body.environment, name: request.body.name }).catch(keyError);
      return reply.code(201).send(key);
    },
  );

  app.get<{ Params: { id: string } }>('/v1/admin/tenants/:id/api-keys', schema('A tenant\'s API keys (no secrets)', { params: TenantParams }, { 200: ApiKeyList, ...errors(401, 403, 404, 422) }), async (request) => {
    await tenantOr404(request.params.id);
    return { data: (await listApiKeys(deps.db, request.params.id)).map(({ id, ...key }) => ({ key_id: id, ...key })) };
  });

  app.post<{ Params: { id: string; key_id: string } }>(
    '/v1/admin/tenants/:id/api-keys/:key_id/rotate',
    schema('Rotate a key: a new secret; the old one works 24 h more', { params: KeyParams }, { 200: IssuedKey, ...errors(401, 403, 404, 422) }),
    async (request) => rotateApiKey(deps.db, request.params.key_id, request.params.id).catch(keyError),
  );

  app.post<{ Params: { id: string; key_id: string } }>(
    '/v1/admin/tenants/:id/api-keys/:key_id/revoke',
    schema('Revoke a key (at once)', { params: KeyParams }, { 204: { type: 'null' }, ...errors(401, 403, 404, 422) }),
    async (request, reply) => {
      await revokeApiKey(deps.db, request.params.key_id, request.params.id).catch(keyError);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/admin/tenants/:id/webhook-clients',
    schema('Register a Member Center webhook client (its secret shown once)', { params: TenantParams }, { 201: WebhookClientSecret, ...errors(401, 403, 404, 422) }),
    async (request, reply) => {
      await tenantOr404(request.params.id);
      const c = await createWebhookClient(deps.db, request.params.id);
      return reply.code(201).send({ client_id: c.clientId, secret: c.secret });
    },
  );

  app.get<{ Params: { id: string } }>('/v1/admin/tenants/:id/webhook-clients', schema('A tenant\'s webhook clients (no secrets)', { params: TenantParams }, { 200: WebhookClientList, ...errors(401, 403, 404, 422) }), async (request) => {
    await tenantOr404(request.params.id);
    return { data: await listWebhookClients(deps.db, request.params.id) };
  });

  app.post<{ Params: { id: string; client_id: string } }>(
    '/v1/admin/tenants/:id/webhook-clients/:client_id/rotate',
    schema('Start a rotation: a new secret; the old one stays valid until retired', { params: ClientParams }, { 200: WebhookClientSecret, ...errors(401, 403, 404, 422) }),
    async (request) => {
      const c = await rotateWebhookSecret(deps.db, request.params.client_id, request.params.id);
      return { client_id: c.clientId, secret: c.secret };
    },
  );

  app.post<{ Params: { id: string; client_id: string } }>(
    '/v1/admin/tenants/:id/webhook-clients/:client_id/retire',
    schema('End a rotation: only the newest secret stays valid', { params: ClientParams }, { 204: { type: 'null' }, ...errors(401, 403, 404, 422) }),
    async (request, reply) => {
      await retireOldSecret(deps.db, request.params.client_id, request.params.id);
      return reply.code(204).send();
    },
  );
}
