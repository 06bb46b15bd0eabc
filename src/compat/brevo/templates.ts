import type { FastifyInstance, FastifyRequest } from 'fastify';
import { defaultSender } from '../../domains/domains.ts';
import {
  createTemplate, deleteTemplate, getTemplate, listTemplatesByOffset, templateIdByNumber, templateNumbers, updateTemplate, type TemplateCheck, type TemplateView,
} from '../../templates/templates.ts';
import { brevoFailures, notSupported } from './errors.ts';
import type { BrevoDeps } from './index.ts';
import { CreatedInt, intParam, TemplateBody, templateListQuery, TemplateList, TemplateOverview, type TemplateBodyInput } from './schemas.ts';

type ById = { Params: { templateId: number } };

/**
 * Brevo's transactional templates onto our stored templates. Brevo names them by integer: each
 * template has a per-tenant number (migration 025), `id` here; `customTemplateId` is our uuid.
 */
export async function templateRoutes(app: FastifyInstance, deps: BrevoDeps) {
  const { db, config, renderer } = deps;
  const check: TemplateCheck = (source) => renderer.renderTemplate(source, {});
  const manage = { scope: 'templates.manage', credentialHeader: 'api-key' } as const;
  const view = { scope: 'templates.view', credentialHeader: 'api-key' } as const;
  const tags = ['brevo'];

  const accountSender = async (tenantId: string) => (await defaultSender(db, tenantId)) ?? config.jobs.defaultFrom ?? null;

  /**
   * Our templates carry no sender: a template send goes from the send's `sender` or the account's
   * default sender. A template sender is accepted when it is that default (nothing is lost).
   */
  async function checkSender(request: FastifyRequest, body: TemplateBodyInput) {
    if (body.sender === undefined) return;
    const fallback = await accountSender(request.principal.tenantId);
    if (fallback?.toLowerCase() !== body.sender.email.toLowerCase()) {
      throw notSupported('sender', `templates carry no sender here; sends without sender go from the account's default sender (${fallback ?? 'none set'}): set it with PATCH /v1/account {"default_from"}`);
    }
  }

  const overview = (t: TemplateView, number: number, sender: string | null) => ({
    id: number, name: t.name, subject: t.subject, isActive: true, testSent: false, sender: { email: sender ?? undefined }, replyTo: '', toField: '', tag: '',
    htmlContent: t.html ?? '', createdAt: t.created_at, modifiedAt: t.updated_at, doiTemplate: false, customTemplateId: t.id,
  });

  app.post<{ Body: TemplateBodyInput }>(
    '/smtp/templates',
    { config: manage, schema: { summary: 'Brevo: create a transactional template', tags, body: TemplateBody(['templateName', 'subject', 'htmlContent']), response: { 201: CreatedInt, ...brevoFailures } } },
    async (request, reply) => {
      const { body } = request;
      const tenantId = request.principal.tenantId;
      if (body.isActive === false) throw notSupported('isActive', 'every stored template is active');
      await checkSender(request, body);
      const t = await createTemplate(db, tenantId, { name: body.templateName!, subject: body.subject!, html: body.htmlContent! }, check);
      const number = (await templateNumbers(db, tenantId, [t.id])).get(t.id)!;
      request.log.info({ template_id: t.id, number }, 'brevo template created');
      return reply.code(201).send({ id: number });
    },
  );

  app.get<{ Querystring: { templateStatus?: boolean; limit: number; offset: number; sort: 'asc' | 'desc' } }>(
    '/smtp/templates',
    { config: view, schema: { summary: 'Brevo: transactional templates', tags, querystring: templateListQuery, response: { 200: TemplateList, ...brevoFailures } } },
    async (request) => {
      const q = request.query;
      const tenantId = request.principal.tenantId;
      // Every stored template is active: asking for inactive ones finds none.
      if (q.templateStatus === false) return { count: 0, templates: [] };
      const page = await listTemplatesByOffset(db, tenantId, { limit: q.limit, offset: q.offset, newestFirst: q.sort === 'desc' });
      const sender = await accountSender(tenantId);
      return { count: page.count, templates: page.data.map((t) => overview(t, t.number, sender)) };
    },
  );

  app.get<ById>(
    '/smtp/templates/:templateId',
    { config: view, schema: { summary: 'Brevo: one template by number', tags, params: intParam('templateId'), response: { 200: TemplateOverview, ...brevoFailures } } },
    async (request) => {
      const tenantId = request.principal.tenantId;
      const id = await templateIdByNumber(db, tenantId, request.params.templateId);
      return overview(await getTemplate(db, tenantId, id), request.params.templateId, await accountSender(tenantId));
    },
  );

  app.put<ById & { Body: TemplateBodyInput }>(
    '/smtp/templates/:templateId',
    { config: manage, schema: { summary: 'Brevo: update a template (a new version becomes current)', tags, params: intParam('templateId'), body: TemplateBody([]), response: { 204: { type: 'null' }, ...brevoFailures } } },
    async (request, reply) => {
      const { body } = request;
      const tenantId = request.principal.tenantId;
      const id = await templateIdByNumber(db, tenantId, request.params.templateId);
      if (body.isActive === false) throw notSupported('isActive', 'every stored template is active');
      await checkSender(request, body);
      // Brevo's update is partial; ours takes the whole content: the current version fills the gaps.
      const current = await getTemplate(db, tenantId, id);
      await updateTemplate(db, tenantId, id, {
        name: body.templateName ?? current.name, subject: body.subject ?? current.subject, html: body.htmlContent ?? current.html, text: body.htmlContent === undefined ? current.text : null,
      }, check);
      return reply.code(204).send();
    },
  );

  app.delete<ById>(
    '/smtp/templates/:templateId',
    { config: manage, schema: { summary: 'Brevo: delete a template', tags, params: intParam('templateId'), response: { 204: { type: 'null' }, ...brevoFailures } } },
    async (request, reply) => {
      const tenantId = request.principal.tenantId;
      await deleteTemplate(db, tenantId, await templateIdByNumber(db, tenantId, request.params.templateId));
      return reply.code(204).send();
    },
  );
}
