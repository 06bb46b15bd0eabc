import type { FastifyInstance } from 'fastify';
import { channelDeliverability } from '../../channels/reports.ts';
import { addressDomain } from '../../domains/names.ts';
import { resolveWindow } from '../../observability/cursor.ts';
import { deliverabilityReport, engagementReport, templatePerformanceReport, type GroupBy } from '../../observability/reports.ts';
import type { AppDeps } from '../app.ts';
import { HttpError } from '../errors.ts';
import { dateTime, pageQuery } from '../read-api.ts';
import { failures } from '../schemas.ts';

const integer = { type: 'integer' } as const;
const number = { type: 'number' } as const;

/** Reported figures, all required in every row. */
const row = (properties: Record<string, object>) => ({ type: 'object', required: Object.keys(properties), properties }) as const;
const dataOf = (item: object) => ({ type: 'object', required: ['data'], properties: { data: { type: 'array', items: item } } }) as const;

const Deliverability = row({
  period: dateTime, sent: integer, delivered: integer, bounced: integer, complained: integer, suppressed: integer, delivery_rate: number,
});
const Engagement = row({
  period: dateTime, sent: integer, delivered: integer, opens: integer, unique_opens: integer, clicks: integer, unique_clicks: integer,
  open_rate: number, click_rate: number,
});
const TemplatePerformance = row({
  template: { type: 'string', description: "The stored template's slug, or the list send job's name for an inline template" },
  template_id: { type: ['string', 'null'], format: 'uuid', description: 'The stored template the sends used; null for an inline template' },
  version: { type: ['integer', 'null'], description: 'The stored template version the sends used (GET /v1/templates/{id}/versions/{version}); null for an inline template' },
  sent: integer, delivered: integer, opens: integer, unique_opens: integer, clicks: integer, unique_clicks: integer,
  bounced: integer, complained: integer, bounce_rate: number, complaint_rate: number, open_rate: number, click_rate: number,
});

// The reference's channel filter is accepted by the schema only to be refused by name: the
// roll-ups are per tenant, identity and template, so honouring it would need a raw-event scan.
// `identity` (an address or a bare domain) reads the per-identity roll-up.
const unsupportedFilters = {
  channel: { type: 'string', maxLength: 320 },
  identity: { type: 'string', maxLength: 320, description: 'Sending identity: an address (only its domain counts) or a domain' },
} as const;
const windowQuery = { from: pageQuery.from, to: pageQuery.to } as const;
const groupBy = { type: 'string', enum: ['day', 'week', 'month'], default: 'day' } as const;

interface ReportQuery {
  from?: string;
  to?: string;
  channel?: string;
  identity?: string;
}

/** Refuses `channel`; answers the identity filter's domain (undefined without one). */
function reportFilters(q: ReportQuery): string | undefined {
  if (q.channel !== undefined) {
    throw new HttpError(422, 'validation_failed', `the channel filter is not supported by this engine's reports (they are rolled up per tenant, identity and template); drop it`);
  }
  if (q.identity === undefined) return undefined;
  const domain = addressDomain(q.identity.includes('@') ? q.identity : `x@${q.identity}`);
  if (!domain) throw new HttpError(422, 'validation_failed', 'identity must be an email address or a domain name');
  return domain;
}

export async function reportRoutes(app: FastifyInstance, deps: AppDeps) {
  const { db } = deps;
  const security = [{ bearerAuth: [] }];

  const timeSeries = (path: string, summary: string, item: object, report: typeof deliverabilityReport | typeof engagementReport) =>
    app.get<{ Querystring: ReportQuery & { group_by: GroupBy } }>(
      path,
      {
        config: { scope: 'reports.view' },
        schema: {
          summary,
          security,
          querystring: { type: 'object', properties: { ...windowQuery, group_by: groupBy, ...unsupportedFilters } },
          response: { 200: dataOf(item), ...failures(401, 403, 422) },
        },
      },
      async (request) => {
        const q = request.query;
        // SMS and WhatsApp deliverability (src/channels/reports.ts); other channel filters are refused below.
        if (report === deliverabilityReport && (q.channel === 'sms' || q.channel === 'whatsapp') && q.identity === undefined) {
          return { data: await channelDeliverability(db, request.principal.tenantId, q.channel, resolveWindow(q.from, q.to), q.group_by) };
        }
        const identity = reportFilters(q);
        return { data: await report(db, request.principal.tenantId, resolveWindow(q.from, q.to), q.group_by, identity) };
      },
    );

  timeSeries('/v1/reports/deliverability', 'Deliverability time series (UTC buckets, empty ones omitted)', Deliverability, deliverabilityReport);
  timeSeries('/v1/reports/engagement', 'Engagement time series: opens, clicks, unique recipients per UTC day summed per bucket', Engagement, engagementReport);

  app.get<{ Querystring: ReportQuery & { template?: string } }>(
    '/v1/reports/template-performance',
    {
      config: { scope: 'reports.view' },
      schema: {
        summary: 'One row per template over the window, by sends descending',
        security,
        querystring: { type: 'object', properties: { ...windowQuery, template: { type: 'string', maxLength: 256 }, ...unsupportedFilters } },
        response: { 200: dataOf(TemplatePerformance), ...failures(401, 403, 422) },
      },
    },
    async (request) => {
      const q = request.query;
      const identity = reportFilters(q);
      return { data: await templatePerformanceReport(db, request.principal.tenantId, resolveWindow(q.from, q.to), { template: q.template, identity }) };
    },
  );
}
