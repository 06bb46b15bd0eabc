import type { FastifyInstance } from 'fastify';
import {
  createList, deleteContact, deleteList, getContact, getListResource, listContacts, listLists, patchContact, putContact, updateList,
  type ContactInput, type DoubleOptIn, type ListOwner,
} from '../../lists/contacts.ts';
import { confirmationQueuer, confirmContact, readConfirmToken } from '../../lists/double-opt-in.ts';
import { getImport, runImport, startImport, type ImportFormat } from '../../lists/import.ts';
import type { MemberStatus } from '../../lists/store.ts';
import type { AppDeps } from '../app.ts';
import { HttpError, notFound } from '../errors.ts';
import { sendPage } from '../read-api.ts';
import { failures } from '../schemas.ts';
import {
  Contact, ContactImport, ContactInput as ContactInputSchema, ContactPage, ContactParams, ContactPatch, ContactsQuery,
  CreateListRequest, ListPage, ListParams, ListResource, ListsQuery, UpdateListRequest,
} from '../schemas/contacts.ts';

const security = [{ bearerAuth: [] }];
const IMPORT_TYPES: Record<string, ImportFormat> = { 'text/csv': 'csv', 'application/x-ndjson': 'jsonl', 'application/jsonl': 'jsonl', 'application/json-lines': 'jsonl' };

/**
 * Lists the API owns and their contacts (/v1/lists, /v1/imports). A Member Center list answers
 * 409 list_owned_by_member_center to every write; another tenant's id answers 404.
 */
