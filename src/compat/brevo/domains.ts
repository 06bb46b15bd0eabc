import type { FastifyInstance } from 'fastify';
import { dnsChecker } from '../../domains/dns-check.ts';
import {
  createDomain, defaultSender, deleteDomain, domainId, getDomain, listDomains, verifyDomain, type DnsRecordView, type DomainContext, type DomainView,
} from '../../domains/domains.ts';
import { brevoFailures, notSupported } from './errors.ts';
import type { BrevoDeps } from './index.ts';

const nameParam = { type: 'object', required: ['domainName'], properties: { domainName: { type: 'string', minLength: 1, maxLength: 253 } } } as const;
const record = { type: 'object', properties: { host_name: { type: 'string' }, type: { type: 'string' }, value: { type: 'string' }, status: { type: 'boolean' } } } as const;
const dnsRecords = {
  type: 'object',
  properties: { brevo_code: record, dkim_record: record, dmarc_record: record, spf_record: record, return_path_record: record, tracking_record: record },
} as const;

/**
 * Brevo's records are an ownership code, DKIM and DMARC; ours are DKIM, SPF and the return-path
 * MX (both on the return-path host), DMARC and tracking. `brevo_code` carries our SPF record (the one
 * that proves the domain is set up for us); every record is also under its own key.
 */
function records(d: DomainView) {
  const first = (purpose: DnsRecordView['purpose'], type?: string) => {
    const r = d.dns_records.find((x) => x.purpose === purpose && (type === undefined || x.type === type) && x.required !== false) ?? d.dns_records.find((x) => x.purpose === purpose);
    return r && { host_name: r.name, type: r.type, value: r.priority === undefined ? r.value : `${r.priority} ${r.value}`, status: r.status === 'verified' };
  };
  return {
    brevo_code: first('spf'), dkim_record: first('dkim'), dmarc_record: first('dmarc'),
    spf_record: first('spf'), return_path_record: first('return_path'), tracking_record: first('tracking'),
  };
}

/** Brevo's sending domains (/senders/domains) onto ours (src/domains), named by domain name; and its senders. */
export async function domainRoutes(app: FastifyInstance, deps: BrevoDeps) {
  const { db, config } = deps;
  const ctx: DomainContext = { settings: config.domains, secretsKey: config.secretsKey };
  const checker = dnsChecker(config.domains.dnsServers);
  const common = { config: { scope: 'domains.manage', credentialHeader: 'api-key' } } as const;
  const tags = ['brevo'];
  const verified = (d: DomainView) => d.status === 'verified';

  app.get(
    '/senders/domains',
    {
      ...common,
      schema: {
        summary: 'Brevo: sending domains', tags,
        response: {
          200: {
            type: 'object',
            properties: {
              count: { type: 'integer' }, current_page: { type: 'integer' }, total_pages: { type: 'integer' },
              domains: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, domain_name: { type: 'string' }, authenticated: { type: 'boolean' }, verified: { type: 'boolean' }, ip: { type: ['string', 'null'] }, provider: { type: 'string' } } } },
            },
          },
          ...brevoFailures,
        },
      },
    },
    async (request) => {
      const all: DomainView[] = [];
      let cursor: string | undefined;
      do {
        const page = await listDomains(db, ctx, request.principal.tenantId, { limit: 200, cursor });
        all.push(...page.data);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      return {
        count: all.length, current_page: 1, total_pages: 1,
        domains: all.map((d) => ({ id: d.id, domain_name: d.name, authenticated: verified(d), verified: verified(d), ip: null, provider: '' })),
      };
    },
  );

  app.post<{ Body: { name: string } }>(
    '/senders/domains',
    {
      ...common,
      schema: {
        summary: 'Brevo: add a sending domain', tags,
        body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1, maxLength: 253 } } },
        response: { 201: { type: 'object', properties: { id: { type: 'string' }, domain_name: { type: 'string' }, message: { type: 'string' }, dns_records: dnsRecords } }, ...brevoFailures },
      },
    },
    async (request, reply) => {
      const d = await createDomain(db, ctx, request.principal.tenantId, request.body.name);
      request.log.info({ domain_id: d.id, domain: d.name }, 'brevo domain added');
      return reply.code(201).send({ id: d.id, domain_name: d.name, message: 'Domain added: publish the DNS records, then authenticate it', dns_records: records(d) });
    },
  );

  app.get<{ Params: { domainName: string } }>(
    '/senders/domains/:domainName',
    {
      ...common,
      schema: {
        summary: 'Brevo: a domain and its DNS records', tags, params: nameParam,
        response: { 200: { type: 'object', properties: { domain: { type: 'string' }, verified: { type: 'boolean' }, authenticated: { type: 'boolean' }, dns_records: dnsRecords } }, ...brevoFailures },
      },
    },
    async (request) => {
      const tenantId = request.principal.tenantId;
      const d = await getDomain(db, ctx, tenantId, await domainId(db, tenantId, request.params.domainName));
      return { domain: d.name, verified: verified(d), authenticated: verified(d), dns_records: records(d) };
    },
  );

  app.put<{ Params: { domainName: string } }>(
    '/senders/domains/:domainName/authenticate',
    { ...common, schema: { summary: 'Brevo: check the DNS records now', tags, params: nameParam, response: { 200: { type: 'object', properties: { domain_name: { type: 'string' }, message: { type: 'string' } } }, ...brevoFailures } } },
    async (request) => {
      const tenantId = request.principal.tenantId;
      const d = await verifyDomain(db, ctx, checker, tenantId, await domainId(db, tenantId, request.params.domainName));
      return { domain_name: d.name, message: verified(d) ? 'Domain has been authenticated successfully.' : `Domain is ${d.status}${d.status_reason ? `: ${d.status_reason}` : ''}` };
    },
  );

  app.delete<{ Params: { domainName: string } }>(
    '/senders/domains/:domainName',
    { ...common, schema: { summary: 'Brevo: remove a sending domain', tags, params: nameParam, response: { 204: { type: 'null' }, ...brevoFailures } } },
    async (request, reply) => {
      const tenantId = request.principal.tenantId;
      await deleteDomain(db, tenantId, await domainId(db, tenantId, request.params.domainName));
      return reply.code(204).send();
    },
  );

  // Senders: any address of a verified domain may send here; the one sender to list is the default.
  app.get(
    '/senders',
    {
      ...common,
      schema: {
        summary: "Brevo: senders (the account's default sender)", tags,
        response: { 200: { type: 'object', properties: { senders: { type: 'array', items: { type: 'object', properties: { id: { type: 'integer' }, name: { type: 'string' }, email: { type: 'string' }, active: { type: 'boolean' }, ips: { type: 'array', items: { type: 'object' } } } } } } }, ...brevoFailures },
      },
    },
    async (request) => {
      const address = (await defaultSender(db, request.principal.tenantId)) ?? config.jobs.defaultFrom;
      return { senders: address ? [{ id: 1, name: '', email: address, active: true, ips: [] }] : [] };
    },
  );

  app.post(
    '/senders',
    { ...common, schema: { summary: 'Brevo: create a sender (refused: add the domain instead)', tags, response: { ...brevoFailures } } },
    async () => {
      throw notSupported('senders', 'any address of a verified sending domain sends here: add the domain with POST /senders/domains and authenticate it');
    },
  );
}
