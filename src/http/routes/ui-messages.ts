import type { FastifyInstance } from 'fastify';
import { resolveWindow } from '../../observability/cursor.ts';
import { getMessage, getMessageEvents, listMessages } from '../../observability/messages.ts';
import { MESSAGE_STATUSES } from '../../outbox/status.ts';
import { html } from '../../ui/html.ts';
import { statusBadge, when } from '../../ui/layout.ts';
import { pageRoute, sendPage, type UiContext } from './ui-page.ts';

const UNMASK = 'analytics.search.recipients';

interface Search {
  recipient?: string;
  status?: string;
  channel?: 'transactional' | 'newsletter';
  template?: string;
  tag?: string;
  from?: string;
  to?: string;
  cursor?: string;
}

/** A datetime-local value ("2026-11-30T10:00") read as UTC; anything else goes to resolveWindow as typed. */
const utc = (v: string | undefined) => (v && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(v) ? `${v}:00Z` : v || undefined);

export function uiMessageRoutes(app: FastifyInstance, ctx: UiContext) {
  app.get<{ Querystring: Search }>(
    '/ui/messages',
    pageRoute('messages', {
      querystring: {
        type: 'object',
        properties: {
          recipient: { type: 'string', maxLength: 320 },
          status: { type: 'string', enum: ['', ...MESSAGE_STATUSES] },
          channel: { type: 'string', enum: ['', 'transactional', 'newsletter'] },
          template: { type: 'string', maxLength: 256 },
          tag: { type: 'string', maxLength: 512 },
          from: { type: 'string', maxLength: 64 },
          to: { type: 'string', maxLength: 64 },
          cursor: { type: 'string', maxLength: 1000 },
        },
      },
    }),
    async (request, reply) => {
      const q = request.query;
      const { principal } = request.viewer;
      const unmask = principal.scopes.has(UNMASK);
      const recipient = unmask && q.recipient ? q.recipient.trim().toLowerCase() : undefined;
      const page = await listMessages(
        ctx.db,
        principal.tenantId,
        { window: resolveWindow(utc(q.from), utc(q.to)), status: q.status || undefined, recipient, channel: q.channel || undefined, template: q.template || undefined, tag: q.tag?.trim() || undefined },
        { limit: 50, cursor: q.cursor, unmask },
      );
      const next = new URLSearchParams(Object.entries({ ...q, cursor: page.nextCursor ?? '' }).filter(([, v]) => v) as Array<[string, string]>);
      const body = html`
        <form class="filters" method="get" action="/ui/messages" role="search">
          <div class="field"><label for="m-recipient">Recipient</label>
            <input id="m-recipient" name="recipient" type="email" value="${q.recipient ?? ''}" ${unmask ? '' : html`disabled aria-describedby="m-recipient-note"`} placeholder="reader@example.com"></div>
          <div class="field"><label for="m-status">Status</label>
            <select id="m-status" name="status"><option value="">any</option>${MESSAGE_STATUSES.map((s) => html`<option${s === q.status ? html` selected` : ''}>${s}</option>`)}</select></div>
          <div class="field"><label for="m-channel">Kind</label>
            <select id="m-channel" name="channel"><option value="">any</option>${['transactional', 'newsletter'].map((s) => html`<option${s === q.channel ? html` selected` : ''}>${s}</option>`)}</select></div>
          <div class="field"><label for="m-template">Send job name</label><input id="m-template" name="template" value="${q.template ?? ''}"></div>
          <div class="field"><label for="m-tag">Tag (name:value)</label><input id="m-tag" name="tag" value="${q.tag ?? ''}" placeholder="campaign_id:spring-sale"></div>
          <div class="field"><label for="m-from">From (UTC)</label><input id="m-from" name="from" type="datetime-local" value="${q.from ?? ''}"></div>
          <div class="field"><label for="m-to">To (UTC)</label><input id="m-to" name="to" type="datetime-local" value="${q.to ?? ''}"></div>
          <button type="submit">Search</button>
        </form>
        ${unmask ? '' : html`<p id="m-recipient-note" class="muted">Searching by recipient and seeing full addresses needs the scope ${UNMASK}; addresses are masked.</p>`}
        ${page.data.length ? html`<div class="table-wrap"><table>
          <thead><tr><th scope="col">Created</th><th scope="col">To</th><th scope="col">Subject</th><th scope="col">Kind</th><th scope="col">Status</th></tr></thead>
          <tbody>${page.data.map((m) => html`<tr>
            <td><a href="/ui/messages/${m.id}">${when(m.created_at)}</a></td><td class="mono">${m.to}</td><td>${m.subject ?? ''}</td><td>${m.channel}</td><td>${statusBadge(m.status)}</td></tr>`)}</tbody>
          </table></div>
          ${page.nextCursor ? html`<p class="pager"><a href="/ui/messages?${next.toString()}">Older messages →</a></p>` : ''}`
        : html`<div class="panel"><p>No messages match (the window is the last 30 days unless you set one).</p></div>`}`;
      return sendPage(request, reply, 'messages', 'Messages', body);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/ui/messages/:id',
    pageRoute('messages', { params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 256 } } } }),
    async (request, reply) => {
      const { tenantId, scopes } = request.viewer.principal;
      const unmask = scopes.has(UNMASK);
      const message = await getMessage(ctx.db, tenantId, request.params.id, unmask);
      const events = await getMessageEvents(ctx.db, tenantId, message.id, unmask);
      const body = html`
        <div class="panel"><dl class="grid">
          <div><dt class="muted">To</dt><dd class="mono">${message.to}</dd></div>
          <div><dt class="muted">From</dt><dd class="mono">${message.from ?? '—'}</dd></div>
          <div><dt class="muted">Subject</dt><dd>${message.subject ?? '—'}</dd></div>
          <div><dt class="muted">Status</dt><dd>${statusBadge(message.status)}</dd></div>
          <div><dt class="muted">Created</dt><dd>${when(message.created_at)}</dd></div>
          <div><dt class="muted">Sent</dt><dd>${when(message.sent_at)}</dd></div>
          <div><dt class="muted">Provider id</dt><dd class="mono">${message.provider_message_id ?? '—'}</dd></div>
          <div><dt class="muted">Message id</dt><dd class="mono">${message.id}</dd></div>
        </dl></div>
        <h2>Timeline</h2>
        <div class="panel">${events.length ? html`<ol class="timeline">${events.map((e) => html`<li><strong>${e.type}</strong> ${when(e.occurred_at)}
            ${'metadata' in e && e.metadata && Object.keys(e.metadata).length ? html`<div class="muted mono">${JSON.stringify(e.metadata)}</div>` : ''}</li>`)}</ol>`
          : html`<p class="muted">No events yet.</p>`}</div>`;
      return sendPage(request, reply, 'messages', `Message to ${message.to}`, body);
    },
  );
}
