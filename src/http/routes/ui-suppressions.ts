import type { FastifyInstance, FastifyRequest } from 'fastify';
import { resolveWindow } from '../../observability/cursor.ts';
import { addSuppression, listSuppressions, removeSuppression, suppressionAudit } from '../../observability/suppressions.ts';
import { html } from '../../ui/html.ts';
import { csrfField, when } from '../../ui/layout.ts';
import { HttpError } from '../errors.ts';
import { flashOf, flashQuery, pageRoute, redirectWith, sendPage, type UiContext } from './ui-page.ts';

const MANAGE = 'suppressions.manage';
const REASONS = ['manual', 'bounce', 'complaint', 'unsubscribe', 'other'];
const csrf = { _csrf: { type: 'string', maxLength: 512 } } as const;

/** Who the audit trail names: the key, or the operator. */
const actorOf = (request: FastifyRequest) => ({ id: request.viewer.principal.keyId ? `api_key:${request.viewer.principal.keyId}` : 'operator:dashboard' });

function requireManage(request: FastifyRequest) {
  if (!request.viewer.principal.scopes.has(MANAGE)) throw new HttpError(403, 'permission_denied', `adding and removing suppressions needs the scope ${MANAGE}`);
}

export function uiSuppressionRoutes(app: FastifyInstance, ctx: UiContext) {
  app.get<{ Querystring: { email?: string; reason?: string; notice?: string; kind?: string } }>(
    '/ui/suppressions',
    pageRoute('suppressions', { querystring: { type: 'object', properties: { email: { type: 'string', maxLength: 320 }, reason: { type: 'string', maxLength: 64 }, ...flashQuery } } }),
    async (request, reply) => {
      const { tenantId, scopes } = request.viewer.principal;
      const q = request.query;
      const email = q.email?.trim() || undefined;
      // All time: a suppression is forever, however old.
      const page = await listSuppressions(ctx.db, tenantId, { window: { from: new Date(0), to: new Date() }, email, reason: q.reason || undefined }, { limit: 100 });
      const audit = email?.includes('@') ? await suppressionAudit(ctx.db, tenantId, email) : [];
      const manage = scopes.has(MANAGE);
      const body = html`
        <form class="filters" method="get" action="/ui/suppressions" role="search">
          <div class="field"><label for="s-email">Address contains</label><input id="s-email" name="email" value="${q.email ?? ''}"></div>
          <div class="field"><label for="s-reason">Reason</label><input id="s-reason" name="reason" value="${q.reason ?? ''}" list="s-reasons"></div>
          <datalist id="s-reasons">${REASONS.map((r) => html`<option value="${r}">`)}</datalist>
          <button type="submit">Search</button>
        </form>
        ${manage ? html`<details class="panel"${page.data.length ? '' : html` open`}><summary>Suppress an address</summary>
          <form class="filters" method="post" action="/ui/suppressions">
            ${csrfField(request.viewer)}
            <div class="field"><label for="add-email">Address</label><input id="add-email" name="email" type="email" required maxlength="254"></div>
            <div class="field"><label for="add-reason">Reason</label><select id="add-reason" name="reason">${REASONS.map((r) => html`<option>${r}</option>`)}</select></div>
            <div class="field"><label for="add-comment">Comment</label><input id="add-comment" name="comment" maxlength="1000"></div>
            <button type="submit">Suppress</button>
          </form></details>` : ''}
        ${page.data.length ? html`<div class="table-wrap"><table>
          <thead><tr><th scope="col">Address</th><th scope="col">Reason</th><th scope="col">Source</th><th scope="col">Since</th>${manage ? html`<th scope="col">Remove</th>` : ''}</tr></thead>
          <tbody>${page.data.map((s, i) => html`<tr><td class="mono"><a href="/ui/suppressions?email=${encodeURIComponent(s.email)}">${s.email}</a></td><td>${s.reason}</td><td>${s.source}</td><td>${when(s.suppressed_at)}</td>
            ${manage ? html`<td><form class="actions" method="post" action="/ui/suppressions/remove" data-confirm="Remove the suppression of ${s.email}? Mail to it will be sent again.">
              ${csrfField(request.viewer)}<input type="hidden" name="email" value="${s.email}">
              <label class="muted" for="rm-${i}">Why</label><input id="rm-${i}" name="comment" required maxlength="1000" placeholder="reason for removing">
              <button type="submit" class="danger">Remove</button></form></td>` : ''}</tr>`)}</tbody>
          </table></div>${page.nextCursor ? html`<p class="muted pager">Showing the newest 100: search to narrow.</p>` : ''}`
        : html`<div class="panel"><p>No suppressed addresses match.</p></div>`}
        ${audit.length ? html`<h2>Audit trail of ${email}</h2><div class="table-wrap"><table><thead><tr><th scope="col">When</th><th scope="col">Action</th><th scope="col">By</th><th scope="col">Reason</th><th scope="col">Comment</th></tr></thead>
          <tbody>${audit.map((a) => html`<tr><td>${when(a.created_at)}</td><td>${a.action}</td><td class="mono">${a.actor}</td><td>${a.reason ?? ''}</td><td>${a.comment ?? ''}</td></tr>`)}</tbody></table></div>` : ''}`;
      return sendPage(request, reply, 'suppressions', 'Suppressions', body, flashOf(q));
    },
  );

  app.post<{ Body: { email: string; reason: string; comment?: string } }>(
    '/ui/suppressions',
    pageRoute('suppressions', {
      body: { type: 'object', required: ['email', 'reason'], properties: { email: { type: 'string', format: 'email', maxLength: 254 }, reason: { type: 'string', minLength: 1, maxLength: 64 }, comment: { type: 'string', maxLength: 1000 }, ...csrf } },
    }),
    async (request, reply) => {
      requireManage(request);
      const { email, reason, comment } = request.body;
      const { created } = await addSuppression(ctx.db, request.viewer.principal.tenantId, { email, reason, comment: comment || undefined }, actorOf(request));
      return redirectWith(reply, `/ui/suppressions?email=${encodeURIComponent(email.toLowerCase())}`, created ? `${email} is suppressed.` : `${email} was already suppressed.`);
    },
  );

  app.post<{ Body: { email: string; comment: string } }>(
    '/ui/suppressions/remove',
    pageRoute('suppressions', {
      body: { type: 'object', required: ['email', 'comment'], properties: { email: { type: 'string', minLength: 1, maxLength: 320 }, comment: { type: 'string', minLength: 1, maxLength: 1000 }, ...csrf } },
    }),
    async (request, reply) => {
      requireManage(request);
      const removed = await removeSuppression(ctx.db, request.viewer.principal.tenantId, request.body.email, { comment: request.body.comment }, actorOf(request));
      return redirectWith(reply, '/ui/suppressions', `The suppression of ${removed.email} is removed.`);
    },
  );
}
