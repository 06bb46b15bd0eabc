import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalid } from '../../errors.ts';
import {
  createTemplate, getTemplate, listTemplates, listTemplateVersions, renderCheck, renderStoredTemplate, updateTemplate, type TemplateView,
} from '../../templates/templates.ts';
import { html } from '../../ui/html.ts';
import { csrfField, when, type Viewer } from '../../ui/layout.ts';
import { canDo, csrfBody, flashOf, flashQuery, pageRoute, redirectWith, requireScope, sendPage, uuidParam, type UiContext } from './ui-page.ts';

const MANAGE = 'templates.manage';

interface TemplateForm {
  name: string;
  subject: string;
  html?: string;
  text?: string;
}

// The API's limits (src/http/schemas/templates.ts) within the form body limit.
const templateForm = {
  type: 'object',
  required: ['name', 'subject'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    subject: { type: 'string', minLength: 1, maxLength: 998 },
    html: { type: 'string', maxLength: 60_000 },
    text: { type: 'string', maxLength: 60_000 },
    ...csrfBody,
  },
} as const;

const input = (b: TemplateForm) => ({ name: b.name, subject: b.subject, html: b.html || null, text: b.text || null });

function editor(viewer: Viewer, action: string, t: Partial<TemplateView>, button: string) {
  return html`<form class="panel stack" method="post" action="${action}">
    ${csrfField(viewer)}
    <div class="field"><label for="t-name">Name</label><input id="t-name" name="name" required maxlength="200" value="${t.name ?? ''}"></div>
    <div class="field"><label for="t-subject">Subject (Liquid)</label><input id="t-subject" name="subject" required maxlength="998" value="${t.subject ?? ''}"></div>
    <div class="field"><label for="t-html">HTML body (Liquid)</label><textarea id="t-html" name="html" rows="10" maxlength="60000">${t.html ?? ''}</textarea></div>
    <div class="field"><label for="t-text">Text body (Liquid; empty: made from the HTML)</label><textarea id="t-text" name="text" rows="5" maxlength="60000">${t.text ?? ''}</textarea></div>
    <p><button type="submit">${button}</button></p>
  </form>`;
}

/** Variables typed as a JSON object; anything else is a 422 naming the field. */
function parseVariables(text: string | undefined): Record<string, unknown> {
  if (!text?.trim()) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid('variables must be a JSON object, e.g. {"first_name": "Ada"}');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('variables must be a JSON object, e.g. {"first_name": "Ada"}');
  return value as Record<string, unknown>;
}

