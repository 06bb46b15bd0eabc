import { fullFormats } from 'ajv-formats/dist/formats.js';
import type { FastifyInstance } from 'fastify';
import { invalid } from '../../errors.ts';
import { getListResource, listContacts, putContact, updateList, type ListResource } from '../../lists/contacts.ts';
import { confirmationQueuer } from '../../lists/double-opt-in.ts';
import { latestImport, runImport, startImport, type ImportView } from '../../lists/import.ts';
import { MEMBER_STATUSES, type MemberStatus } from '../../lists/store.ts';
import { html } from '../../ui/html.ts';
import { csrfField, statusBadge, when } from '../../ui/layout.ts';
import { HttpError, notFound } from '../errors.ts';
import { canDo, csrfBody, flashOf, flashQuery, pageRoute, redirectWith, requireScope, sendFragment, sendPage, uuidParam, type UiContext } from './ui-page.ts';

const MANAGE = 'lists.manage';
const EMAIL = fullFormats.email as RegExp;

/** An import's progress: rows are streamed, so their number is known only at the end (the bar is indeterminate until then). */
export function importProgress(listId: string, imp: ImportView | null, waiting = false) {
  if (!imp || waiting) return html`<div class="import-progress" data-status="${waiting ? 'starting' : 'none'}">${waiting ? html`<progress aria-label="Import starting"></progress><p class="muted">Uploading…</p>` : html`<p class="muted">No import yet.</p>`}</div>`;
  const counts = `${imp.rows_received} rows read: ${imp.created} created, ${imp.updated} updated, ${imp.rows_invalid} invalid${imp.kept_unsubscribed ? `, ${imp.kept_unsubscribed} kept unsubscribed` : ''}`;
  return html`<div class="import-progress" data-import="${imp.id}" data-status="${imp.status}" data-list="${listId}">
    ${statusBadge(imp.status)}
    ${imp.status === 'running'
      ? html`<progress aria-label="Import of ${imp.created_at} running"></progress>`
      : html`<progress aria-label="Import of ${imp.created_at}" max="${Math.max(imp.rows_received, 1)}" value="${imp.status === 'completed' ? Math.max(imp.rows_received, 1) : 0}"></progress>`}
    <p class="import-counts">${counts}${imp.status === 'running' ? ' so far' : ''}</p>
    ${imp.error ? html`<p class="notice bad" role="alert">${imp.error}</p>` : ''}
    <p class="muted">Started ${when(imp.created_at)}${imp.finished_at ? html`, finished ${when(imp.finished_at)}` : ''}</p>
  </div>`;
}

/** Member Center lists: written by its webhooks, never here (src/lists/contacts.ts listForWrite). */
const memberCenterNote = html`<div class="notice warn" role="status"><p>This list is written by the Member Center's signed webhooks and full syncs, not by the API or this dashboard:
  its contacts and settings are changed in the Member Center. It is shown read-only.</p></div>`;

async function apiList(ctx: UiContext, tenantId: string, id: string): Promise<ListResource> {
  const list = await getListResource(ctx.db, tenantId, id);
  if (!list) throw notFound(`list ${id} not found`);
  return list;
}

