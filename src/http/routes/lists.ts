import type { FastifyInstance } from 'fastify';
import { getList } from '../../lists/lists.ts';
import { optOutMember } from '../../lists/opt-out.ts';
import type { AppDeps } from '../app.ts';
import { notFound } from '../errors.ts';
import { errors, failures } from '../schemas.ts';
import { ListDetail, MemberOptOut, MemberParams } from '../schemas/lists.ts';
import { webhookListRoutes } from './webhooks-lists.ts';

/**
 * Lists: the Member Center's signed webhooks (own scope, raw bodies), GET /api/lists/{id} and
 * the manual unsubscribe of a member (an engine opt-out, source "api").
 */
export async function listRoutes(app: FastifyInstance, deps: AppDeps) {
  await app.register(webhookListRoutes, deps);

  app.get<{ Params: { id: string } }>(
    '/api/lists/:id',
    {
      config: { scope: 'lists.view' },
      schema: {
        summary: 'A list with member counts by status and its last sync',
        security: [{ bearerAuth: [] }],
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', format: 'uuid' } } },
        response: { 200: ListDetail, ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const list = await getList(deps.db, request.principal.tenantId, request.params.id);
      // Another tenant's list is indistinguishable from one that does not exist.
      if (!list) throw notFound(`list ${request.params.id} not found`);
      return list;
    },
  );

  app.post<{ Params: { id: string; subscriber_id: string } }>(
    '/api/lists/:id/members/:subscriber_id/unsubscribe',
    {
      config: { scope: 'lists.manage' },
      schema: {
        summary: 'Unsubscribe a member from a list (an opt-out no full sync undoes; sent to the Member Center)',
        security: [{ bearerAuth: [] }],
        params: MemberParams,
        response: { 200: MemberOptOut, ...failures(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { id, subscriber_id: subscriberId } = request.params;
      const r = await optOutMember(deps.db, { tenantId: request.principal.tenantId, listId: id, subscriberId, source: 'api' });
      // Another tenant's list answers like a list without this member.
      if (!r.member) throw notFound(`subscriber ${subscriberId} is not a member of list ${id}`);
      return {
        list_id: id.toLowerCase(),
        subscriber_id: subscriberId.toLowerCase(),
        status: r.status,
        changed: r.changed,
        opted_out_at: r.optedOutAt?.toISOString() ?? null,
        opt_out_source: r.optOutSource,
      };
    },
  );
}
