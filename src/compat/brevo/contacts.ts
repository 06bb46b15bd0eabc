import type { FastifyInstance } from 'fastify';
import { DomainError } from '../../errors.ts';
import {
  contactsByEmail, createList, deleteContact, deleteList, getListResource, listIdByNumber, listLists, listNumbers, putContact, updateList,
  type Contact, type ListResource,
} from '../../lists/contacts.ts';
import { confirmationQueuer } from '../../lists/double-opt-in.ts';
import { brevoFailures, invalidParameter, missing, notSupported } from './errors.ts';
import type { BrevoDeps } from './index.ts';
import { brevoInt, intParam } from './schemas.ts';

/** Every list is in one folder here, number 1 (Brevo requires a folderId). */
const FOLDER = 1;
const email = { type: 'string', format: 'email', maxLength: 254 } as const;
const attributes = { type: 'object', description: 'FIRSTNAME and LASTNAME are the contact\'s names; every other attribute is a property' } as const;

interface ContactBody {
  email?: string;
  attributes?: Record<string, unknown>;
  listIds?: number[];
  updateEnabled?: boolean;
}

/** Brevo's attributes as our contact fields: FIRSTNAME and LASTNAME are names, the rest properties. */
function fromAttributes(a: Record<string, unknown> | undefined) {
  if (a === undefined) return {};
  const { FIRSTNAME, LASTNAME, ...properties } = a;
  for (const [k, v] of [['FIRSTNAME', FIRSTNAME], ['LASTNAME', LASTNAME]] as const) {
    if (v !== undefined && v !== null && typeof v !== 'string') throw invalidParameter(`attributes.${k} must be a string`);
  }
  return {
    ...(FIRSTNAME !== undefined ? { first_name: FIRSTNAME as string | null } : {}),
    ...(LASTNAME !== undefined ? { last_name: LASTNAME as string | null } : {}),
    ...(Object.keys(properties).length ? { properties } : {}),
  };
}

const SUBSCRIBED = new Set(['active', 'pending']);

