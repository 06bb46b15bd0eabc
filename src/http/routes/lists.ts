import type { FastifyInstance } from 'fastify';
import { getList } from '../../lists/lists.ts';
import type { AppDeps } from '../app.ts';
import { notFound } from '../errors.ts';
import { errors } from '../schemas.ts';
import { ListDetail } from '../schemas/lists.ts';
import { webhookListRoutes } from './webhooks-lists.ts';

/** Lists: the Member Center's signed webhooks (own scope, raw bodies) and GET /api/lists/{id}. */
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
}
