import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../metrics/metrics.ts';
import { metricsTokenMatches } from '../../metrics/server.ts';
import { unauthorized } from '../errors.ts';
import { failures } from '../schemas.ts';

/** GET /metrics on the API port, behind METRICS_TOKEN (registered only when it is set). */
export async function metricsRoutes(app: FastifyInstance, opts: { metrics: Metrics; token: string }) {
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (text exposition format); Authorization: Bearer METRICS_TOKEN',
        security: [{ bearerAuth: [] }],
        response: { 200: { type: 'string', description: 'Prometheus text format 0.0.4' }, ...failures(401) },
      },
    },
    async (request, reply) => {
      if (!metricsTokenMatches(request.headers.authorization, opts.token)) throw unauthorized('GET /metrics needs Authorization: Bearer <METRICS_TOKEN>');
      return reply.type(opts.metrics.contentType).send(await opts.metrics.metrics());
    },
  );
}
