import type { FastifyInstance } from 'fastify';
import { verifiedDomainRequired } from '../../domains/domains.ts';
import { invalid } from '../../errors.ts';
import {
  cancelCampaign, createCampaign, getCampaign, listCampaigns, pauseCampaign, resumeCampaign, scheduleCampaign, type Campaign, type CampaignCounters,
} from '../../jobs/campaigns.ts';
import { CAMPAIGN_STATUSES, type CampaignStatus } from '../../jobs/status.ts';
import { listLists } from '../../lists/contacts.ts';
import { listTemplates } from '../../templates/templates.ts';
import { html } from '../../ui/html.ts';
import { csrfField, statusBadge, when } from '../../ui/layout.ts';
import { notFound } from '../errors.ts';
import { csrfBody, flashOf, flashQuery, pageRoute, redirectWith, sendFragment, sendPage, uuidParam, type UiContext } from './ui-page.ts';

/** Statuses whose counters still move: their progress bars poll. */
const moving = (s: CampaignStatus) => s === 'scheduled' || s === 'running';

/** What each status allows (src/jobs/campaigns.ts refuses the rest with 409). */
const ACTIONS: Record<CampaignStatus, Array<'schedule' | 'pause' | 'resume' | 'cancel'>> = {
  draft: ['schedule', 'cancel'],
  scheduled: ['schedule', 'pause', 'cancel'],
  running: ['pause', 'cancel'],
  paused: ['resume', 'cancel'],
  completed: [],
  cancelled: [],
  failed: [],
};

const COUNTERS: Array<keyof CampaignCounters> = ['total', 'queued', 'sent', 'delivered', 'opened', 'clicked', 'unsubscribed', 'bounced', 'complained', 'failed'];

function progress(c: Campaign) {
  // An ended campaign listed without its counters: a full bar.
  const total = c.counters?.total ?? (ACTIONS[c.status].length ? 0 : 1);
  const done = total - (c.counters?.queued ?? 0);
  return html`<div class="job-progress" data-campaign="${c.id}" data-status="${c.status}"
      ${moving(c.status) ? html`hx-get="/ui/campaigns/${c.id}/progress" hx-trigger="every 1s" hx-swap="outerHTML"` : ''}>
    ${statusBadge(c.status)}
    <progress max="${Math.max(total, 1)}" value="${done}" aria-label="Progress of campaign ${c.name ?? c.id}">${done}/${total}</progress>
    <div class="muted">${!c.counters ? '' : total ? `${done} of ${total} handled · ${c.counters?.sent ?? 0} sent · ${c.counters?.failed ?? 0} failed` : c.status === 'draft' ? 'draft: not scheduled' : 'no messages yet'}</div>
  </div>`;
}

/** A datetime-local value ("2026-11-30T10:00") read as UTC; a time that does not exist is a 422. */
function utcInstant(v: string): string {
  const iso = `${v}:00Z`;
  if (!Number.isFinite(Date.parse(iso)) || new Date(iso).toISOString().slice(0, 16) !== v) throw invalid(`scheduled_at ${v} is not a time`);
  return iso;
}

interface CampaignForm {
  name?: string;
  list_id: string;
  template_id?: string;
  subject?: string;
  html?: string;
  from?: string;
}