/** Brevo's lists and contacts onto the API-owned lists and their contacts (src/lists/contacts.ts). */
export async function contactRoutes(app: FastifyInstance, deps: BrevoDeps) {
  const { db, config } = deps;
  const manage = { scope: 'lists.manage', credentialHeader: 'api-key' } as const;
  const view = { scope: 'lists.view', credentialHeader: 'api-key' } as const;
  const tags = ['brevo'];
  const onPending = confirmationQueuer(config.tracking, config.jobs.defaultFrom);

  const listView = (l: ListResource, number: number) => ({
    id: number, name: l.name ?? '', folderId: FOLDER, uniqueSubscribers: l.members.total, totalSubscribers: l.members.active + l.members.pending,
    totalBlacklisted: l.members.unsubscribed + l.members.bounced + l.members.complaint + l.members.suppressed, createdAt: l.created_at,
  });
  const ListView = {
    type: 'object',
    properties: {
      id: { type: 'integer' }, name: { type: 'string' }, folderId: { type: 'integer' }, uniqueSubscribers: { type: 'integer' }, totalSubscribers: { type: 'integer' },
      totalBlacklisted: { type: 'integer' }, createdAt: { type: 'string' },
    },
  } as const;
  const listBody = (required: string[]) => ({
    type: 'object', required, additionalProperties: false,
    properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, folderId: brevoInt },
  }) as const;
  const checkFolder = (folderId: number | undefined) => {
    if (folderId !== undefined && folderId !== FOLDER) throw notSupported('folderId', `folders are not kept here: every list is in folder ${FOLDER}`);
  };

  app.post<{ Body: { name: string; folderId: number } }>(
    '/contacts/lists',
    { config: manage, schema: { summary: 'Brevo: create a list (the API owns it)', tags, body: listBody(['name', 'folderId']), response: { 201: { type: 'object', properties: { id: { type: 'integer' } } }, ...brevoFailures } } },
    async (request, reply) => {
      checkFolder(request.body.folderId);
      const list = await createList(db, request.principal.tenantId, { name: request.body.name });
      const number = (await listNumbers(db, request.principal.tenantId, [list.id])).get(list.id)!;
      return reply.code(201).send({ id: number });
    },
  );

  app.get<{ Querystring: { limit: number; offset: number; sort: 'asc' | 'desc' } }>(
    '/contacts/lists',
    {
      config: view,
      schema: {
        summary: 'Brevo: lists (those the API owns)', tags,
        querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 0, maximum: 50, default: 10 }, offset: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 }, sort: { type: 'string', enum: ['asc', 'desc'], default: 'desc' } } },
        response: { 200: { type: 'object', properties: { count: { type: 'integer' }, lists: { type: 'array', items: ListView } } }, ...brevoFailures },
      },
    },
    async (request) => {
      const tenantId = request.principal.tenantId;
      // A tenant's API lists are few: read them all (by pages), then Brevo's offset page by number.
      const all: ListResource[] = [];
      let cursor: string | undefined;
      do {
        const page = await listLists(db, tenantId, { limit: 200, cursor, owner: 'api' });
        all.push(...page.data);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      const numbers = await listNumbers(db, tenantId, all.map((l) => l.id));
      const numbered = all.filter((l) => numbers.has(l.id)).sort((a, b) => (numbers.get(a.id)! - numbers.get(b.id)!) * (request.query.sort === 'asc' ? 1 : -1));
      const q = request.query;
      return { count: numbered.length, lists: numbered.slice(q.offset, q.offset + q.limit).map((l) => listView(l, numbers.get(l.id)!)) };
    },
  );

  const resolveList = (tenantId: string, number: number) => listIdByNumber(db, tenantId, number);

  app.get<{ Params: { listId: number } }>(
    '/contacts/lists/:listId',
    { config: view, schema: { summary: 'Brevo: one list', tags, params: intParam('listId'), response: { 200: ListView, ...brevoFailures } } },
    async (request) => {
      const tenantId = request.principal.tenantId;
      const list = await getListResource(db, tenantId, await resolveList(tenantId, request.params.listId));
      if (!list) throw new DomainError('not_found', 'not_found', `list ${request.params.listId} not found`);
      return listView(list, request.params.listId);
    },
  );

  app.put<{ Params: { listId: number }; Body: { name?: string; folderId?: number } }>(
    '/contacts/lists/:listId',
    { config: manage, schema: { summary: 'Brevo: rename a list', tags, params: intParam('listId'), body: listBody([]), response: { 204: { type: 'null' }, ...brevoFailures } } },
    async (request, reply) => {
      checkFolder(request.body.folderId);
      const tenantId = request.principal.tenantId;
      await updateList(db, tenantId, await resolveList(tenantId, request.params.listId), { name: request.body.name });
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: { listId: number } }>(
    '/contacts/lists/:listId',
    { config: manage, schema: { summary: 'Brevo: delete a list', tags, params: intParam('listId'), response: { 204: { type: 'null' }, ...brevoFailures } } },
    async (request, reply) => {
      const tenantId = request.principal.tenantId;
      await deleteList(db, tenantId, await resolveList(tenantId, request.params.listId));
      return reply.code(204).send();
    },
  );

  const ContactsResult = { type: 'object', properties: { contacts: { type: 'object', properties: { success: { type: 'array', items: { type: 'string' } }, failure: { type: 'array', items: { type: 'string' } }, total: { type: 'integer' } } } } } as const;
  const emailsBody = { type: 'object', required: ['emails'], additionalProperties: false, properties: { emails: { type: 'array', items: email, minItems: 1, maxItems: 150 } } } as const;

  app.post<{ Params: { listId: number }; Body: { emails: string[] } }>(
    '/contacts/lists/:listId/contacts/add',
    { config: manage, schema: { summary: 'Brevo: add contacts (by email) to a list', tags, params: intParam('listId'), body: emailsBody, response: { 201: ContactsResult, ...brevoFailures } } },
    async (request, reply) => {
      const tenantId = request.principal.tenantId;
      const listId = await resolveList(tenantId, request.params.listId);
      for (const address of request.body.emails) await putContact(db, tenantId, listId, { email: address }, 'upsert', onPending);
      return reply.code(201).send({ contacts: { success: request.body.emails, failure: [], total: request.body.emails.length } });
    },
  );

  app.post<{ Params: { listId: number }; Body: { emails: string[] } }>(
    '/contacts/lists/:listId/contacts/remove',
    { config: manage, schema: { summary: 'Brevo: remove contacts (by email) from a list', tags, params: intParam('listId'), body: emailsBody, response: { 201: ContactsResult, ...brevoFailures } } },
    async (request, reply) => {
      const tenantId = request.principal.tenantId;
      const listId = await resolveList(tenantId, request.params.listId);
      const success: string[] = [];
      const failure: string[] = [];
      for (const address of request.body.emails) {
        const contact = (await contactsByEmail(db, tenantId, address)).find((c) => c.list_id === listId);
        if (!contact) failure.push(address);
        else {
          await deleteContact(db, tenantId, listId, contact.id);
          success.push(address);
        }
      }
      return reply.code(201).send({ contacts: { success, failure, total: success.length } });
    },
  );

  const contactView = async (tenantId: string, contacts: Contact[]) => {
    const numbers = await listNumbers(db, tenantId, contacts.map((c) => c.list_id));
    const first = contacts[0];
    const names = contacts.find((c) => c.first_name !== null || c.last_name !== null) ?? first;
    return {
      id: first.id, email: first.email,
      emailBlacklisted: contacts.some((c) => c.opted_out_at !== null), smsBlacklisted: false,
      createdAt: first.created_at, modifiedAt: contacts.map((c) => c.updated_at).sort().at(-1)!,
      attributes: { ...Object.assign({}, ...contacts.map((c) => c.properties)), ...(names.first_name !== null ? { FIRSTNAME: names.first_name } : {}), ...(names.last_name !== null ? { LASTNAME: names.last_name } : {}) },
      listIds: contacts.filter((c) => SUBSCRIBED.has(c.status)).map((c) => numbers.get(c.list_id)!),
      listUnsubscribed: contacts.filter((c) => !SUBSCRIBED.has(c.status)).map((c) => numbers.get(c.list_id)!),
      statistics: {},
    };
  };
  const ContactView = {
    type: 'object',
    properties: {
      id: { type: 'string', description: 'Our contact id in its first list (uuid)' }, email: { type: 'string' }, emailBlacklisted: { type: 'boolean' }, smsBlacklisted: { type: 'boolean' },
      createdAt: { type: 'string' }, modifiedAt: { type: 'string' }, attributes: { type: 'object', additionalProperties: true },
      listIds: { type: 'array', items: { type: 'integer' } }, listUnsubscribed: { type: 'array', items: { type: 'integer' } }, statistics: { type: 'object' },
    },
  } as const;
  const identifier = { type: 'object', required: ['identifier'], properties: { identifier: { type: 'string', minLength: 1, maxLength: 254 } } } as const;

  app.post<{ Body: ContactBody }>(
    '/contacts',
    {
      config: manage,
      schema: {
        summary: 'Brevo: create a contact in lists (updateEnabled: or update it)', tags,
        body: {
          type: 'object', required: ['email'], additionalProperties: false,
          properties: { email, attributes, listIds: { type: 'array', items: brevoInt, maxItems: 50 }, updateEnabled: { type: 'boolean' } },
        },
        response: { 201: { type: 'object', properties: { id: { type: 'string' } } }, 204: { type: 'null' }, ...brevoFailures },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const tenantId = request.principal.tenantId;
      if (!b.listIds?.length) throw missing('listIds');
      // Every list first (404 before any write); an existing contact is refused before any write too.
      const listIds = await Promise.all(b.listIds.map((n) => resolveList(tenantId, n)));
      const existing = await contactsByEmail(db, tenantId, b.email!);
      const inLists = existing.filter((c) => listIds.includes(c.list_id));
      if (inLists.length && !b.updateEnabled) throw new DomainError('conflict', 'duplicate_parameter', 'Contact already exist');
      const fields = { email: b.email!, ...fromAttributes(b.attributes) };
      let id: string | undefined;
      for (const listId of listIds) id ??= (await putContact(db, tenantId, listId, fields, 'upsert', onPending)).contact.id;
      return inLists.length ? reply.code(204).send() : reply.code(201).send({ id });
    },
  );

  app.get<{ Params: { identifier: string } }>(
    '/contacts/:identifier',
    { config: view, schema: { summary: 'Brevo: a contact by email, across the lists the API owns', tags, params: identifier, response: { 200: ContactView, ...brevoFailures } } },
    async (request) => {
      const tenantId = request.principal.tenantId;
      const contacts = await contactsByEmail(db, tenantId, request.params.identifier);
      if (!contacts.length) throw new DomainError('not_found', 'not_found', 'Contact does not exist');
      return contactView(tenantId, contacts);
    },
  );

  app.delete<{ Params: { identifier: string } }>(
    '/contacts/:identifier',
    { config: manage, schema: { summary: 'Brevo: delete a contact from every list (an opt-out stands: the address stays unsubscribed)', tags, params: identifier, response: { 204: { type: 'null' }, ...brevoFailures } } },
    async (request, reply) => {
      const tenantId = request.principal.tenantId;
      const contacts = await contactsByEmail(db, tenantId, request.params.identifier);
      if (!contacts.length) throw new DomainError('not_found', 'not_found', 'Contact does not exist');
      for (const c of contacts) await deleteContact(db, tenantId, c.list_id, c.id);
      return reply.code(204).send();
    },
  );
}
