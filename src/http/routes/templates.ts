import type { FastifyInstance } from 'fastify';
import { verifiedDomainRequired } from '../../domains/domains.ts';
import { resolveWindow } from '../../observability/cursor.ts';
import { templateVersionPerformance } from '../../observability/reports.ts';
import { sendTemplateTest, type TemplateTestRequest } from '../../templates/test-send.ts';
import {
  createTemplate, deleteTemplate, getTemplate, getTemplateVersion, listTemplates, listTemplateVersions, renderCheck, renderStoredTemplate, updateTemplate,
  type TemplateInput, type TemplateRenderer,
} from '../../templates/templates.ts';
import type { AppDeps } from '../app.ts';
import { sendPage } from '../read-api.ts';
import { failures } from '../schemas.ts';
import {
  RenderedTemplate, RenderTemplateRequest, Template, TemplateInput as TemplateInputSchema, templateIdParam, templateListQuery, TemplatePage,
  TemplatePerformance, TemplateVersion, TemplateVersionPage, TestTemplateRequest, TestTemplateResponse, versionParams, windowQuery,
} from '../schemas/templates.ts';

interface PageQuery {
  limit: number;
  cursor?: string;
}

/** Stored, versioned templates (docs/api.md#templates). */
export async function templateRoutes(app: FastifyInstance, deps: AppDeps & { renderer: TemplateRenderer }) {
  const { db, renderer } = deps;
  const security = [{ bearerAuth: [] }];
  const manage = { scope: 'templates.manage' } as const;
  const view = { scope: 'templates.view' } as const;
  // A template is saved only once it renders (in a render thread) with no variables.
  const check = renderCheck(renderer);

  app.post<{ Body: TemplateInput }>(
    '/v1/templates',
    { config: manage, schema: { summary: 'Store a template (version 1)', security, body: TemplateInputSchema, response: { 201: Template, ...failures(401, 403, 409, 422) } } },
    async (request, reply) => {
      const template = await createTemplate(db, request.principal.tenantId, request.body, check);
      request.log.info({ template_id: template.id }, 'template created');
      return reply.code(201).send(template);
    },
  );

  app.get<{ Querystring: PageQuery }>(
    '/v1/templates',
    { config: view, schema: { summary: 'Templates, newest first (current versions)', security, querystring: templateListQuery, response: { 200: TemplatePage, ...failures(401, 403, 422) } } },
    async (request, reply) => sendPage(request, reply, await listTemplates(db, request.principal.tenantId, request.query)),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/templates/:id',
    { config: view, schema: { summary: 'One template (by id or slug), its current version', security, params: templateIdParam, response: { 200: Template, ...failures(401, 403, 404) } } },
    async (request) => getTemplate(db, request.principal.tenantId, request.params.id),
  );

  app.put<{ Params: { id: string }; Body: TemplateInput }>(
    '/v1/templates/:id',
    {
      config: manage,
      schema: { summary: 'Replace the content: a new version becomes current, earlier ones stay readable', security, params: templateIdParam, body: TemplateInputSchema, response: { 200: Template, ...failures(401, 403, 404, 409, 422) } },
    },
    async (request) => {
      const template = await updateTemplate(db, request.principal.tenantId, request.params.id, request.body, check);
      request.log.info({ template_id: template.id, version: template.version }, 'template updated');
      return template;
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/templates/:id',
    {
      config: manage,
      schema: { summary: 'Delete a template and its versions; 409 template_in_use while a scheduled or running send job uses it', security, params: templateIdParam, response: { 204: { type: 'null' }, ...failures(401, 403, 404, 409) } },
    },
    async (request, reply) => {
      await deleteTemplate(db, request.principal.tenantId, request.params.id);
      request.log.info({ template: request.params.id }, 'template deleted');
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { id: string }; Querystring: PageQuery }>(
    '/v1/templates/:id/versions',
    { config: view, schema: { summary: 'Every version, newest first', security, params: templateIdParam, querystring: templateListQuery, response: { 200: TemplateVersionPage, ...failures(401, 403, 404, 422) } } },
    async (request, reply) => sendPage(request, reply, await listTemplateVersions(db, request.principal.tenantId, request.params.id, request.query)),
  );

  app.get<{ Params: { id: string; version: number } }>(
    '/v1/templates/:id/versions/:version',
    { config: view, schema: { summary: 'One version', security, params: versionParams, response: { 200: TemplateVersion, ...failures(401, 403, 404) } } },
    async (request) => getTemplateVersion(db, request.principal.tenantId, request.params.id, request.params.version),
  );

  app.post<{ Params: { id: string }; Body: { variables?: Record<string, unknown>; strict?: boolean; version?: number } | undefined }>(
    '/v1/templates/:id/render',
    {
      config: view,
      schema: {
        summary: 'Preview: render with variables (in a render thread, under the send-time limits); strict: a missing variable is a 422 missing_variable',
        security,
        params: templateIdParam,
        body: RenderTemplateRequest,
        response: { 200: RenderedTemplate, ...failures(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const body = request.body ?? {};
      return renderStoredTemplate(db, renderer, request.principal.tenantId, request.params.id, body.variables ?? {}, { strict: body.strict, version: body.version });
    },
  );

  app.post<{ Params: { id: string }; Body: TemplateTestRequest }>(
    '/v1/templates/:id/test',
    {
      config: manage,
      schema: {
        summary: 'Send the current version to one address (a transactional send through the outbox)',
        security,
        params: templateIdParam,
        body: TestTemplateRequest,
        response: { 202: TestTemplateResponse, ...failures(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const result = await sendTemplateTest(db, renderer, request.principal.tenantId, request.params.id, request.body, {
        idempotencyTtlHours: deps.config.idempotencyTtlHours,
        requireVerifiedDomain: verifiedDomainRequired(deps.config),
        defaultFrom: deps.config.jobs.defaultFrom,
      });
      request.log.info({ job_id: result.job_id, template_id: result.template_id }, 'template test send queued');
      return reply.code(202).send(result);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { from?: string; to?: string } }>(
    '/v1/templates/:id/performance',
    {
      config: { scope: 'reports.view' },
      schema: {
        summary: "Per-version performance of the template's transactional sends accepted in the window (default: the trailing 30 days)",
        security,
        params: templateIdParam,
        querystring: windowQuery,
        response: { 200: TemplatePerformance, ...failures(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { template_id } = await getTemplateVersion(db, request.principal.tenantId, request.params.id);
      const window = resolveWindow(request.query.from, request.query.to);
      return { template_id, data: await templateVersionPerformance(db, request.principal.tenantId, template_id, window) };
    },
  );
}
