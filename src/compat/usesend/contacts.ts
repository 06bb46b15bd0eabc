import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../../http/app.ts';
import { MAX_LIMIT } from '../../http/read-api.ts';
import {
  createList, deleteContact, deleteList, getContact, getListResource, listContacts, listLists, patchContact, putContact, updateList,
  type Contact, type ContactInput, type DoubleOptIn, type ListResource,
} from '../../lists/contacts.ts';
import { confirmationQueuer } from '../../lists/double-opt-in.ts';
import type { Page } from '../../observability/messages.ts';
import { DomainError } from '../../errors.ts';
import { badRequest } from './errors.ts';
import { BookBody, BookPatch, BookParam, ContactBody, ContactList, ContactParam, ContactPatchBody, ContactUpsertParam, UseSendObject } from './schemas.ts';

/** useSend's contact book = our API-owned list; its contacts = the list's contacts (src/lists/contacts.ts). */
interface BookInput {
  name?: string;
  emoji?: string;
  properties?: Record<string, string>;
  doubleOptInEnabled?: boolean;
  doubleOptInFrom?: string | null;
  doubleOptInSubject?: string;
  doubleOptInContent?: string;
}

interface ContactFields {
  email?: string;
  firstName?: string;
  lastName?: string;
  properties?: Record<string, string>;
  subscribed?: boolean;
}

const notFound = (what: string) => new DomainError('not_found', 'not_found', `${what} not found`);

/** What a contact book carries that a list cannot: refused by name rather than dropped. */
function doubleOptIn(book: BookInput, current: DoubleOptIn | null): DoubleOptIn | null | undefined {
  if (book.emoji !== undefined && book.emoji !== '') throw badRequest('emoji is not supported by this engine', 'unsupported_field');
  if (book.properties !== undefined && Object.keys(book.properties).length) throw badRequest('properties of a contact book are not supported by this engine (contacts have properties)', 'unsupported_field');
  if (book.doubleOptInContent !== undefined) throw badRequest('doubleOptInContent (useSend editor JSON) is not supported by this engine: set the list\'s double_opt_in.html with PATCH /v1/lists/{id}', 'unsupported_field');
  const touched = book.doubleOptInEnabled !== undefined || book.doubleOptInFrom !== undefined || book.doubleOptInSubject !== undefined;
  if (!touched) return undefined;
  const enabled = book.doubleOptInEnabled ?? current?.enabled ?? false;
  if (!enabled) return null;
  const from = book.doubleOptInFrom === null ? undefined : (book.doubleOptInFrom ?? current?.from);
  const subject = book.doubleOptInSubject ?? current?.subject;
  return { enabled: true, ...(from ? { from } : {}), ...(subject ? { subject } : {}), ...(current?.html ? { html: current.html } : {}) };
}

function bookView(list: ListResource, tenantId: string) {
  return {
    id: list.id,
    name: list.name ?? '',
    teamId: tenantId,
    properties: {},
    emoji: '',
    doubleOptInEnabled: list.double_opt_in?.enabled ?? false,
    doubleOptInFrom: list.double_opt_in?.from ?? null,
    doubleOptInSubject: list.double_opt_in?.subject ?? null,
    doubleOptInContent: null,
    createdAt: list.created_at,
    updatedAt: list.updated_at,
    _count: { contacts: list.members.total },
  };
}

function contactView(c: Contact) {
  return {
    id: c.id,
    firstName: c.first_name,
    lastName: c.last_name,
    email: c.email,
    subscribed: c.status === 'active',
    properties: c.properties,
    contactBookId: c.list_id,
    createdAt: c.created_at,
    updatedAt: c.updated_at,
  };
}

const contactInput = (c: ContactFields): Partial<ContactInput> => {
  const out: Partial<ContactInput> = {};
  if (c.email !== undefined) out.email = c.email;
  if (c.firstName !== undefined) out.first_name = c.firstName;
  if (c.lastName !== undefined) out.last_name = c.lastName;
  if (c.properties !== undefined) out.properties = c.properties;
  if (c.subscribed !== undefined) out.subscribed = c.subscribed;
  return out;
};

/** Page `page` (from 1) of a cursor-paged listing: the pages before it are walked for their cursors. */
export async function nthPage<T>(page: number, fetch: (cursor: string | undefined) => Promise<Page<T> | null>): Promise<Page<T> | null> {
  let cursor: string | undefined;
  for (let n = 1; n < page; n++) {
    const before = await fetch(cursor);
    if (!before) return null;
    if (before.nextCursor === null) return { data: [], nextCursor: null };
    cursor = before.nextCursor;
  }
  return fetch(cursor);
}

