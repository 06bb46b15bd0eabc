import type { FastifyInstance } from 'fastify';
import { accountSnapshot } from '../../observability/account.ts';
import { resolveWindow } from '../../observability/cursor.ts';
import { deliverabilityReport } from '../../observability/reports.ts';
import { html, jsonIsland } from '../../ui/html.ts';
import { percent, when } from '../../ui/layout.ts';
import { pageRoute, sendPage, type UiContext } from './ui-page.ts';

const DAY_MS = 86_400_000;

/** Sums of the daily roll-up rows since `days` ago (whole UTC days, as the reports count them). */
function totals(rows: Awaited<ReturnType<typeof deliverabilityReport>>, days: number) {
  const since = Math.floor((Date.now() - days * DAY_MS) / DAY_MS) * DAY_MS;
  const t = { sent: 0, delivered: 0, bounced: 0, complained: 0 };
  for (const r of rows) {
    if (Date.parse(r.period) < since) continue;
    t.sent += r.sent;
    t.delivered += r.delivered;
    t.bounced += r.bounced;
    t.complained += r.complained;
  }
  const rate = (n: number) => (t.sent > 0 ? n / t.sent : 0);
  return { ...t, deliveryRate: rate(t.delivered), bounceRate: rate(t.bounced), complaintRate: rate(t.complained) };
}

export function uiOverviewRoutes(app: FastifyInstance, ctx: UiContext) {
  app.get('/', pageRoute('overview'), async (request, reply) => {
    const { tenantId, scopes } = request.viewer.principal;
    // The roll-ups only (never the raw events): fast on a tenant with millions of them.
    const rows = await deliverabilityReport(ctx.db, tenantId, resolveWindow(undefined, undefined, 30), 'day');
    const account = scopes.has('org.view') ? await accountSnapshot(ctx.db, ctx.config, tenantId, request.viewer.principal.environment ?? 'live') : null;
    const periods = [['Last 24 h', 1], ['Last 7 days', 7], ['Last 30 days', 30]] as const;
    const x = rows.map((r) => Date.parse(r.period) / 1000);
    const volume = { x, series: [{ label: 'Sent', values: rows.map((r) => r.sent) }, { label: 'Delivered', values: rows.map((r) => r.delivered) }], fill: true };
    const rates = {
      x, percent: true,
      series: [
        { label: 'Bounce rate', percent: true, values: rows.map((r) => (r.sent ? r.bounced / r.sent : 0)) },
        { label: 'Complaint rate', percent: true, values: rows.map((r) => (r.sent ? r.complained / r.sent : 0)) },
      ],
    };
    const g = account?.guardrail;
    const body = html`
      ${periods.map(([label, days]) => {
        const t = totals(rows, days);
        return html`<h2>${label}</h2>
          <div class="grid" data-period="${days}">
            <div class="stat"><div class="label">Sent</div><div class="value">${t.sent.toLocaleString('en')}</div></div>
            <div class="stat"><div class="label">Delivered</div><div class="value">${t.delivered.toLocaleString('en')}</div><div class="sub">${percent(t.deliveryRate)} of sent</div></div>
            <div class="stat"><div class="label">Bounce rate</div><div class="value">${percent(t.bounceRate)}</div><div class="sub">${t.bounced} bounced</div></div>
            <div class="stat"><div class="label">Complaint rate</div><div class="value">${percent(t.complaintRate)}</div><div class="sub">${t.complained} complaints</div></div>
          </div>`;
      })}
      <h2>Daily volume, last 30 days</h2>
      <div class="panel">${rows.length ? html`<div class="chart" data-chart="chart-volume" role="img" aria-label="Sent and delivered per day"></div>${jsonIsland('chart-volume', volume)}` : html`<p class="muted">Nothing sent in the last 30 days.</p>`}</div>
      <h2>Bounce and complaint rates per day</h2>
      <div class="panel">${rows.length ? html`<div class="chart" data-chart="chart-rates" role="img" aria-label="Bounce and complaint rates per day"></div>${jsonIsland('chart-rates', rates)}` : html`<p class="muted">No data yet.</p>`}</div>
      ${account && g ? html`
        <h2>Guardrail and quota</h2>
        <div class="grid">
          <div class="stat"><div class="label">Newsletters</div><div class="value">${g.newsletters_paused ? html`<span class="badge bad">paused</span>` : html`<span class="badge ok">sending</span>`}</div>
            <div class="sub">${g.newsletters_paused ? html`${g.reason} since ${when(g.paused_at)}; resume with <code>send-engine tenant resume --tenant ${tenantId}</code>` : `pauses above ${g.limits.complaint_rate_percent}% complaints or ${g.limits.hard_bounce_rate_percent}% hard bounces`}</div></div>
          <div class="stat"><div class="label">Guardrail window (${g.window_days} days)</div><div class="value">${g.sent.toLocaleString('en')} sent</div>
            <div class="sub">complaints ${percent(g.complaint_rate)}, hard bounces ${percent(g.hard_bounce_rate)} (judged from ${g.limits.min_sent} sends)</div></div>
          <div class="stat"><div class="label">Sent in the last 24 h</div><div class="value">${account.send_quota.sent_last_24_hours.toLocaleString('en')}</div>
            <div class="sub">max rate ${account.send_quota.max_send_rate === null ? 'unlimited' : `${account.send_quota.max_send_rate}/s`}; API ${account.plan.api_rate_limit_per_minute}/min</div></div>
          <div class="stat"><div class="label">Transport</div><div class="value">${account.transport.kind}</div></div>
        </div>` : ''}`;
    return sendPage(request, reply, 'overview', 'Overview', body);
  });
}