export async function contactRoutes(app: FastifyInstance, deps: AppDeps) {
  // Imports arrive as streams: the route reads request.raw itself, a batch at a time (no parsed body).
  app.addContentTypeParser(Object.keys(IMPORT_TYPES), (_request, _payload, done) => done(null, undefined));
  // The confirmation page's form posts an empty form: nothing in it is read.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: 1024 }, (_request, _body, done) => done(null, undefined));
  const onPending = confirmationQueuer(deps.config.tracking, deps.config.jobs.defaultFrom);

  app.post<{ Body: { name: string; double_opt_in?: DoubleOptIn } }>(
    '/v1/lists',
    { config: { scope: 'lists.manage' }, schema: { summary: 'Create a list the API owns', tags: ['lists'], security, body: CreateListRequest, response: { 201: ListResource, ...failures(401, 403, 422) } } },
    async (request, reply) => reply.code(201).send(await createList(deps.db, request.principal.tenantId, request.body)),
  );

  app.get<{ Querystring: { limit: number; cursor?: string; owner?: ListOwner } }>(
    '/v1/lists',
    { config: { scope: 'lists.view' }, schema: { summary: 'Lists of the tenant (both owners), by id', tags: ['lists'], security, querystring: ListsQuery, response: { 200: ListPage, ...failures(401, 403, 422) } } },
    async (request, reply) => sendPage(request, reply, await listLists(deps.db, request.principal.tenantId, request.query)),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/lists/:id',
    { config: { scope: 'lists.view' }, schema: { summary: 'A list with its member counts', tags: ['lists'], security, params: ListParams, response: { 200: ListResource, ...failures(401, 403, 404, 422) } } },
    async (request) => {
      const list = await getListResource(deps.db, request.principal.tenantId, request.params.id);
      if (!list) throw notFound(`list ${request.params.id} not found`);
      return list;
    },
  );

  app.patch<{ Params: { id: string }; Body: { name?: string; double_opt_in?: DoubleOptIn | null } }>(
    '/v1/lists/:id',
    { config: { scope: 'lists.manage' }, schema: { summary: 'Rename a list, set its double opt-in', tags: ['lists'], security, params: ListParams, body: UpdateListRequest, response: { 200: ListResource, ...failures(401, 403, 404, 409, 422) } } },
    async (request) => updateList(deps.db, request.principal.tenantId, request.params.id, request.body),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/lists/:id',
    { config: { scope: 'lists.manage' }, schema: { summary: 'Delete a list (409 list_in_use while a campaign sends to it)', tags: ['lists'], security, params: ListParams, response: { 204: { type: 'null' }, ...failures(401, 403, 404, 409, 422) } } },
    async (request, reply) => {
      await deleteList(deps.db, request.principal.tenantId, request.params.id);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { id: string }; Body: ContactInput }>(
    '/v1/lists/:id/contacts',
    { config: { scope: 'lists.manage' }, schema: { summary: 'Add a contact (409 contact_exists when the address is in the list)', tags: ['contacts'], security, params: ListParams, body: ContactInputSchema, response: { 201: Contact, ...failures(401, 403, 404, 409, 422) } } },
    async (request, reply) => {
      const r = await putContact(deps.db, request.principal.tenantId, request.params.id, request.body, 'create', onPending);
      return reply.code(201).send(r.contact);
    },
  );

  app.put<{ Params: { id: string }; Body: ContactInput }>(
    '/v1/lists/:id/contacts',
    { config: { scope: 'lists.manage' }, schema: { summary: 'Create or update a contact by email', tags: ['contacts'], security, params: ListParams, body: ContactInputSchema, response: { 200: Contact, 201: Contact, ...failures(401, 403, 404, 409, 422) } } },
    async (request, reply) => {
      const r = await putContact(deps.db, request.principal.tenantId, request.params.id, request.body, 'upsert', onPending);
      return reply.code(r.created ? 201 : 200).send(r.contact);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number; cursor?: string; email?: string; status?: MemberStatus } }>(
    '/v1/lists/:id/contacts',
    { config: { scope: 'lists.view' }, schema: { summary: 'Contacts of a list (filter by email, status), by id', tags: ['contacts'], security, params: ListParams, querystring: ContactsQuery, response: { 200: ContactPage, ...failures(401, 403, 404, 422) } } },
    async (request, reply) => {
      const page = await listContacts(deps.db, request.principal.tenantId, request.params.id, request.query);
      if (!page) throw notFound(`list ${request.params.id} not found`);
      return sendPage(request, reply, page);
    },
  );

  app.get<{ Params: { id: string; contact_id: string } }>(
    '/v1/lists/:id/contacts/:contact_id',
    { config: { scope: 'lists.view' }, schema: { summary: 'A contact', tags: ['contacts'], security, params: ContactParams, response: { 200: Contact, ...failures(401, 403, 404, 422) } } },
    async (request) => {
      const c = await getContact(deps.db, request.principal.tenantId, request.params.id, request.params.contact_id);
      if (!c) throw notFound(`contact ${request.params.contact_id} not found`);
      return c;
    },
  );

  app.patch<{ Params: { id: string; contact_id: string }; Body: Partial<ContactInput> }>(
    '/v1/lists/:id/contacts/:contact_id',
    { config: { scope: 'lists.manage' }, schema: { summary: 'Change a contact (properties are merged)', tags: ['contacts'], security, params: ContactParams, body: ContactPatch, response: { 200: Contact, ...failures(401, 403, 404, 409, 422) } } },
    async (request) => patchContact(deps.db, request.principal.tenantId, request.params.id, request.params.contact_id, request.body, onPending),
  );

  app.delete<{ Params: { id: string; contact_id: string } }>(
    '/v1/lists/:id/contacts/:contact_id',
    { config: { scope: 'lists.manage' }, schema: { summary: 'Remove a contact (one whose opt-out stands is kept, unsubscribed, its data erased)', tags: ['contacts'], security, params: ContactParams, response: { 204: { type: 'null' }, ...failures(401, 403, 404, 409, 422) } } },
    async (request, reply) => {
      await deleteContact(deps.db, request.principal.tenantId, request.params.id, request.params.contact_id);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/lists/:id/contacts/import',
    {
      config: { scope: 'lists.manage' },
      schema: {
        summary: 'Import contacts from CSV (text/csv) or JSON lines (application/x-ndjson), streamed',
        description: 'CSV: a header row; email, first_name, last_name, subscribed, other columns become properties. JSON lines: one contact object per line. Answers 202 with the import, whose progress GET /v1/imports/{id} shows while it runs.',
        tags: ['contacts'],
        security,
        params: ListParams,
        response: { 202: ContactImport, ...failures(401, 403, 404, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      const format = IMPORT_TYPES[type];
      if (!format) throw new HttpError(415, 'unsupported_media_type', `send text/csv or application/x-ndjson, not ${type || 'no content type'}`);
      const tenantId = request.principal.tenantId;
      const importId = await startImport(deps.db, tenantId, request.params.id, format);
      const result = await runImport(deps.db, tenantId, importId, request.params.id, format, request.raw, onPending);
      request.log.info({ import_id: importId, status: result.status, rows: result.rows_received }, 'contact import');
      return reply.code(202).send(result);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/imports/:id',
    { config: { scope: 'lists.view' }, schema: { summary: 'A contact import and its progress', tags: ['contacts'], security, params: ListParams, response: { 200: ContactImport, ...failures(401, 403, 404, 422) } } },
    async (request) => {
      const r = await getImport(deps.db, request.principal.tenantId, request.params.id);
      if (!r) throw notFound(`import ${request.params.id} not found`);
      return r;
    },
  );

  const page = (title: string, body: string) =>
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${title}</title>` +
    `<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}button{font:inherit;padding:.5rem 1.25rem;cursor:pointer}</style></head><body>${body}</body></html>`;
  const PAGE_HEADERS = {
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
  };
  // Error pages carry the request id (ours, or a sane caller's: safe to print), like every error body.
  const answer = (reply: import('fastify').FastifyReply, status: number, title: string, text: string) =>
    reply.code(status).headers(PAGE_HEADERS).type('text/html; charset=utf-8')
      .send(page(title, `<h1>${title}</h1><p>${text}</p>${status >= 400 ? `<p><small>Request ${reply.request.id}</small></p>` : ''}`));

  // Public: a double opt-in link. GET shows the button (mail scanners prefetch links); POST confirms.
  app.get<{ Params: { '*': string } }>(
    '/confirm/*',
    { logLevel: 'warn', schema: { summary: 'Double opt-in confirmation page (a button that POSTs)', tags: ['contacts'] } },
    async (request, reply) => {
      const t = readConfirmToken(deps.config.tracking, request.params['*'] ?? '');
      if (!t.ok) return answer(reply, t.reason === 'expired' ? 410 : 400, t.reason === 'expired' ? 'This link has expired' : 'This link is not valid', 'Please subscribe again to get a new one.');
      return reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8')
        .send(page('Confirm your subscription', '<h1>Confirm your subscription</h1><form method="post"><button type="submit">Confirm</button></form>'));
    },
  );

  app.post<{ Params: { '*': string } }>(
    '/confirm/*',
    { logLevel: 'warn', schema: { summary: 'Double opt-in confirmation: a pending contact becomes active (never one who unsubscribed since)', tags: ['contacts'] } },
    async (request, reply) => {
      const t = readConfirmToken(deps.config.tracking, request.params['*'] ?? '');
      if (!t.ok) return answer(reply, t.reason === 'expired' ? 410 : 400, t.reason === 'expired' ? 'This link has expired' : 'This link is not valid', 'Please subscribe again to get a new one.');
      const result = await confirmContact(deps.db, t);
      request.log.info({ list_id: t.listId, result }, 'double opt-in confirmation');
      return result === 'confirmed'
        ? answer(reply, 200, 'Thank you', 'Your subscription is confirmed.')
        : answer(reply, 200, 'Nothing to confirm', 'This subscription is already confirmed, or was cancelled since.');
    },
  );
}
