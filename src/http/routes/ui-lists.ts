import type { FastifyInstance } from 'fastify';
import { getList, listLists, listSyncHistory } from '../../lists/lists.ts';
import { html } from '../../ui/html.ts';
import { statusBadge, when } from '../../ui/layout.ts';
import { HttpError } from '../errors.ts';
import { pageRoute, sendPage, uuidParam, type UiContext } from './ui-page.ts';

export function uiListRoutes(app: FastifyInstance, ctx: UiContext) {
  app.get('/ui/lists', pageRoute('lists'), async (request, reply) => {
    const lists = await listLists(ctx.db, request.viewer.principal.tenantId);
    const body = lists.length
      ? html`<p class="muted">Lists arrive from the Member Center's signed webhooks and full syncs (docs/webhooks.md), or are created with <code>POST /v1/lists</code>.</p>
        <div class="table-wrap"><table><thead><tr><th scope="col">List</th><th scope="col">Created</th><th scope="col">Exact as of (last full sync)</th><th scope="col">Contacts</th></tr></thead>
        <tbody>${lists.map((l) => html`<tr><td><a class="mono" href="/ui/lists/${l.id}">${l.id}</a></td><td>${when(l.created_at)}</td><td>${when(l.synced_at)}</td>
          <td><a href="/ui/lists/${l.id}/contacts" aria-label="Contacts of list ${l.id}">Contacts</a></td></tr>`)}</tbody></table></div>`
      : html`<div class="panel"><p>No lists yet: the Member Center creates them with its webhooks (see docs/webhooks.md).</p></div>`;
    return sendPage(request, reply, 'lists', 'Lists', body);
  });

  app.get<{ Params: { id: string } }>('/ui/lists/:id', pageRoute('lists', { params: uuidParam }), async (request, reply) => {
    const { tenantId } = request.viewer.principal;
    const list = await getList(ctx.db, tenantId, request.params.id);
    if (!list) throw new HttpError(404, 'not_found', `list ${request.params.id} not found`);
    const syncs = await listSyncHistory(ctx.db, tenantId, list.id);
    const body = html`
      <div class="grid">${Object.entries(list.members).map(([k, v]) => html`<div class="stat"><div class="label">${k}</div><div class="value">${v.toLocaleString('en')}</div></div>`)}</div>
      <p class="muted">Created ${when(list.created_at)}; exact as of ${when(list.synced_at)}.</p>
      <p><a href="/ui/lists/${list.id}/contacts">Contacts, import and double opt-in →</a></p>
      <h2>Sync history</h2>
      ${syncs.length ? html`<div class="table-wrap"><table>
        <thead><tr><th scope="col">Started</th><th scope="col">State</th><th scope="col" class="num">Batches</th><th scope="col" class="num">Subscribers</th><th scope="col" class="num">Removed</th><th scope="col" class="num">Kept unsubscribed</th><th scope="col">Completed</th></tr></thead>
        <tbody>${syncs.map((s) => html`<tr><td>${when(s.started_at)}</td><td>${statusBadge(s.state)}</td>
          <td class="num">${s.batches_received}/${s.batch_total}</td><td class="num">${s.subscribers_received}</td><td class="num">${s.removed ?? '—'}</td>
          <td class="num">${s.kept_unsubscribed}</td><td>${when(s.completed_at)}</td></tr>`)}</tbody></table></div>`
        : html`<div class="panel"><p class="muted">No full sync yet.</p></div>`}`;
    return sendPage(request, reply, 'lists', `List ${list.id}`, body);
  });
}
