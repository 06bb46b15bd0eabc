import { html } from '../html.ts';
import { bare } from '../layout.ts';

export function loginPage(o: { csrf: string; next: string; operatorEnabled: boolean; error?: string; requestId?: string }) {
  return bare('Sign in', html`
    <div class="panel">
      <h1>Sign in to Send Engine</h1>
      ${o.error ? html`<div class="notice bad" role="alert">${o.error}${o.requestId ? html` <span class="muted">(request id <code>${o.requestId}</code>)</span>` : ''}</div>` : ''}
      <form method="post" action="/ui/login">
        <input type="hidden" name="_csrf" value="${o.csrf}">
        <input type="hidden" name="next" value="${o.next}">
        <div class="field">
          <label for="api_key">API key${o.operatorEnabled ? ' or operator token' : ''}</label>
          <input id="api_key" name="api_key" type="password" autocomplete="current-password" required autofocus spellcheck="false" placeholder="se_live_…">
        </div>
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">A key shows its own tenant and only the pages its scopes allow.
      Create one with <code>npx send-engine key create --tenant ID --scopes reports.view,messages.view</code>${o.operatorEnabled ? '; the operator token (ADMIN_TOKEN) sees every tenant' : ''}.</p>
    </div>`);
}
