import type { FastifyInstance } from 'fastify';
import {
  drainUndeliverable,
  listUndeliverable,
  syncUndeliverableRules,
  UNDELIVERABLE_REASONS,
  undeliverableRules,
  type UndeliverableFilters,
  type UndeliverableReason,
} from '../../observability/undeliverable.ts';
import type { AppDeps } from '../app.ts';
import { dateTime, MAX_LIMIT, Pagination, sendPage } from '../read-api.ts';
import { failures } from '../schemas.ts';

const RULES_VERSION_HEADER = 'X-SendEngine-Rules-Version';

const str = { type: 'string' } as const;

// Listed rows omit the exclusion fields and tombstones the classification ones, so nothing but
// email, status and last_changed_at is required.
const Undeliverable = {
  type: 'object',
  required: ['email', 'status', 'last_changed_at'],
  properties: {
    email: { type: 'string', description: 'Full address: this list exists to feed the caller\'s own suppression list' },
    status: { type: 'string', enum: ['listed', 'excluded'] },
    reason: { type: 'string', enum: [...UNDELIVERABLE_REASONS] },
    subtype: str,
    first_seen_at: dateTime,
    last_seen_at: dateTime,
    last_changed_at: dateTime,
    event_count: { type: 'integer' },
    last_diagnostic: str,
    last_sender_identity: str,
    excluded_at: dateTime,
    excluded_by: str,
    exclusion_reason: str,
  },
} as const;

const Rule = {
  type: 'object',
  required: ['enabled', 'locked', 'events', 'window_days'],
  properties: { enabled: { type: 'boolean' }, locked: { type: 'boolean' }, events: { type: 'integer' }, window_days: { type: 'integer' } },
} as const;

interface ListQuery {
  limit: number;
  cursor?: string;
  since?: string;
  status?: 'listed' | 'excluded' | 'all';
  reason?: UndeliverableReason;
  email?: string;
  min_events?: number;
}

/**
 * GET /v1/undeliverable and /v1/undeliverable/rules (scope undeliverable.view). Addresses are
 * not masked: the scope is granted for exactly this purpose, as suppressions.view is for the
 * suppression list.
 */
export async function undeliverableRoutes(app: FastifyInstance, deps: AppDeps) {
  const { db } = deps;
  const security = [{ bearerAuth: [] }];

  // This process ingests SES feedback (/webhooks/ses) with its own soft-bounce rule: the
  // classification trigger must apply the same one.
  await syncUndeliverableRules(db, deps.config.events);

  app.get<{ Querystring: ListQuery }>(
    '/v1/undeliverable',
    {
      config: { scope: 'undeliverable.view' },
      schema: {
        summary: 'Undeliverable recipients (permanent failures + operator exclusions), oldest change first',
        security,
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 50 },
            cursor: { type: 'string', maxLength: 1000 },
            since: { type: 'string', format: 'date-time', maxLength: 64 },
            status: { type: 'string', enum: ['listed', 'excluded', 'all'] },
            reason: { type: 'string', enum: [...UNDELIVERABLE_REASONS] },
            email: { type: 'string', maxLength: 320 },
            min_events: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['data', 'pagination'],
            properties: {
              data: { type: 'array', items: Undeliverable },
              pagination: Pagination,
            },
          },
          ...failures(401, 403, 422),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const filters: UndeliverableFilters = { since: q.since ? new Date(q.since) : undefined, status: q.status, reason: q.reason, email: q.email, minEvents: q.min_events };
      // Read-your-writes: whatever feedback has committed is folded in before the page is read.
      await drainUndeliverable(db);
      const [page, rules] = await Promise.all([
        listUndeliverable(db, request.principal.tenantId, filters, { limit: q.limit, cursor: q.cursor }),
        undeliverableRules(db),
      ]);
      reply.header(RULES_VERSION_HEADER, rules.version);
      return sendPage(request, reply, page);
    },
  );

  app.get(
    '/v1/undeliverable/rules',
    {
      config: { scope: 'undeliverable.view' },
      schema: {
        summary: 'The classification rules /v1/undeliverable applies',
        security,
        response: {
          200: {
            type: 'object',
            required: ['profile', 'rules', 'version', 'updated_at', 'updated_by'],
            properties: {
              profile: str,
              rules: { type: 'object', required: [...UNDELIVERABLE_REASONS], properties: Object.fromEntries(UNDELIVERABLE_REASONS.map((r) => [r, Rule])) },
              version: str,
              updated_at: dateTime,
              updated_by: str,
            },
          },
          ...failures(401, 403),
        },
      },
    },
    async (_request, reply) => {
      const rules = await undeliverableRules(db);
      reply.header(RULES_VERSION_HEADER, rules.version);
      return rules;
    },
  );
}
