import type { FastifyInstance } from 'fastify';
import { invalid } from '../../errors.ts';
import { createEndpoint, getEndpoint, listDeliveries, listEndpoints, retryDelivery } from '../../webhooks/endpoints.ts';
import { DELIVERY_STATUSES, WEBHOOK_EVENT_TYPES, type DeliveryStatus, type WebhookEventType } from '../../webhooks/event-types.ts';
import { secretBoxFor } from '../../webhooks/secret-box.ts';
import { html } from '../../ui/html.ts';
import { csrfField, statusBadge, when } from '../../ui/layout.ts';
import { flashOf, flashQuery, pageRoute, redirectWith, sendPage, uuidParam, type UiContext } from './ui-page.ts';

const csrf = { _csrf: { type: 'string', maxLength: 512 } } as const;

export function uiWebhookRoutes(app: FastifyInstance, ctx: UiContext) {
  const allowPrivate = ctx.config.webhooks.allowPrivate;

  app.get<{ Querystring: { notice?: string; kind?: string } }>(
    '/ui/webhooks',
    pageRoute('webhooks', { querystring: { type: 'object', properties: flashQuery } }),
    async (request, reply) => {
      const page = await listEndpoints(ctx.db, request.viewer.principal.tenantId, { limit: 200 });
      const body = html`
        ${page.data.length ? html`<div class="table-wrap"><table>
          <thead><tr><th scope="col">Endpoint</th><th scope="col">Events</th><th scope="col">Status</th><th scope="col">Created</th></tr></thead>
          <tbody>${page.data.map((e) => html`<tr><td><a class="mono" href="/ui/webhooks/${e.id}">${e.url}</a>${e.description ? html`<div class="muted">${e.description}</div>` : ''}</td>
            <td>${e.event_types?.join(', ') ?? 'all events'}</td><td>${statusBadge(e.status)}${e.disabled_reason ? html`<div class="muted">${e.disabled_reason}</div>` : ''}</td><td>${when(e.created_at)}</td></tr>`)}</tbody>
          </table></div>` : html`<div class="panel"><p>No endpoints yet.</p></div>`}
        <h2>Add an endpoint</h2>
        <form class="panel" method="post" action="/ui/webhooks">
          ${csrfField(request.viewer)}
          <div class="field"><label for="wh-url">URL (https)</label><input id="wh-url" name="url" type="url" required maxlength="2048" placeholder="https://example.com/hooks/send-engine"></div>
          <div class="field"><label for="wh-description">Description</label><input id="wh-description" name="description" maxlength="500"></div>
          <fieldset><legend>Events (none checked: all)</legend>
            ${WEBHOOK_EVENT_TYPES.map((t) => html`<label><input type="checkbox" name="event_types" value="${t}"> ${t}</label>`)}</fieldset>
          <p><button type="submit">Add endpoint</button></p>
        </form>`;
      return sendPage(request, reply, 'webhooks', 'Webhooks', body, flashOf(request.query));
    },
  );

  app.post<{ Body: { url: string; description?: string; event_types?: string | string[] } }>(
    '/ui/webhooks',
    pageRoute('webhooks', {
      body: {
        type: 'object',
        required: ['url'],
        properties: { url: { type: 'string', minLength: 1, maxLength: 2048 }, description: { type: 'string', maxLength: 500 }, event_types: { type: ['string', 'array'], maxItems: 32, items: { type: 'string', maxLength: 64 } }, ...csrf },
      },
    }),
    async (request, reply) => {
      const types = [request.body.event_types ?? []].flat();
      const unknown = types.filter((t) => !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(t));
      if (unknown.length) throw invalid(`unknown event type(s): ${unknown.join(', ')}`);
      const created = await createEndpoint(ctx.db, secretBoxFor(ctx.config), request.viewer.principal.tenantId,
        { url: request.body.url, description: request.body.description || null, event_types: types as WebhookEventType[] }, allowPrivate);
      request.log.info({ endpoint_id: created.id }, 'webhook endpoint added from the dashboard');
      // The signing secret is shown here, once, and never again (not even on reload: no redirect carries it).
      const body = html`
        <div class="notice ok" role="status"><p>Endpoint <strong class="mono">${created.url}</strong> added. Its signing secret is shown <strong>only this once</strong>:</p>
          <p class="secret"><code id="endpoint-secret">${created.secret}</code> <button type="button" class="secondary" data-copy="endpoint-secret">Copy</button></p></div>
        <p><a href="/ui/webhooks/${created.id}">Go to the endpoint</a> · <a href="/ui/webhooks">All endpoints</a></p>`;
      return sendPage(request, reply, 'webhooks', 'Endpoint added', body);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { status?: DeliveryStatus; cursor?: string; notice?: string; kind?: string } }>(
    '/ui/webhooks/:id',
    pageRoute('webhooks', {
      params: uuidParam,
      querystring: { type: 'object', properties: { status: { type: 'string', enum: DELIVERY_STATUSES }, cursor: { type: 'string', maxLength: 1000 }, ...flashQuery } },
    }),
    async (request, reply) => {
      const { tenantId } = request.viewer.principal;
      const endpoint = await getEndpoint(ctx.db, tenantId, request.params.id);
      const page = await listDeliveries(ctx.db, tenantId, endpoint.id, { limit: 50, cursor: request.query.cursor, status: request.query.status });
      const body = html`
        <div class="panel"><p>${statusBadge(endpoint.status)} <span class="mono">${endpoint.url}</span></p>
          <p class="muted">${endpoint.event_types?.join(', ') ?? 'all events'}${endpoint.disabled_reason ? ` · ${endpoint.disabled_reason}` : ''}</p></div>
        <form class="filters" method="get" action="/ui/webhooks/${endpoint.id}">
          <div class="field"><label for="d-status">Delivery status</label>
            <select id="d-status" name="status"><option value="">any</option>${DELIVERY_STATUSES.map((s) => html`<option${s === request.query.status ? html` selected` : ''}>${s}</option>`)}</select></div>
          <button type="submit">Filter</button>
        </form>
        ${page.data.length ? html`<div class="table-wrap"><table>
          <thead><tr><th scope="col">Event</th><th scope="col">Status</th><th scope="col" class="num">Attempts</th><th scope="col">Last answer</th><th scope="col">Last attempt</th><th scope="col">Redeliver</th></tr></thead>
          <tbody>${page.data.map((d) => html`<tr><td>${d.event_type}<div class="muted mono">${d.event_id}</div></td><td>${statusBadge(d.status)}</td><td class="num">${d.attempts}</td>
            <td>${d.response_status ?? ''} ${d.error ? html`<div class="muted">${d.error}</div>` : ''}</td><td>${when(d.last_attempt_at)}</td>
            <td>${d.status === 'delivering' ? html`<span class="muted">in progress</span>` : html`<form method="post" action="/ui/webhooks/deliveries/${d.id}/redeliver">${csrfField(request.viewer)}<input type="hidden" name="endpoint_id" value="${endpoint.id}"><button type="submit" class="secondary" aria-label="Redeliver ${d.event_type} ${d.event_id}">Redeliver</button></form>`}</td></tr>`)}</tbody>
          </table></div>${page.nextCursor ? html`<p class="pager"><a href="/ui/webhooks/${endpoint.id}?cursor=${page.nextCursor}${request.query.status ? `&status=${request.query.status}` : ''}">Older deliveries →</a></p>` : ''}`
        : html`<div class="panel"><p>No deliveries${request.query.status ? ` with status ${request.query.status}` : ''} yet.</p></div>`}`;
      return sendPage(request, reply, 'webhooks', 'Webhook endpoint', body, flashOf(request.query));
    },
  );

  app.post<{ Params: { id: string }; Body: { endpoint_id: string } }>(
    '/ui/webhooks/deliveries/:id/redeliver',
    pageRoute('webhooks', { params: uuidParam, body: { type: 'object', required: ['endpoint_id'], properties: { endpoint_id: { type: 'string', format: 'uuid' }, ...csrf } } }),
    async (request, reply) => {
      const d = await retryDelivery(ctx.db, request.viewer.principal.tenantId, request.params.id);
      return redirectWith(reply, `/ui/webhooks/${d.endpoint_id}`, `Delivery of ${d.event_type} queued again.`);
    },
  );
}
