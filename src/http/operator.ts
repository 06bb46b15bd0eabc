import type { FastifyRequest } from 'fastify';
import { secretMatches } from '../secrets.ts';
import { notFound, unauthorized } from './errors.ts';

/**
 * Operator-only routes: `Authorization: Bearer <ADMIN_TOKEN>`. Without ADMIN_TOKEN configured the
 * route does not exist (404), so nothing operator-only is reachable by default.
 */
export function operatorOnly(adminToken: string | undefined) {
  return async (request: FastifyRequest) => {
    if (!adminToken) throw notFound(`route ${request.method} ${request.url.split('?')[0]} not found`);
    const given = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (!secretMatches(adminToken, given)) throw unauthorized('operator routes require Authorization: Bearer <ADMIN_TOKEN>');
  };
}
