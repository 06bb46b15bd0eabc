import type { Principal } from '../auth/jwt.ts';
import { html, raw, type Html } from './html.ts';
import { PAGES, type PageName } from './pages.ts';

/** What every page knows about the person looking at it. */
export interface Viewer {
  principal: Principal;
  operator: boolean;
  /** Names the credential: "operator" or the key's prefix. */
  label: string;
  tenantName: string | null;
  /** The operator's tenant switcher; empty for a key. */
  tenants: Array<{ id: string; name: string }>;
  csrf: string;
}

export interface Notice {
  kind: 'ok' | 'bad' | 'warn';
  text: string;
}

const HEAD = (title: string) => html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowScriptTags": false}'>
<title>${title} · Send Engine</title>
<link rel="stylesheet" href="/ui/assets/uPlot.min.css">
<link rel="stylesheet" href="/ui/assets/app.css">
<script src="/ui/assets/htmx.min.js" defer></script>
<script src="/ui/assets/uPlot.iife.min.js" defer></script>
<script src="/ui/assets/app.js" defer></script>
</head>`;

export function notice(n: Notice | undefined): Html {
  return n ? html`<div class="notice ${n.kind}" role="${n.kind === 'bad' ? 'alert' : 'status'}">${n.text}</div>` : html``;
}

/** The page shell: navigation filtered by scope, the operator's tenant switcher, sign out. */
export function layout(viewer: Viewer, current: PageName | null, title: string, body: Html, flash?: Notice): Html {
  const links = (Object.entries(PAGES) as Array<[PageName, (typeof PAGES)[PageName]]>)
    .filter(([, p]) => viewer.principal.scopes.has(p.scope))
    .map(([name, p]) => html`<a href="${p.path}"${name === current ? raw(' aria-current="page"') : ''}>${p.label}</a>`);
  const switcher = viewer.operator
    ? html`<form method="post" action="/ui/tenant">
        <input type="hidden" name="_csrf" value="${viewer.csrf}">
        <label for="tenant-switch">Tenant</label>
        <select id="tenant-switch" name="tenant_id">
          ${viewer.tenants.map((t) => html`<option value="${t.id}"${t.id === viewer.principal.tenantId ? raw(' selected') : ''}>${t.name}</option>`)}
        </select>
        <button type="submit" class="secondary">Switch</button>
      </form>`
    : html``;
  return html`${HEAD(title)}
<body>
<a class="skip" href="#main">Skip to content</a>
<div class="shell">
  <header class="side">
    <a class="brand" href="/">Send Engine</a>
    <nav aria-label="Dashboard">${links}</nav>
    <div class="who">Signed in as <strong>${viewer.label}</strong>${viewer.tenantName ? html`<br>Tenant: <strong>${viewer.tenantName}</strong>` : ''}</div>
    ${switcher}
    <form method="post" action="/ui/logout">
      <input type="hidden" name="_csrf" value="${viewer.csrf}">
      <button type="submit" class="secondary">Sign out</button>
    </form>
  </header>
  <main id="main" tabindex="-1">
    <h1>${title}</h1>
    ${notice(flash)}
    ${body}
  </main>
</div>
</body>
</html>`;
}

/** Pages outside the shell: sign-in, errors before a session exists. */
export function bare(title: string, body: Html): Html {
  return html`${HEAD(title)}
<body><main id="main" class="login">${body}</main></body>
</html>`;
}

export function statusBadge(status: string): Html {
  const kind = ['verified', 'completed', 'delivered', 'succeeded', 'enabled', 'active', 'sent', 'opened', 'clicked'].includes(status) ? 'ok'
    : ['pending', 'running', 'queued', 'sending', 'receiving', 'delivering', 'temporary_failure'].includes(status) ? 'info'
    : ['failed', 'bounced', 'complained', 'disabled', 'revoked', 'cancelled', 'expired', 'suppressed'].includes(status) ? 'bad' : 'warn';
  return html`<span class="badge ${kind}">${status}</span>`;
}

export const when = (iso: string | null | undefined) => (iso ? html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>` : html`<span class="muted">—</span>`);

export const percent = (n: number) => `${(n * 100).toFixed(2)}%`;

/** The CSRF token field every form carries. */
export const csrfField = (viewer: Viewer) => html`<input type="hidden" name="_csrf" value="${viewer.csrf}">`;
