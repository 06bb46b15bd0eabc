import type { FastifyInstance } from 'fastify';
import { cancelSendJob, getSendJob, listSendJobs, sendJobSendsPerMinute, type SendJobView } from '../../jobs/jobs.ts';
import type { SendJobStatus } from '../../jobs/status.ts';
import { html, jsonIsland } from '../../ui/html.ts';
import { csrfField, statusBadge, when } from '../../ui/layout.ts';
import { flashOf, flashQuery, pageRoute, redirectWith, sendFragment, sendPage, uuidParam, type UiContext } from './ui-page.ts';

const STATUSES: SendJobStatus[] = ['pending', 'running', 'completed', 'failed', 'cancelled'];
const live = (status: string) => status === 'pending' || status === 'running';

/**
 * A job's status and progress bar; while the job is live it polls itself (htmx) and replaces
 * itself, and the last answer (a finished job) has no trigger, so the polling stops.
 */
function progress(job: { id: string; status: string; total: number | null; done: number | null; finished_at?: string | null }) {
  if (job.total === null || job.done === null) {
    // A finished job in the list: its figures are on its page.
    return html`<div class="job-progress" data-job="${job.id}" data-status="${job.status}">${statusBadge(job.status)} <span class="muted">finished ${when(job.finished_at)}</span></div>`;
  }
  const label = job.total ? `${job.done} of ${job.total} sent or settled` : job.status === 'pending' ? 'waiting to start' : 'no recipients yet';
  return html`<div class="job-progress" data-job="${job.id}" data-status="${job.status}"
      ${live(job.status) ? html`hx-get="/ui/jobs/${job.id}/progress" hx-trigger="every 1s" hx-swap="outerHTML"` : ''}>
    ${statusBadge(job.status)}
    <progress max="${Math.max(job.total, 1)}" value="${job.done}" aria-label="Progress of send job ${job.id}">${job.done}/${job.total}</progress>
    <div class="muted">${label}</div>
  </div>`;
}

const doneOf = (c: SendJobView['counts']) => c.total - c.queued;

export function uiJobRoutes(app: FastifyInstance, ctx: UiContext) {
  app.get<{ Querystring: { status?: SendJobStatus; notice?: string; kind?: string } }>(
    '/ui/jobs',
    pageRoute('jobs', { querystring: { type: 'object', properties: { status: { type: 'string', enum: STATUSES }, ...flashQuery } } }),
    async (request, reply) => {
      const jobs = await listSendJobs(ctx.db, request.viewer.principal.tenantId, { limit: 50, status: request.query.status });
      const body = html`
        <form class="filters" method="get" action="/ui/jobs">
          <div class="field"><label for="job-status">Status</label>
            <select id="job-status" name="status"><option value="">any</option>${STATUSES.map((s) => html`<option${s === request.query.status ? html` selected` : ''}>${s}</option>`)}</select></div>
          <button type="submit">Filter</button>
        </form>
        ${jobs.length ? html`<div class="table-wrap"><table>
          <caption class="muted" style="text-align:left;padding:.5rem .75rem">The 50 newest send jobs; live ones update every second.</caption>
          <thead><tr><th scope="col">Job</th><th scope="col">List</th><th scope="col">Created</th><th scope="col" class="progress-cell">Progress</th></tr></thead>
          <tbody>${jobs.map((j) => html`<tr>
            <td><a href="/ui/jobs/${j.id}">${j.name ?? j.id}</a>${j.status_reason ? html`<div class="muted">${j.status_reason}</div>` : ''}</td>
            <td><a href="/ui/lists/${j.list_id}" class="mono">${j.list_id}</a></td>
            <td>${when(j.created_at)}</td>
            <td class="progress-cell">${progress(j)}</td></tr>`)}</tbody></table></div>`
        : html`<div class="panel"><p>No send jobs yet. Create one with <code>POST /api/send-jobs</code> (docs/jobs.md).</p></div>`}`;
      return sendPage(request, reply, 'jobs', 'Send jobs', body, flashOf(request.query));
    },
  );

  app.get<{ Params: { id: string } }>('/ui/jobs/:id/progress', pageRoute('jobs', { params: uuidParam }), async (request, reply) => {
    const job = await getSendJob(ctx.db, request.viewer.principal.tenantId, request.params.id);
    return sendFragment(reply, progress({ id: job.id, status: job.status, total: job.counts.total, done: doneOf(job.counts) }));
  });

  app.get<{ Params: { id: string }; Querystring: { notice?: string; kind?: string } }>(
    '/ui/jobs/:id',
    pageRoute('jobs', { params: uuidParam, querystring: { type: 'object', properties: flashQuery } }),
    async (request, reply) => {
      const { tenantId } = request.viewer.principal;
      const job = await getSendJob(ctx.db, tenantId, request.params.id);
      const perMinute = await sendJobSendsPerMinute(ctx.db, tenantId, job.id);
      const chart = { x: perMinute.map((p) => Date.parse(p.minute) / 1000), series: [{ label: 'Sent per minute', values: perMinute.map((p) => p.sent) }], fill: true };
      const counts = Object.entries(job.counts);
      const body = html`
        <div class="panel">
          ${progress({ id: job.id, status: job.status, total: job.counts.total, done: doneOf(job.counts) })}
          ${job.status_reason ? html`<p>${job.status_reason}</p>` : ''}
          <p class="muted">List <a class="mono" href="/ui/lists/${job.list_id}">${job.list_id}</a> · scheduled ${when(job.scheduled_at)} · started ${when(job.started_at)} · finished ${when(job.finished_at)} · pacing ${job.pacing}${job.rate_per_second ? ` at ${job.rate_per_second}/s` : ''}</p>
          ${live(job.status) ? html`<form method="post" action="/ui/jobs/${job.id}/cancel" data-confirm="Cancel this send job? Messages not yet sent are cancelled.">
              ${csrfField(request.viewer)}<button type="submit" class="danger">Cancel job</button></form>
              <p class="muted">Pausing a job is not offered by the API yet; cancel stops it for good.</p>` : ''}
        </div>
        <h2>Counters</h2>
        <div class="grid">${counts.map(([k, v]) => html`<div class="stat"><div class="label">${k}</div><div class="value">${v}</div></div>`)}</div>
        <h2>Sends over time</h2>
        <div class="panel">${perMinute.length ? html`<div class="chart" data-chart="chart-job" role="img" aria-label="Messages sent per minute"></div>${jsonIsland('chart-job', chart)}` : html`<p class="muted">Nothing sent yet.</p>`}</div>`;
      return sendPage(request, reply, 'jobs', `Send job ${job.name ?? job.id}`, body, flashOf(request.query));
    },
  );

  app.post<{ Params: { id: string } }>('/ui/jobs/:id/cancel', pageRoute('jobs', { params: uuidParam }), async (request, reply) => {
    const { cancelledMessages } = await cancelSendJob(ctx.db, request.viewer.principal.tenantId, request.params.id);
    request.log.info({ send_job_id: request.params.id, cancelled_messages: cancelledMessages }, 'send job cancelled from the dashboard');
    return redirectWith(reply, `/ui/jobs/${request.params.id}`, `Send job cancelled; ${cancelledMessages} queued messages will not be sent.`);
  });
}
