import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Page } from '../observability/messages.ts';

/**
 * Shared pieces of the read API modelled on SendOps (/v1/messages, reports, suppressions,
 * undeliverable): schema fragments and the cursor page answer.
 */

/** Page-size bound of every list route, as the reference has it. */
export const MAX_LIMIT = 200;

export const nullableString = { type: ['string', 'null'] } as const;
export const dateTime = { type: 'string', format: 'date-time' } as const;
export const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;

export const Pagination = {
  type: 'object',
  required: ['has_more', 'next_cursor'],
  properties: { has_more: { type: 'boolean' }, next_cursor: nullableString },
} as const;

export const pageQuery = {
  limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 50 },
  cursor: { type: 'string', maxLength: 1000 },
  from: { type: 'string', maxLength: 64 },
  to: { type: 'string', maxLength: 64 },
} as const;

/** `{data, pagination}`, plus `Link: <...>; rel="next"`: the request's own URL with the cursor replaced. */
export function sendPage<T>(request: FastifyRequest, reply: FastifyReply, page: Page<T>) {
  if (page.nextCursor) {
    const url = new URL(request.url, 'http://placeholder');
    url.searchParams.set('cursor', page.nextCursor);
    reply.header('Link', `<${url.pathname}${url.search}>; rel="next"`);
  }
  return { data: page.data, pagination: { has_more: page.nextCursor !== null, next_cursor: page.nextCursor } };
}