export function uiTemplateRoutes(app: FastifyInstance, ctx: UiContext) {
  const check = renderCheck(ctx.renderer);

  app.get<{ Querystring: { cursor?: string; notice?: string; kind?: string } }>(
    '/ui/templates',
    pageRoute('templates', { querystring: { type: 'object', properties: { cursor: { type: 'string', maxLength: 1000 }, ...flashQuery } } }),
    async (request, reply) => {
      const page = await listTemplates(ctx.db, request.viewer.principal.tenantId, { limit: 50, cursor: request.query.cursor });
      const body = html`
        ${page.data.length ? html`<div class="table-wrap"><table>
          <thead><tr><th scope="col">Template</th><th scope="col">Slug</th><th scope="col" class="num">Version</th><th scope="col">Subject</th><th scope="col">Updated</th></tr></thead>
          <tbody>${page.data.map((t) => html`<tr><td><a href="/ui/templates/${t.id}">${t.name}</a></td><td class="mono">${t.slug}</td><td class="num">${t.version}</td><td>${t.subject}</td><td>${when(t.updated_at)}</td></tr>`)}</tbody>
          </table></div>${page.nextCursor ? html`<p class="pager"><a href="/ui/templates?cursor=${page.nextCursor}">Older templates →</a></p>` : ''}`
        : html`<div class="panel"><p>No templates yet.</p></div>`}
        ${canDo(request, MANAGE) ? html`<h2>New template</h2>${editor(request.viewer, '/ui/templates', {}, 'Create template')}` : ''}`;
      return sendPage(request, reply, 'templates', 'Templates', body, flashOf(request.query));
    },
  );

  app.post<{ Body: TemplateForm }>('/ui/templates', pageRoute('templates', { body: templateForm }), async (request, reply) => {
    requireScope(request, MANAGE, 'creating a template');
    const t = await createTemplate(ctx.db, request.viewer.principal.tenantId, input(request.body), check);
    request.log.info({ template_id: t.id }, 'template created from the dashboard');
    return redirectWith(reply, `/ui/templates/${t.id}`, `Template ${t.name} created (version 1).`);
  });

  /** The template page; `preview` is what POST …/preview rendered. */
  async function templatePage(request: FastifyRequest<{ Params: { id: string } }>, preview?: { variables: string; subject: string; html: string | null; text: string | null }) {
    const { tenantId } = request.viewer.principal;
    const t = await getTemplate(ctx.db, tenantId, request.params.id);
    const versions = await listTemplateVersions(ctx.db, tenantId, t.id, { limit: 50 });
    return html`
      <p class="muted">Slug <code>${t.slug}</code> · version ${t.version} · id <code>${t.id}</code></p>
      <h2>Preview</h2>
      <form class="panel stack" method="post" action="/ui/templates/${t.id}/preview">
        ${csrfField(request.viewer)}
        <div class="field"><label for="t-variables">Variables (JSON object)</label><textarea id="t-variables" name="variables" rows="3" maxlength="60000" placeholder='{"first_name": "Ada"}'>${preview?.variables ?? ''}</textarea></div>
        <p><button type="submit">Render preview</button></p>
      </form>
      ${preview ? html`<div class="panel preview" data-preview>
          <p><span class="muted">Subject:</span> <strong id="preview-subject">${preview.subject}</strong></p>
          ${preview.html !== null ? html`<iframe class="preview-frame" title="Rendered HTML of ${t.name}" sandbox="" referrerpolicy="no-referrer" srcdoc="${preview.html}"></iframe>` : ''}
          ${preview.text !== null ? html`<details${preview.html === null ? html` open` : ''}><summary>Text version</summary><pre class="preview-text">${preview.text}</pre></details>` : ''}
        </div>` : ''}
      ${canDo(request, MANAGE) ? html`<h2>Edit (saves a new version)</h2>${editor(request.viewer, `/ui/templates/${t.id}`, t, 'Save new version')}` : ''}
      <h2>Versions</h2>
      <div class="table-wrap"><table>
        <thead><tr><th scope="col" class="num">Version</th><th scope="col">Name</th><th scope="col">Subject</th><th scope="col">Saved</th></tr></thead>
        <tbody>${versions.data.map((v) => html`<tr${v.version === t.version ? html` aria-current="true"` : ''}><td class="num">${v.version}${v.version === t.version ? html` <span class="badge ok">current</span>` : ''}</td><td>${v.name}</td><td>${v.subject}</td><td>${when(v.created_at)}</td></tr>`)}</tbody>
      </table></div>`;
  }

  app.get<{ Params: { id: string }; Querystring: { notice?: string; kind?: string } }>(
    '/ui/templates/:id',
    pageRoute('templates', { params: uuidParam, querystring: { type: 'object', properties: flashQuery } }),
    async (request, reply) => {
      const t = await getTemplate(ctx.db, request.viewer.principal.tenantId, request.params.id);
      return sendPage(request, reply, 'templates', `Template ${t.name}`, await templatePage(request), flashOf(request.query));
    },
  );

  app.post<{ Params: { id: string }; Body: TemplateForm }>('/ui/templates/:id', pageRoute('templates', { params: uuidParam, body: templateForm }), async (request, reply) => {
    requireScope(request, MANAGE, 'editing a template');
    const t = await updateTemplate(ctx.db, request.viewer.principal.tenantId, request.params.id, input(request.body), check);
    request.log.info({ template_id: t.id, version: t.version }, 'template updated from the dashboard');
    return redirectWith(reply, `/ui/templates/${t.id}`, `Saved as version ${t.version}.`);
  });

  // The preview of POST /v1/templates/{id}/render: the same function, in a render thread.
  app.post<{ Params: { id: string }; Body: { variables?: string } }>(
    '/ui/templates/:id/preview',
    pageRoute('templates', { params: uuidParam, body: { type: 'object', properties: { variables: { type: 'string', maxLength: 60_000 }, ...csrfBody } } }),
    async (request, reply) => {
      const variables = parseVariables(request.body.variables);
      const r = await renderStoredTemplate(ctx.db, ctx.renderer, request.viewer.principal.tenantId, request.params.id, variables);
      const t = await getTemplate(ctx.db, request.viewer.principal.tenantId, r.template_id);
      const body = await templatePage(request, { variables: request.body.variables ?? '', subject: r.subject, html: r.html, text: r.text });
      return sendPage(request, reply, 'templates', `Template ${t.name}`, body);
    },
  );
}