export function uiContactRoutes(app: FastifyInstance, ctx: UiContext) {
  const onPending = confirmationQueuer(ctx.config.tracking, ctx.config.jobs.defaultFrom);
  // The import form uploads the file as the body (app.js): streamed into runImport, never parsed here.
  app.addContentTypeParser('text/csv', (_request, _payload, done) => done(null, undefined));

  app.get<{ Params: { id: string }; Querystring: { email?: string; status?: MemberStatus | ''; cursor?: string; notice?: string; kind?: string } }>(
    '/ui/lists/:id/contacts',
    pageRoute('lists', {
      params: uuidParam,
      querystring: { type: 'object', properties: { email: { type: 'string', maxLength: 320 }, status: { type: 'string', enum: ['', ...MEMBER_STATUSES] }, cursor: { type: 'string', maxLength: 1000 }, ...flashQuery } },
    }),
    async (request, reply) => {
      const { tenantId } = request.viewer.principal;
      const list = await apiList(ctx, tenantId, request.params.id);
      const q = request.query;
      const title = `Contacts of ${list.name ?? list.id}`;
      const counts = html`<div class="grid">${Object.entries(list.members).map(([k, v]) => html`<div class="stat"><div class="label">${k}</div><div class="value">${v.toLocaleString('en')}</div></div>`)}</div>`;
      if (list.owner !== 'api') return sendPage(request, reply, 'lists', title, html`${memberCenterNote}${counts}<p><a href="/ui/lists/${list.id}">Sync history</a></p>`, flashOf(q));
      const page = (await listContacts(ctx.db, tenantId, list.id, { limit: 50, cursor: q.cursor, email: q.email?.trim() || undefined, status: q.status || undefined }))!;
      const manage = canDo(request, MANAGE);
      const latest = await latestImport(ctx.db, tenantId, list.id);
      const next = new URLSearchParams(Object.entries({ email: q.email ?? '', status: q.status ?? '', cursor: page.nextCursor ?? '' }).filter(([, v]) => v));
      const d = list.double_opt_in;
      const body = html`
        ${counts}
        <form class="filters" method="get" action="/ui/lists/${list.id}/contacts" role="search">
          <div class="field"><label for="ct-email">Email</label><input id="ct-email" name="email" type="email" value="${q.email ?? ''}"></div>
          <div class="field"><label for="ct-status">Status</label>
            <select id="ct-status" name="status"><option value="">any</option>${MEMBER_STATUSES.map((s) => html`<option${s === q.status ? html` selected` : ''}>${s}</option>`)}</select></div>
          <button type="submit">Search</button>
        </form>
        ${page.data.length ? html`<div class="table-wrap"><table>
          <thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Added</th></tr></thead>
          <tbody>${page.data.map((c) => html`<tr data-contact="${c.id}"><td class="mono">${c.email}</td><td>${[c.first_name, c.last_name].filter(Boolean).join(' ')}</td>
            <td>${statusBadge(c.status)}${c.opted_out_at ? html`<div class="muted">opted out ${when(c.opted_out_at)}</div>` : ''}</td><td>${when(c.created_at)}</td></tr>`)}</tbody>
          </table></div>${page.nextCursor ? html`<p class="pager"><a href="/ui/lists/${list.id}/contacts?${next.toString()}">More contacts →</a></p>` : ''}`
        : html`<div class="panel"><p>No contacts${q.email || q.status ? ' match' : ' yet'}.</p></div>`}
        ${manage ? html`
        <h2>Add a contact</h2>
        <form class="panel filters" method="post" action="/ui/lists/${list.id}/contacts">
          ${csrfField(request.viewer)}
          <div class="field"><label for="add-contact-email">Email</label><input id="add-contact-email" name="email" type="email" required maxlength="254"></div>
          <div class="field"><label for="add-contact-first">First name</label><input id="add-contact-first" name="first_name" maxlength="1000"></div>
          <div class="field"><label for="add-contact-last">Last name</label><input id="add-contact-last" name="last_name" maxlength="1000"></div>
          <button type="submit">Add contact</button>
        </form>
        <h2>Import a CSV file</h2>
        <form class="panel stack" method="post" action="/ui/lists/${list.id}/import" data-import="import-status" data-progress="/ui/lists/${list.id}/import-progress" data-last="${latest?.id ?? ''}">
          ${csrfField(request.viewer)}
          <p class="muted">A header row; <code>email</code>, <code>first_name</code>, <code>last_name</code>, <code>subscribed</code>; every other column becomes a property. Existing addresses are updated; an opt-out stands.${d?.enabled ? ' New contacts are pending until they confirm (double opt-in).' : ''}</p>
          <div class="field"><label for="import-file">CSV file</label><input id="import-file" name="file" type="file" accept=".csv,text/csv" required></div>
          <p><button type="submit">Import</button></p>
        </form>
        <div id="import-status" aria-live="polite">${latest ? importProgress(list.id, latest) : ''}</div>` : ''}
        <h2>Double opt-in</h2>
        ${manage ? html`<form class="panel stack" method="post" action="/ui/lists/${list.id}/double-opt-in">
          ${csrfField(request.viewer)}
          <label><input type="checkbox" name="enabled" value="true"${d?.enabled ? html` checked` : ''}> New contacts confirm by email before they receive mail</label>
          <div class="field"><label for="doi-from">From</label><input id="doi-from" name="from" type="email" maxlength="320" value="${d?.from ?? ''}" placeholder="${ctx.config.jobs.defaultFrom ?? ''}"></div>
          <div class="field"><label for="doi-subject">Subject</label><input id="doi-subject" name="subject" maxlength="998" value="${d?.subject ?? ''}"></div>
          <div class="field"><label for="doi-html">HTML (must contain {{ confirm_url }})</label><textarea id="doi-html" name="html" rows="5" maxlength="60000">${d?.html ?? ''}</textarea></div>
          <p><button type="submit">Save double opt-in</button></p>
        </form>` : html`<div class="panel"><p>${d?.enabled ? `On: "${d.subject}" from ${d.from ?? 'the default sender'}.` : 'Off.'}</p><p class="muted">Changing it needs the scope ${MANAGE}.</p></div>`}`;
      return sendPage(request, reply, 'lists', title, body, flashOf(q));
    },
  );

  app.post<{ Params: { id: string }; Body: { email: string; first_name?: string; last_name?: string } }>(
    '/ui/lists/:id/contacts',
    pageRoute('lists', {
      params: uuidParam,
      body: { type: 'object', required: ['email'], properties: { email: { type: 'string', format: 'email', maxLength: 254 }, first_name: { type: 'string', maxLength: 1000 }, last_name: { type: 'string', maxLength: 1000 }, ...csrfBody } },
    }),
    async (request, reply) => {
      requireScope(request, MANAGE, 'adding a contact');
      const b = request.body;
      const { contact } = await putContact(ctx.db, request.viewer.principal.tenantId, request.params.id, { email: b.email, first_name: b.first_name || null, last_name: b.last_name || null }, 'create', onPending);
      return redirectWith(reply, `/ui/lists/${request.params.id}/contacts`, `${contact.email} added (${contact.status}).`);
    },
  );

  // The upload of the import form: the same streamed import as POST /v1/lists/{id}/contacts/import.
  app.post<{ Params: { id: string } }>('/ui/lists/:id/import', pageRoute('lists', { params: uuidParam }), async (request, reply) => {
    requireScope(request, MANAGE, 'importing contacts');
    const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'text/csv') throw new HttpError(415, 'unsupported_media_type', `upload the file as text/csv, not ${type || 'no content type'}`);
    const { tenantId } = request.viewer.principal;
    const importId = await startImport(ctx.db, tenantId, request.params.id, 'csv');
    const result = await runImport(ctx.db, tenantId, importId, request.params.id, 'csv', request.raw, onPending);
    request.log.info({ import_id: importId, status: result.status, rows: result.rows_received }, 'contact import from the dashboard');
    return sendFragment(reply, importProgress(request.params.id, result));
  });

  app.get<{ Params: { id: string }; Querystring: { not?: string } }>(
    '/ui/lists/:id/import-progress',
    pageRoute('lists', { params: uuidParam, querystring: { type: 'object', properties: { not: { type: 'string', maxLength: 64 } } } }),
    async (request, reply) => {
      const { tenantId } = request.viewer.principal;
      const list = await apiList(ctx, tenantId, request.params.id);
      const imp = await latestImport(ctx.db, tenantId, list.id);
      // `not`: the import shown before this upload began; until a newer one exists, it is starting.
      return sendFragment(reply, importProgress(list.id, imp, request.query.not !== undefined && (imp === null || imp.id === request.query.not)));
    },
  );

  app.post<{ Params: { id: string }; Body: { enabled?: string; from?: string; subject?: string; html?: string } }>(
    '/ui/lists/:id/double-opt-in',
    pageRoute('lists', {
      params: uuidParam,
      body: { type: 'object', properties: { enabled: { type: 'string', enum: ['true'] }, from: { type: 'string', maxLength: 320 }, subject: { type: 'string', maxLength: 998 }, html: { type: 'string', maxLength: 60_000 }, ...csrfBody } },
    }),
    async (request, reply) => {
      requireScope(request, MANAGE, 'changing double opt-in');
      const b = request.body;
      if (b.from && !EMAIL.test(b.from)) throw invalid(`from ${b.from} is not an email address`);
      const settings = { enabled: b.enabled === 'true', ...(b.from ? { from: b.from } : {}), ...(b.subject ? { subject: b.subject } : {}), ...(b.html ? { html: b.html } : {}) };
      await updateList(ctx.db, request.viewer.principal.tenantId, request.params.id, { double_opt_in: settings });
      return redirectWith(reply, `/ui/lists/${request.params.id}/contacts`, `Double opt-in ${settings.enabled ? 'on' : 'off'}.`);
    },
  );
}
