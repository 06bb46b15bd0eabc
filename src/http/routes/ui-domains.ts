import type { FastifyInstance } from 'fastify';
import { createDomain, getDomain, listDomains, verifyDomain } from '../../domains/domains.ts';
import { html } from '../../ui/html.ts';
import { csrfField, statusBadge, when } from '../../ui/layout.ts';
import { flashOf, flashQuery, pageRoute, redirectWith, sendPage, uuidParam, type UiContext } from './ui-page.ts';

export function uiDomainRoutes(app: FastifyInstance, ctx: UiContext) {
  app.get<{ Querystring: { notice?: string; kind?: string } }>(
    '/ui/domains',
    pageRoute('domains', { querystring: { type: 'object', properties: flashQuery } }),
    async (request, reply) => {
      const page = await listDomains(ctx.db, ctx.domains, request.viewer.principal.tenantId, { limit: 200 });
      const body = html`
        <form class="filters" method="post" action="/ui/domains">
          ${csrfField(request.viewer)}
          <div class="field"><label for="domain-name">Add a sending domain</label><input id="domain-name" name="name" required maxlength="253" placeholder="news.example.com"></div>
          <button type="submit">Add domain</button>
        </form>
        ${page.data.length ? html`<div class="table-wrap"><table>
          <thead><tr><th scope="col">Domain</th><th scope="col">Status</th><th scope="col">Verified</th><th scope="col">Last checked</th></tr></thead>
          <tbody>${page.data.map((d) => html`<tr><td><a href="/ui/domains/${d.id}">${d.name}</a></td><td>${statusBadge(d.status)}</td><td>${when(d.verified_at)}</td><td>${when(d.last_checked_at)}</td></tr>`)}</tbody>
          </table></div>` : html`<div class="panel"><p>No sending domains yet. Add one above, publish its DNS records, then verify it.</p></div>`}`;
      return sendPage(request, reply, 'domains', 'Sending domains', body, flashOf(request.query));
    },
  );

  app.post<{ Body: { name: string } }>(
    '/ui/domains',
    pageRoute('domains', { body: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 253 }, _csrf: { type: 'string', maxLength: 512 } } } }),
    async (request, reply) => {
      const domain = await createDomain(ctx.db, ctx.domains, request.viewer.principal.tenantId, request.body.name);
      request.log.info({ domain_id: domain.id }, 'domain added from the dashboard');
      return redirectWith(reply, `/ui/domains/${domain.id}`, `Domain ${domain.name} added: publish the records below, then verify.`);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { notice?: string; kind?: string } }>(
    '/ui/domains/:id',
    pageRoute('domains', { params: uuidParam, querystring: { type: 'object', properties: flashQuery } }),
    async (request, reply) => {
      const d = await getDomain(ctx.db, ctx.domains, request.viewer.principal.tenantId, request.params.id);
      const body = html`
        <div class="panel">
          <p>${statusBadge(d.status)} ${d.status_reason ?? ''}</p>
          <p class="muted">Return path <code>${d.return_path}</code> · DKIM selector <code>${d.dkim_selector}</code> · last checked ${when(d.last_checked_at)} · next check ${when(d.next_check_at)}</p>
          <form method="post" action="/ui/domains/${d.id}/verify">${csrfField(request.viewer)}<button type="submit">Verify now</button></form>
        </div>
        <h2>DNS records to publish</h2>
        <div class="table-wrap"><table>
          <thead><tr><th scope="col">Status</th><th scope="col">Type</th><th scope="col">Name</th><th scope="col">Value</th><th scope="col">Purpose</th></tr></thead>
          <tbody>${d.dns_records.map((r, i) => html`<tr data-record="${r.purpose}">
            <td>${statusBadge(r.status)}${r.detail ? html`<div class="muted">${r.detail}</div>` : ''}</td>
            <td>${r.type}</td>
            <td><span class="mono" id="rec-name-${i}">${r.name}</span> <button type="button" class="secondary" data-copy="rec-name-${i}" aria-label="Copy the name of the ${r.type} record">Copy</button></td>
            <td><span class="mono" id="rec-value-${i}">${r.priority !== undefined ? `${r.priority} ` : ''}${r.value}</span> <button type="button" class="secondary" data-copy="rec-value-${i}" aria-label="Copy the value of the ${r.type} record">Copy</button></td>
            <td>${r.purpose}${r.required ? '' : html` <span class="muted">(optional)</span>`}</td></tr>`)}</tbody>
        </table></div>`;
      return sendPage(request, reply, 'domains', d.name, body, flashOf(request.query));
    },
  );

  app.post<{ Params: { id: string } }>('/ui/domains/:id/verify', pageRoute('domains', { params: uuidParam }), async (request, reply) => {
    const d = await verifyDomain(ctx.db, ctx.domains, ctx.checker, request.viewer.principal.tenantId, request.params.id);
    return redirectWith(reply, `/ui/domains/${d.id}`, d.status === 'verified' ? `${d.name} is verified.` : `${d.name}: ${d.status}${d.status_reason ? ` (${d.status_reason})` : ''}`, d.status === 'verified' ? 'ok' : 'warn');
  });
}
