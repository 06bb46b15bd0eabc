import type { FastifyInstance } from 'fastify';
import { dnsChecker } from '../../domains/dns-check.ts';
import { createDomain, deleteDomain, getDomain, listDomains, rotateDkim, verifyDomain, type DomainContext } from '../../domains/domains.ts';
import { getIdentity, getTrackingDomain, listIdentities, listTrackingDomains } from '../../domains/views.ts';
import type { AppDeps } from '../app.ts';
import { pageQuery, sendPage } from '../read-api.ts';
import { failures } from '../schemas.ts';
import { CreateDomainRequest, Domain, DomainPage, Identity, IdentityPage, TrackingDomain, TrackingDomainPage } from '../schemas/domains.ts';

const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
const nameParam = (key: string) => ({ type: 'object', required: [key], properties: { [key]: { type: 'string', minLength: 1, maxLength: 320 } } }) as const;
const listQuery = { type: 'object', properties: { limit: pageQuery.limit, cursor: pageQuery.cursor } } as const;

interface PageQuery {
  limit: number;
  cursor?: string;
}

/** Sending domains (docs/domains.md) and the SendOps-shaped identity and tracking-domain views. */
export async function domainRoutes(app: FastifyInstance, deps: AppDeps) {
  const { db } = deps;
  const ctx: DomainContext = { settings: deps.config.domains, secretsKey: deps.config.secretsKey };
  const checker = dnsChecker(deps.config.domains.dnsServers);
  const security = [{ bearerAuth: [] }];
  const manage = { scope: 'domains.manage' } as const;

  app.post<{ Body: { name: string } }>(
    '/v1/domains',
    {
      config: manage,
      schema: {
        summary: 'Add a sending domain: answers the DNS records to publish (DKIM, return path MX and SPF, DMARC, tracking)',
        security,
        body: CreateDomainRequest,
        response: { 201: Domain, ...failures(401, 403, 409, 422) },
      },
    },
    async (request, reply) => {
      const domain = await createDomain(db, ctx, request.principal.tenantId, request.body.name);
      request.log.info({ domain_id: domain.id, domain: domain.name }, 'sending domain added');
      return reply.code(201).send(domain);
    },
  );

  app.get<{ Querystring: PageQuery }>(
    '/v1/domains',
    { config: manage, schema: { summary: 'Sending domains, newest first', security, querystring: listQuery, response: { 200: DomainPage, ...failures(401, 403, 422) } } },
    async (request, reply) => sendPage(request, reply, await listDomains(db, ctx, request.principal.tenantId, request.query)),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/domains/:id',
    { config: manage, schema: { summary: 'One sending domain with its records and their status', security, params: idParam, response: { 200: Domain, ...failures(401, 403, 404) } } },
    async (request) => getDomain(db, ctx, request.principal.tenantId, request.params.id),
  );

  app.put<{ Params: { id: string } }>(
    '/v1/domains/:id/verify',
    {
      config: manage,
      schema: { summary: 'Look the records up in DNS now and store the outcome', security, params: idParam, response: { 200: Domain, ...failures(401, 403, 404) } },
    },
    async (request) => {
      const domain = await verifyDomain(db, ctx, checker, request.principal.tenantId, request.params.id);
      request.log.info({ domain_id: domain.id, status: domain.status }, 'sending domain checked');
      return domain;
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/domains/:id/rotate-dkim',
    {
      config: manage,
      schema: {
        summary: 'Start a DKIM key rotation: a new selector to publish; the current key signs until the new record is verified',
        security,
        params: idParam,
        response: { 200: Domain, ...failures(401, 403, 404, 409) },
      },
    },
    async (request) => rotateDkim(db, ctx, request.principal.tenantId, request.params.id),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/domains/:id',
    { config: manage, schema: { summary: 'Remove a sending domain and its keys', security, params: idParam, response: { 204: { type: 'null' }, ...failures(401, 403, 404) } } },
    async (request, reply) => {
      await deleteDomain(db, request.principal.tenantId, request.params.id);
      request.log.info({ domain_id: request.params.id }, 'sending domain removed');
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: PageQuery }>(
    '/v1/identities',
    { config: { scope: 'identities.view' }, schema: { summary: 'Sending identities (domains), newest first', security, querystring: listQuery, response: { 200: IdentityPage, ...failures(401, 403, 422) } } },
    async (request, reply) => sendPage(request, reply, await listIdentities(db, ctx.settings, request.principal.tenantId, request.query)),
  );

  app.get<{ Params: { identity: string } }>(
    '/v1/identities/:identity',
    { config: { scope: 'identities.view' }, schema: { summary: 'One identity by domain (case-insensitive)', security, params: nameParam('identity'), response: { 200: Identity, ...failures(401, 403, 404, 422) } } },
    async (request) => getIdentity(db, ctx.settings, request.principal.tenantId, request.params.identity),
  );

  app.get<{ Querystring: PageQuery }>(
    '/v1/tracking-domains',
    {
      config: { scope: 'tracking.view' },
      schema: { summary: 'Tracking subdomains (CNAME) and their DNS state, newest first', security, querystring: listQuery, response: { 200: TrackingDomainPage, ...failures(401, 403, 422) } },
    },
    async (request, reply) => sendPage(request, reply, await listTrackingDomains(db, ctx.settings, request.principal.tenantId, request.query)),
  );

  app.get<{ Params: { domain: string } }>(
    '/v1/tracking-domains/:domain',
    {
      config: { scope: 'tracking.view' },
      schema: { summary: 'One tracking subdomain (case-insensitive)', security, params: nameParam('domain'), response: { 200: TrackingDomain, ...failures(401, 403, 404, 422) } },
    },
    async (request) => getTrackingDomain(db, ctx.settings, request.principal.tenantId, request.params.domain),
  );
}