export async function contactBookRoutes(app: FastifyInstance, deps: AppDeps) {
  const { db } = deps;
  const security = [{ bearerAuth: [] }];
  const tags = ['useSend compatibility'];
  const ok = { 200: UseSendObject };
  const view = { scope: 'lists.view' } as const;
  const manage = { scope: 'lists.manage' } as const;
  const onPending = confirmationQueuer(deps.config.tracking, deps.config.jobs.defaultFrom);

  const book = async (tenantId: string, id: string) => {
    const list = await getListResource(db, tenantId, id);
    if (!list) throw notFound(`contact book ${id}`);
    return list;
  };

  app.post<{ Body: BookInput & { name: string } }>(
    '/contactBooks',
    { config: manage, schema: { tags, summary: 'useSend: create a contact book (a list the API owns)', security, body: BookBody, response: ok } },
    async (request) => {
      const tenantId = request.principal.tenantId;
      const optIn = doubleOptIn(request.body, null);
      const list = await createList(db, tenantId, { name: request.body.name, ...(optIn ? { double_opt_in: optIn } : {}) });
      return bookView(list, tenantId);
    },
  );

  app.get(
    '/contactBooks',
    { config: view, schema: { tags, summary: `useSend: the contact books (the ${MAX_LIMIT} newest lists)`, security, response: { 200: { type: 'array', items: UseSendObject } } } },
    async (request) => (await listLists(db, request.principal.tenantId, { limit: MAX_LIMIT })).data.map((l) => bookView(l, request.principal.tenantId)),
  );

  app.get<{ Params: { contactBookId: string } }>(
    '/contactBooks/:contactBookId',
    { config: view, schema: { tags, summary: 'useSend: one contact book with its contact count', security, params: BookParam, response: ok } },
    async (request) => bookView(await book(request.principal.tenantId, request.params.contactBookId), request.principal.tenantId),
  );

  app.patch<{ Params: { contactBookId: string }; Body: BookInput }>(
    '/contactBooks/:contactBookId',
    { config: manage, schema: { tags, summary: 'useSend: rename a contact book, set its double opt-in', security, params: BookParam, body: BookPatch, response: ok } },
    async (request) => {
      const tenantId = request.principal.tenantId;
      const current = await book(tenantId, request.params.contactBookId);
      const optIn = doubleOptIn(request.body, current.double_opt_in);
      const patch = { ...(request.body.name !== undefined ? { name: request.body.name } : {}), ...(optIn !== undefined ? { double_opt_in: optIn } : {}) };
      return bookView(Object.keys(patch).length ? await updateList(db, tenantId, current.id, patch) : current, tenantId);
    },
  );

  app.delete<{ Params: { contactBookId: string } }>(
    '/contactBooks/:contactBookId',
    { config: manage, schema: { tags, summary: 'useSend: delete a contact book', security, params: BookParam, response: ok } },
    async (request) => {
      await deleteList(db, request.principal.tenantId, request.params.contactBookId);
      return { id: request.params.contactBookId, success: true, message: 'Contact book deleted successfully' };
    },
  );

  app.post<{ Params: { contactBookId: string }; Body: ContactFields & { email: string } }>(
    '/contactBooks/:contactBookId/contacts',
    { config: manage, schema: { tags, summary: 'useSend: add a contact', security, params: BookParam, body: ContactBody, response: ok } },
    async (request) => {
      const r = await putContact(db, request.principal.tenantId, request.params.contactBookId, contactInput(request.body) as ContactInput, 'create', onPending);
      return { contactId: r.contact.id };
    },
  );

  app.get<{ Params: { contactBookId: string }; Querystring: { emails?: string; ids?: string; page: number; limit: number } }>(
    '/contactBooks/:contactBookId/contacts',
    { config: view, schema: { tags, summary: 'useSend: contacts of a contact book', security, params: BookParam, querystring: ContactList, response: { 200: { type: 'array', items: UseSendObject } } } },
    async (request) => {
      const q = request.query;
      if (q.ids !== undefined) throw badRequest('the ids filter is not supported by this engine: get contacts by id one at a time', 'unsupported_field');
      const emails = q.emails?.split(',').map((e) => e.trim()).filter(Boolean) ?? [];
      if (emails.length > 1) throw badRequest('emails: this engine filters by one address at a time', 'unsupported_field');
      const page = await nthPage(q.page, (cursor) => listContacts(db, request.principal.tenantId, request.params.contactBookId, { limit: q.limit, cursor, email: emails[0] }));
      if (!page) throw notFound(`contact book ${request.params.contactBookId}`);
      return page.data.map(contactView);
    },
  );

  app.get<{ Params: { contactBookId: string; contactId: string } }>(
    '/contactBooks/:contactBookId/contacts/:contactId',
    { config: view, schema: { tags, summary: 'useSend: one contact', security, params: ContactParam, response: ok } },
    async (request) => {
      const c = await getContact(db, request.principal.tenantId, request.params.contactBookId, request.params.contactId);
      if (!c) throw notFound(`contact ${request.params.contactId}`);
      return contactView(c);
    },
  );

  app.patch<{ Params: { contactBookId: string; contactId: string }; Body: ContactFields }>(
    '/contactBooks/:contactBookId/contacts/:contactId',
    { config: manage, schema: { tags, summary: 'useSend: change a contact', security, params: ContactParam, body: ContactPatchBody, response: ok } },
    async (request) => {
      const c = await patchContact(db, request.principal.tenantId, request.params.contactBookId, request.params.contactId, contactInput(request.body), onPending);
      return { contactId: c.id };
    },
  );

  app.put<{ Params: { contactBookId: string; contactId: string }; Body: ContactFields & { email: string } }>(
    '/contactBooks/:contactBookId/contacts/:contactId',
    { config: manage, schema: { tags, summary: 'useSend: create or update a contact by email (the path id is not used)', security, params: ContactUpsertParam, body: ContactBody, response: ok } },
    async (request) => {
      const r = await putContact(db, request.principal.tenantId, request.params.contactBookId, contactInput(request.body) as ContactInput, 'upsert', onPending);
      return { contactId: r.contact.id };
    },
  );

  app.delete<{ Params: { contactBookId: string; contactId: string } }>(
    '/contactBooks/:contactBookId/contacts/:contactId',
    { config: manage, schema: { tags, summary: 'useSend: remove a contact', security, params: ContactParam, response: ok } },
    async (request) => {
      await deleteContact(db, request.principal.tenantId, request.params.contactBookId, request.params.contactId);
      return { success: true };
    },
  );
}
