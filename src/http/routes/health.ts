import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';
import { resolveCommit } from '../../version.ts';

export async function healthRoutes(app: FastifyInstance, deps: AppDeps) {
  const commit = resolveCommit(deps.config);
  app.get(
    '/v1/_health',
    {
      schema: {
        summary: 'Liveness and version (no authentication)',
        response: {
          200: {
            type: 'object',
            required: ['status', 'commit', 'time'],
            properties: { status: { type: 'string', enum: ['ok'] }, commit: { type: 'string' }, time: { type: 'string', format: 'date-time' } },
          },
        },
      },
    },
    async () => ({ status: 'ok', commit, time: new Date().toISOString() }),
  );
}
