import type { FastifyInstance } from 'fastify';
import { defaultSender, setDefaultSender } from '../../domains/domains.ts';
import { accountSnapshot } from '../../observability/account.ts';
import type { AppDeps } from '../app.ts';
import { notFound } from '../errors.ts';
import { failures } from '../schemas.ts';
import { UpdateAccountRequest } from '../schemas/domains.ts';

const nullableString = { type: ['string', 'null'] } as const;
const nullableNumber = { type: ['number', 'null'] } as const;

const Account = {
  type: 'object',
  required: ['org', 'transport', 'aws', 'send_quota', 'production_access', 'cloudformation', 'plan', 'guardrail'],
  properties: {
    org: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, created_at: { type: 'string', format: 'date-time' } } },
    transport: { type: 'object', properties: { kind: { type: 'string', enum: ['capture', 'smtp', 'ses'] } } },
    aws: {
      type: ['object', 'null'],
      properties: { account_id: nullableString, region: { type: 'string' }, sandbox: { type: ['boolean', 'null'] } },
    },
    send_quota: {
      type: 'object',
      properties: { max_24_hour: nullableNumber, max_send_rate: nullableNumber, sent_last_24_hours: { type: 'integer' } },
    },
    production_access: { type: 'null' },
    cloudformation: { type: 'null' },
    plan: {
      type: 'object',
      properties: {
        tier: { type: 'string' }, retention_days: { type: ['integer', 'null'] },
        api_rate_limit_per_minute: { type: 'integer' }, send_rate_limit_per_minute: { type: 'integer' },
      },
    },
    default_from: { type: ['string', 'null'], description: 'Sender of list send jobs without `from` (PATCH /v1/account)' },
    guardrail: {
      type: 'object',
      properties: {
        newsletters_paused: { type: 'boolean' },
        paused_at: { type: ['string', 'null'], format: 'date-time' },
        reason: nullableString,
        window_days: { type: 'integer' },
        sent: { type: 'integer' },
        complaint_rate: { type: 'number' },
        hard_bounce_rate: { type: 'number' },
        limits: {
          type: 'object',
          properties: { complaint_rate_percent: { type: 'number' }, hard_bounce_rate_percent: { type: 'number' }, min_sent: { type: 'integer' } },
        },
      },
    },
  },
} as const;

export async function accountRoutes(app: FastifyInstance, deps: AppDeps) {
  app.get(
    '/v1/account',
    {
      config: { scope: 'org.view' },
      schema: {
        summary: 'The tenant, its send rate and 24 h volume, API limit and newsletter guardrail',
        security: [{ bearerAuth: [] }],
        response: { 200: Account, ...failures(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const account = await accountSnapshot(deps.db, deps.config, request.principal.tenantId, request.principal.environment ?? 'live');
      if (!account) throw notFound('tenant not found');
      // As the reference advertises; the figures come from roll-ups, so polling is cheap either way.
      reply.header('Cache-Control', 'private, max-age=60');
      return { ...account, default_from: await defaultSender(deps.db, request.principal.tenantId) };
    },
  );

  app.patch<{ Body: { default_from: string | null } }>(
    '/v1/account',
    {
      config: { scope: 'domains.manage' },
      schema: {
        summary: 'Set the default sender: an address on one of the tenant\'s verified domains (docs/domains.md)',
        security: [{ bearerAuth: [] }],
        body: UpdateAccountRequest,
        response: {
          200: { type: 'object', required: ['default_from'], properties: { default_from: { type: ['string', 'null'] } } },
          ...failures(401, 403, 422),
        },
      },
    },
    async (request) => {
      await setDefaultSender(deps.db, request.principal.tenantId, request.body.default_from);
      return { default_from: request.body.default_from };
    },
  );
}