export function uiCampaignRoutes(app: FastifyInstance, ctx: UiContext) {
  const defaults = () => ({ from: ctx.config.jobs.defaultFrom, requireVerifiedDomain: verifiedDomainRequired(ctx.config) });
  const scheduler = () => {
    if (!ctx.scheduler) throw new Error('campaigns need the job scheduler');
    return ctx.scheduler;
  };
  const found = async (tenantId: string, id: string) => {
    const c = await getCampaign(ctx.db, tenantId, id);
    if (!c) throw notFound(`campaign ${id} not found`);
    return c;
  };

  app.get<{ Querystring: { status?: CampaignStatus; cursor?: string; notice?: string; kind?: string } }>(
    '/ui/campaigns',
    pageRoute('campaigns', { querystring: { type: 'object', properties: { status: { type: 'string', enum: ['', ...CAMPAIGN_STATUSES] }, cursor: { type: 'string', maxLength: 1000 }, ...flashQuery } } }),
    async (request, reply) => {
      const { tenantId } = request.viewer.principal;
      const q = request.query;
      const page = await listCampaigns(ctx.db, tenantId, { limit: 25, cursor: q.cursor, status: q.status || undefined });
      // Counters (index messages_send_job) for campaigns still under way only, like the send jobs
      // page: a page of big finished campaigns costs its rows; their counters are on their own page.
      const campaigns = await Promise.all(page.data.map((c) => (ACTIONS[c.status].length ? getCampaign(ctx.db, tenantId, c.id).then((full) => full ?? c) : c)));
      const lists = await listLists(ctx.db, tenantId, { limit: 200 });
      const templates = await listTemplates(ctx.db, tenantId, { limit: 200 });
      const body = html`
        <form class="filters" method="get" action="/ui/campaigns">
          <div class="field"><label for="c-status">Status</label>
            <select id="c-status" name="status"><option value="">any</option>${CAMPAIGN_STATUSES.map((s) => html`<option${s === q.status ? html` selected` : ''}>${s}</option>`)}</select></div>
          <button type="submit">Filter</button>
        </form>
        ${campaigns.length ? html`<div class="table-wrap"><table>
          <thead><tr><th scope="col">Campaign</th><th scope="col">List</th><th scope="col">Created</th><th scope="col" class="progress-cell">Progress</th></tr></thead>
          <tbody>${campaigns.map((c) => html`<tr>
            <td><a href="/ui/campaigns/${c.id}">${c.name ?? c.id}</a>${c.status_reason ? html`<div class="muted">${c.status_reason}</div>` : ''}</td>
            <td><a class="mono" href="/ui/lists/${c.list_id}">${lists.data.find((l) => l.id === c.list_id)?.name ?? c.list_id}</a></td>
            <td>${when(c.created_at)}</td><td class="progress-cell">${progress(c)}</td></tr>`)}</tbody></table></div>
          ${page.nextCursor ? html`<p class="pager"><a href="/ui/campaigns?cursor=${page.nextCursor}${q.status ? `&status=${q.status}` : ''}">Older campaigns →</a></p>` : ''}`
        : html`<div class="panel"><p>No campaigns${q.status ? ` with status ${q.status}` : ''} yet.</p></div>`}
        <h2>New campaign</h2>
        ${lists.data.length ? html`<form class="panel stack" method="post" action="/ui/campaigns">
          ${csrfField(request.viewer)}
          <div class="field"><label for="c-name">Name</label><input id="c-name" name="name" maxlength="200"></div>
          <div class="field"><label for="c-list">List</label><select id="c-list" name="list_id" required>${lists.data.map((l) => html`<option value="${l.id}">${l.name ?? l.id} (${l.members.active} active)</option>`)}</select></div>
          <div class="field"><label for="c-template">Stored template</label><select id="c-template" name="template_id"><option value="">none: write the subject and HTML below</option>${templates.data.map((t) => html`<option value="${t.id}">${t.name} (v${t.version})</option>`)}</select></div>
          <div class="field"><label for="c-subject">Subject (Liquid; without a stored template)</label><input id="c-subject" name="subject" maxlength="998"></div>
          <div class="field"><label for="c-html">HTML (Liquid; without a stored template)</label><textarea id="c-html" name="html" rows="6" maxlength="60000"></textarea></div>
          <div class="field"><label for="c-from">From</label><input id="c-from" name="from" type="email" maxlength="320" placeholder="${ctx.config.jobs.defaultFrom ?? 'news@example.com'}"></div>
          <p><button type="submit">Create draft</button></p>
        </form>` : html`<div class="panel"><p>No lists yet: create one with <code>POST /v1/lists</code> or let the Member Center sync one.</p></div>`}`;
      return sendPage(request, reply, 'campaigns', 'Campaigns', body, flashOf(request.query));
    },
  );

  app.post<{ Body: CampaignForm }>(
    '/ui/campaigns',
    pageRoute('campaigns', {
      body: {
        type: 'object',
        required: ['list_id'],
        properties: {
          name: { type: 'string', maxLength: 200 }, list_id: { type: 'string', format: 'uuid' }, template_id: { type: 'string', maxLength: 200 },
          subject: { type: 'string', maxLength: 998 }, html: { type: 'string', maxLength: 60_000 }, from: { type: 'string', maxLength: 320 }, ...csrfBody,
        },
      },
    }),
    async (request, reply) => {
      const b = request.body;
      const c = await createCampaign(ctx.db, request.viewer.principal.tenantId, {
        name: b.name || undefined, list_id: b.list_id, from: b.from || undefined,
        ...(b.template_id ? { template_id: b.template_id } : { subject: b.subject || undefined, html: b.html || undefined }),
      }, defaults());
      request.log.info({ campaign_id: c.id }, 'campaign created from the dashboard');
      return redirectWith(reply, `/ui/campaigns/${c.id}`, 'Draft saved. Send it now or schedule it.');
    },
  );

  app.get<{ Params: { id: string } }>('/ui/campaigns/:id/progress', pageRoute('campaigns', { params: uuidParam }), async (request, reply) =>
    sendFragment(reply, progress(await found(request.viewer.principal.tenantId, request.params.id))),
  );

  app.get<{ Params: { id: string }; Querystring: { notice?: string; kind?: string } }>(
    '/ui/campaigns/:id',
    pageRoute('campaigns', { params: uuidParam, querystring: { type: 'object', properties: flashQuery } }),
    async (request, reply) => {
      const c = await found(request.viewer.principal.tenantId, request.params.id);
      const actions = ACTIONS[c.status];
      const post = (action: string, label: string, kind = '', confirm?: string) =>
        html`<form method="post" action="/ui/campaigns/${c.id}/${action}"${confirm ? html` data-confirm="${confirm}"` : ''}>${csrfField(request.viewer)}<button type="submit"${kind ? html` class="${kind}"` : ''}>${label}</button></form>`;
      const body = html`
        <div class="panel">
          ${progress(c)}
          ${c.status_reason ? html`<p>${c.status_reason}</p>` : ''}
          <p class="muted">List <a class="mono" href="/ui/lists/${c.list_id}">${c.list_id}</a> · from <span class="mono">${c.from}</span> · subject ${c.subject}
            · scheduled ${when(c.scheduled_at)} · started ${when(c.started_at)} · finished ${when(c.finished_at)}</p>
          ${actions.length ? html`<div class="actions">
            ${actions.includes('schedule') ? html`${post('schedule', 'Send now')}
              <form class="filters" method="post" action="/ui/campaigns/${c.id}/schedule">${csrfField(request.viewer)}
                <div class="field"><label for="c-at">Send at (UTC)</label><input id="c-at" name="scheduled_at" type="datetime-local" required></div>
                <button type="submit" class="secondary">Schedule</button></form>` : ''}
            ${actions.includes('pause') ? post('pause', 'Pause', 'secondary') : ''}
            ${actions.includes('resume') ? post('resume', 'Resume') : ''}
            ${actions.includes('cancel') ? post('cancel', 'Cancel campaign', 'danger', 'Cancel this campaign? Messages not yet sent are cancelled.') : ''}
          </div>` : ''}
        </div>
        <h2>Counters</h2>
        <div class="grid">${COUNTERS.map((k) => html`<div class="stat" data-counter="${k}"><div class="label">${k}</div><div class="value">${c.counters?.[k] ?? 0}</div></div>`)}</div>`;
      return sendPage(request, reply, 'campaigns', `Campaign ${c.name ?? c.id}`, body, flashOf(request.query));
    },
  );

  const action = { params: uuidParam, body: { type: 'object', properties: { scheduled_at: { type: 'string', maxLength: 32 }, ...csrfBody } } };
  app.post<{ Params: { id: string }; Body: { scheduled_at?: string } }>('/ui/campaigns/:id/schedule', pageRoute('campaigns', action), async (request, reply) => {
    const { tenantId } = request.viewer.principal;
    await found(tenantId, request.params.id);
    const at = request.body?.scheduled_at ? utcInstant(request.body.scheduled_at) : new Date().toISOString();
    const c = await scheduleCampaign(ctx.db, scheduler(), tenantId, request.params.id, at);
    return redirectWith(reply, `/ui/campaigns/${c.id}`, request.body?.scheduled_at ? `Scheduled for ${at}.` : 'Sending now.');
  });
  app.post<{ Params: { id: string } }>('/ui/campaigns/:id/pause', pageRoute('campaigns', action), async (request, reply) => {
    const c = await pauseCampaign(ctx.db, request.viewer.principal.tenantId, request.params.id);
    return redirectWith(reply, `/ui/campaigns/${c.id}`, 'Paused: nothing more is sent until you resume.');
  });
  app.post<{ Params: { id: string } }>('/ui/campaigns/:id/resume', pageRoute('campaigns', action), async (request, reply) => {
    await found(request.viewer.principal.tenantId, request.params.id);
    const c = await resumeCampaign(ctx.db, scheduler(), request.viewer.principal.tenantId, request.params.id);
    return redirectWith(reply, `/ui/campaigns/${c.id}`, 'Resumed.');
  });
  app.post<{ Params: { id: string } }>('/ui/campaigns/:id/cancel', pageRoute('campaigns', action), async (request, reply) => {
    const c = await cancelCampaign(ctx.db, request.viewer.principal.tenantId, request.params.id);
    request.log.info({ campaign_id: c.id }, 'campaign cancelled from the dashboard');
    return redirectWith(reply, `/ui/campaigns/${c.id}`, 'Campaign cancelled; messages not yet sent will not be.');
  });
}
