import type { FastifyInstance } from 'fastify';
import { verifiedDomainRequired } from '../../domains/domains.ts';
import { HttpError } from '../../http/errors.ts';
import { cancelCampaign, createCampaign, getCampaign, scheduleCampaign, type Campaign } from '../../jobs/campaigns.ts';
import { createList, deleteContact, deleteList, getContact, getListResource, listContacts, listLists, patchContact, putContact, type Contact, type ListResource } from '../../lists/contacts.ts';
import { confirmationQueuer } from '../../lists/double-opt-in.ts';
import { UUID } from '../../observability/cursor.ts';
import type { CompatDeps } from '../root.ts';
import { bareAddress, notSupported } from '../root.ts';

/**
 * Resend's audiences (the SDK's `audiences` is its `segments`: /segments), their contacts
 * (/audiences/{id}/contacts, /segments/{id}/contacts) and broadcasts over our API lists, contacts
 * and campaigns (src/lists/contacts.ts, src/jobs/campaigns.ts). Registered by routes.ts, so under
 * its error handler. docs/compat/resend.md.
 */
export async function resendAudienceRoutes(app: FastifyInstance, deps: CompatDeps) {
  const { db } = deps;
  const tags = ['compat: resend'];
  const id = { type: 'object', required: ['id'], properties: { id: { type: 'string', format: 'uuid' } } } as const;
  const contactParams = { type: 'object', required: ['id', 'contact'], properties: { id: { type: 'string', format: 'uuid' }, contact: { type: 'string', minLength: 1, maxLength: 320 } } } as const;
  const limitQuery = { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 100 }, after: { type: 'string', maxLength: 200 }, before: { type: 'string', maxLength: 200 } } } as const;
  const onPending = confirmationQueuer(deps.config.tracking, deps.config.jobs.defaultFrom);
  const notFound = (what: string) => new HttpError(404, 'not_found', `${what} not found`);
  const refusePaging = (q: { after?: string; before?: string }) => {
    for (const k of ['after', 'before'] as const) if (q[k] !== undefined) throw notSupported(k, 'paging by id is not supported by Send Engine; ask for up to 100 with limit');
  };
  const segment = (l: ListResource) => ({ id: l.id, name: l.name ?? '', created_at: l.created_at });

  // ---- audiences (segments): our API lists ---------------------------------------------------

  for (const base of ['/segments', '/audiences']) {
    app.post<{ Body: { name: string } }>(
      base,
      { config: { scope: 'lists.manage' }, schema: { summary: 'Create an audience: one of our API lists (Resend)', tags, body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1, maxLength: 200 } } } } },
      async (request, reply) => {
        const list = await createList(db, request.principal.tenantId, { name: request.body.name });
        return reply.code(201).send({ object: base === '/segments' ? 'segment' : 'audience', id: list.id, name: list.name });
      },
    );
    app.get<{ Querystring: { limit?: number; after?: string; before?: string } }>(
      base,
      { config: { scope: 'lists.view' }, schema: { summary: 'Audiences: our API lists (Resend)', tags, querystring: limitQuery } },
      async (request) => {
        refusePaging(request.query);
        const page = await listLists(db, request.principal.tenantId, { limit: request.query.limit ?? 20, owner: 'api' });
        return { object: 'list', has_more: page.nextCursor !== null, data: page.data.map(segment) };
      },
    );
    app.get<{ Params: { id: string } }>(
      `${base}/:id`,
      { config: { scope: 'lists.view' }, schema: { summary: 'One audience (Resend)', tags, params: id } },
      async (request) => {
        const list = await getListResource(db, request.principal.tenantId, request.params.id);
        if (!list || list.owner !== 'api') throw notFound(`audience ${request.params.id}`);
        return { object: base === '/segments' ? 'segment' : 'audience', ...segment(list) };
      },
    );
    app.delete<{ Params: { id: string } }>(
      `${base}/:id`,
      { config: { scope: 'lists.manage' }, schema: { summary: 'Delete an audience (Resend)', tags, params: id } },
      async (request) => {
        await deleteList(db, request.principal.tenantId, request.params.id);
        return { object: base === '/segments' ? 'segment' : 'audience', id: request.params.id, deleted: true };
      },
    );
  }

  // ---- contacts of an audience ---------------------------------------------------------------

  const contactView = (c: Contact) => ({
    object: 'contact', id: c.id, email: c.email, first_name: c.first_name, last_name: c.last_name, created_at: c.created_at, unsubscribed: c.status === 'unsubscribed',
  });
  /** A contact by id or by email, as Resend addresses them. */
  async function findContact(tenantId: string, listId: string, idOrEmail: string): Promise<Contact> {
    if (idOrEmail.includes('@')) {
      const page = await listContacts(db, tenantId, listId, { limit: 1, email: idOrEmail });
      if (page?.data[0]) return page.data[0];
    } else if (UUID.test(idOrEmail)) {
      const c = await getContact(db, tenantId, listId, idOrEmail);
      if (c) return c;
    }
    throw notFound(`contact ${idOrEmail.slice(0, 100)}`);
  }
  const ContactBody = {
    type: 'object',
    properties: { email: { type: 'string', format: 'email', maxLength: 254 }, first_name: { type: ['string', 'null'], maxLength: 200 }, last_name: { type: ['string', 'null'], maxLength: 200 }, unsubscribed: { type: 'boolean' }, properties: { type: 'object' } },
  } as const;
  type ContactBodyT = { email?: string; first_name?: string | null; last_name?: string | null; unsubscribed?: boolean; properties?: Record<string, unknown> };
  const input = (b: ContactBodyT) => {
    for (const field of Object.keys(b)) if (!(field in ContactBody.properties)) throw notSupported(field);
    return {
      ...(b.first_name !== undefined ? { first_name: b.first_name } : {}),
      ...(b.last_name !== undefined ? { last_name: b.last_name } : {}),
      ...(b.properties !== undefined ? { properties: b.properties } : {}),
      ...(b.unsubscribed !== undefined ? { subscribed: !b.unsubscribed } : {}),
    };
  };

  app.post<{ Params: { id: string }; Body: ContactBodyT }>(
    '/audiences/:id/contacts',
    { config: { scope: 'lists.manage' }, schema: { summary: 'Add a contact to an audience (Resend)', tags, params: id, body: { ...ContactBody, required: ['email'] } } },
    async (request, reply) => {
      const r = await putContact(db, request.principal.tenantId, request.params.id, { email: request.body.email!, ...input(request.body) }, 'create', onPending);
      return reply.code(201).send({ object: 'contact', id: r.contact.id });
    },
  );
  for (const base of ['/audiences', '/segments']) {
    app.get<{ Params: { id: string }; Querystring: { limit?: number; after?: string; before?: string } }>(
      `${base}/:id/contacts`,
      { config: { scope: 'lists.view' }, schema: { summary: 'Contacts of an audience (Resend)', tags, params: id, querystring: limitQuery } },
      async (request) => {
        refusePaging(request.query);
        const page = await listContacts(db, request.principal.tenantId, request.params.id, { limit: request.query.limit ?? 20 });
        if (!page) throw notFound(`audience ${request.params.id}`);
        return { object: 'list', has_more: page.nextCursor !== null, data: page.data.map(contactView) };
      },
    );
  }
  app.get<{ Params: { id: string; contact: string } }>(
    '/audiences/:id/contacts/:contact',
    { config: { scope: 'lists.view' }, schema: { summary: 'One contact by id or email (Resend)', tags, params: contactParams } },
    async (request) => contactView(await findContact(request.principal.tenantId, request.params.id, request.params.contact)),
  );
  app.patch<{ Params: { id: string; contact: string }; Body: ContactBodyT }>(
    '/audiences/:id/contacts/:contact',
    { config: { scope: 'lists.manage' }, schema: { summary: 'Change a contact; unsubscribed: true is an opt-out (Resend)', tags, params: contactParams, body: ContactBody } },
    async (request) => {
      const tenantId = request.principal.tenantId;
      if (request.body.email !== undefined) throw notSupported('email', 'give the contact by id to change its email');
      const c = await findContact(tenantId, request.params.id, request.params.contact);
      const updated = await patchContact(db, tenantId, request.params.id, c.id, input(request.body), onPending);
      return { object: 'contact', id: updated.id };
    },
  );
  app.delete<{ Params: { id: string; contact: string } }>(
    '/audiences/:id/contacts/:contact',
    { config: { scope: 'lists.manage' }, schema: { summary: 'Remove a contact (an opt-out that stands keeps it, unsubscribed) (Resend)', tags, params: contactParams } },
    async (request) => {
      const c = await findContact(request.principal.tenantId, request.params.id, request.params.contact);
      await deleteContact(db, request.principal.tenantId, request.params.id, c.id);
      return { object: 'contact', contact: c.id, deleted: true };
    },
  );
  // Resend's account-wide contacts (no audience) have no counterpart: ours belong to a list.
  for (const url of ['/contacts', '/contacts/:contact']) {
    for (const method of ['GET', 'POST', 'PATCH', 'DELETE'] as const) {
      if (url === '/contacts' && (method === 'PATCH' || method === 'DELETE')) continue;
      if (url !== '/contacts' && method === 'POST') continue;
      app.route({
        method, url, config: { authenticated: true },
        schema: { summary: 'Contacts without an audience: refused (ours belong to a list)', tags, ...(url !== '/contacts' ? { params: { type: 'object', properties: { contact: { type: 'string', maxLength: 320 } } } } : {}) },
        handler: async () => { throw notSupported('audienceId', 'contacts belong to an audience (one of our lists) in Send Engine: give audienceId'); },
      });
    }
  }

  // ---- broadcasts: our campaigns -------------------------------------------------------------

  const defaults = () => ({ from: deps.config.jobs.defaultFrom, requireVerifiedDomain: verifiedDomainRequired(deps.config) });
  const scheduler = () => {
    if (!deps.scheduler) throw new HttpError(503, 'scheduler_unavailable', 'broadcasts need the job scheduler');
    return deps.scheduler;
  };
  const BroadcastBody = {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 200 }, segment_id: { type: 'string', format: 'uuid' }, audience_id: { type: 'string', format: 'uuid' },
      from: { type: 'string', maxLength: 1000 }, subject: { type: 'string', maxLength: 998 }, html: { type: 'string' }, text: { type: 'string' },
      reply_to: { type: ['array', 'string'], maxLength: 1000, items: { type: 'string', maxLength: 1000 }, maxItems: 1 },
      preview_text: { type: 'string' }, topic_id: { type: 'string' }, send: { type: 'boolean' }, scheduled_at: { type: 'string', format: 'date-time' },
    },
  } as const;
  type BroadcastBodyT = { name?: string; segment_id?: string; audience_id?: string; from?: string; subject?: string; html?: string; text?: string; reply_to?: string | string[]; preview_text?: string; topic_id?: string; send?: boolean; scheduled_at?: string };

  app.post<{ Body: BroadcastBodyT }>(
    '/broadcasts',
    { config: { scope: 'jobs.manage' }, schema: { summary: 'Create a broadcast: one of our campaigns, a draft unless send is true (Resend)', tags, body: BroadcastBody } },
    async (request, reply) => {
      const b = request.body;
      for (const field of Object.keys(b)) if (!(field in BroadcastBody.properties)) throw notSupported(field);
      if (b.preview_text !== undefined) throw notSupported('preview_text');
      if (b.topic_id !== undefined) throw notSupported('topic_id');
      const listId = b.segment_id ?? b.audience_id;
      if (!listId) throw notSupported('segment_id', 'is required (the audience to send to)');
      if (b.scheduled_at !== undefined && !b.send) throw notSupported('scheduled_at', 'goes with send: true (or with broadcasts.send)');
      const replyTo = b.reply_to === undefined ? undefined : [b.reply_to].flat().map((a) => bareAddress('reply_to', a))[0];
      const tenantId = request.principal.tenantId;
      const campaign = await createCampaign(db, tenantId, {
        list_id: listId, name: b.name, subject: b.subject, html: b.html, text: b.text,
        ...(b.from !== undefined ? { from: bareAddress('from', b.from) } : {}), ...(replyTo ? { reply_to: replyTo } : {}),
      }, defaults());
      if (b.send) await scheduleCampaign(db, scheduler(), tenantId, campaign.id, b.scheduled_at);
      return reply.code(201).send({ id: campaign.id });
    },
  );

  app.post<{ Params: { id: string }; Body: { scheduled_at?: string } | undefined }>(
    '/broadcasts/:id/send',
    { config: { scope: 'jobs.manage' }, schema: { summary: 'Send (or schedule) a draft broadcast (Resend)', tags, params: id, body: { type: ['object', 'null'], additionalProperties: false, properties: { scheduled_at: { type: 'string', format: 'date-time' } } } } },
    async (request) => {
      const c = await scheduleCampaign(db, scheduler(), request.principal.tenantId, request.params.id, request.body?.scheduled_at);
      return { id: c.id };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/broadcasts/:id',
    { config: { scope: 'jobs.manage' }, schema: { summary: 'One broadcast (Resend)', tags, params: id } },
    async (request) => {
      const c = await getCampaign(db, request.principal.tenantId, request.params.id, false);
      if (!c) throw notFound(`broadcast ${request.params.id}`);
      return broadcastView(c);
    },
  );

  app.post<{ Params: { id: string } }>(
    '/broadcasts/:id/cancel',
    { config: { scope: 'jobs.manage' }, schema: { summary: 'Cancel a broadcast: what is not yet sent is cancelled (Resend)', tags, params: id } },
    async (request) => ({ object: 'broadcast', id: (await cancelCampaign(db, request.principal.tenantId, request.params.id)).id }),
  );
}

/** Our campaign statuses as Resend's broadcast statuses (docs/compat/resend.md). */
export const BROADCAST_STATUS: Record<string, string> = {
  draft: 'draft', scheduled: 'queued', running: 'sending', paused: 'paused', completed: 'sent', cancelled: 'canceled', failed: 'failed',
};

export const broadcastView = (c: Campaign) => ({
  object: 'broadcast', id: c.id, name: c.name ?? '', segment_id: c.list_id, audience_id: c.list_id, from: c.from, subject: c.subject,
  reply_to: c.reply_to ? [c.reply_to] : null, preview_text: null, status: BROADCAST_STATUS[c.status] ?? c.status, created_at: c.created_at,
  scheduled_at: c.scheduled_at, sent_at: c.finished_at, html: c.html, text: c.text,
});
