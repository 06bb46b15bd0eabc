import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiKeyError, createApiKey, listApiKeys, revokeApiKey, rotateApiKey, ROTATION_GRACE_HOURS, type IssuedKey } from '../../auth/api-keys.ts';
import { SCOPES, type Scope } from '../../auth/scopes.ts';
import { DomainError, invalid } from '../../errors.ts';
import { html } from '../../ui/html.ts';
import { csrfField, statusBadge, when } from '../../ui/layout.ts';
import { flashOf, flashQuery, pageRoute, redirectWith, sendPage, uuidParam, type UiContext } from './ui-page.ts';

const csrf = { _csrf: { type: 'string', maxLength: 512 } } as const;
const notFound = (err: unknown) => Promise.reject(err instanceof ApiKeyError ? new DomainError('not_found', 'not_found', err.message) : err);

function secretShown(request: FastifyRequest, k: IssuedKey, note: string) {
  return html`<div class="notice ok" role="status"><p>${note} Its secret is shown <strong>only this once</strong>: copy it now.</p>
      <p class="secret"><code id="key-secret">${k.secret}</code> <button type="button" class="secondary" data-copy="key-secret">Copy</button></p>
      <p class="muted">Key <span class="mono">${k.key_id}</span> (${k.environment}); scopes: ${k.scopes.join(', ')}</p></div>
    <p><a href="/ui/keys">Back to API keys</a></p>`;
}

export function uiKeyRoutes(app: FastifyInstance, ctx: UiContext) {
  app.get<{ Querystring: { notice?: string; kind?: string } }>('/ui/keys', pageRoute('keys', { querystring: { type: 'object', properties: flashQuery } }), async (request, reply) => {
    const { principal } = request.viewer;
    const keys = await listApiKeys(ctx.db, principal.tenantId);
    // A key may hand out only what it holds itself.
    const grantable = (Object.keys(SCOPES) as Scope[]).filter((s) => principal.scopes.has(s));
    const state = (k: (typeof keys)[number]) => (k.revoked_at ? 'revoked' : k.expires_at && Date.parse(k.expires_at) <= Date.now() ? 'expired' : k.expires_at ? 'rotating' : 'active');
    const body = html`
      ${keys.length ? html`<div class="table-wrap"><table>
        <thead><tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Scopes</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Actions</th></tr></thead>
        <tbody>${keys.map((k) => html`<tr data-key="${k.id}"><td>${k.name}${k.environment === 'test' ? html` <span class="badge warn">test</span>` : ''}</td><td class="mono">${k.prefix}…</td>
          <td>${k.scopes.join(', ')}</td><td>${statusBadge(state(k))}${k.expires_at && !k.revoked_at ? html`<div class="muted">until ${when(k.expires_at)}</div>` : ''}</td><td>${when(k.created_at)}</td>
          <td>${state(k) === 'active' || state(k) === 'rotating' ? html`<div class="actions">
            ${state(k) === 'active' ? html`<form method="post" action="/ui/keys/${k.id}/rotate" data-confirm="Rotate ${k.name}? The old secret keeps working for ${ROTATION_GRACE_HOURS} h.">${csrfField(request.viewer)}<button type="submit" class="secondary" aria-label="Rotate key ${k.name} ${k.prefix}">Rotate</button></form>` : ''}
            <form method="post" action="/ui/keys/${k.id}/revoke" data-confirm="Revoke ${k.name} now? Requests with it fail at once.">${csrfField(request.viewer)}<button type="submit" class="danger" aria-label="Revoke key ${k.name} ${k.prefix}">Revoke</button></form></div>` : ''}</td></tr>`)}</tbody>
        </table></div>` : html`<div class="panel"><p>No API keys yet.</p></div>`}
      <h2>Create a key</h2>
      <form class="panel" method="post" action="/ui/keys">
        ${csrfField(request.viewer)}
        <div class="field"><label for="key-name">Name</label><input id="key-name" name="name" required maxlength="100" placeholder="reporting"></div>
        <fieldset><legend>Scopes</legend>${grantable.map((s) => html`<label title="${SCOPES[s]}"><input type="checkbox" name="scopes" value="${s}"> ${s}</label>`)}</fieldset>
        <p><label><input type="checkbox" name="environment" value="test"> Test key (lower rate limit)</label></p>
        <button type="submit">Create key</button>
      </form>`;
    return sendPage(request, reply, 'keys', 'API keys', body, flashOf(request.query));
  });

  app.post<{ Body: { name: string; scopes?: string | string[]; environment?: string } }>(
    '/ui/keys',
    pageRoute('keys', {
      body: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 100 },
          scopes: { type: ['string', 'array'], maxItems: 64, items: { type: 'string', maxLength: 64 } },
          environment: { type: 'string', enum: ['test'] },
          ...csrf,
        },
      },
    }),
    async (request, reply) => {
      const { principal } = request.viewer;
      const scopes = [...new Set([request.body.scopes ?? []].flat())];
      if (!scopes.length) throw invalid('choose at least one scope');
      const unknown = scopes.filter((s) => !(s in SCOPES));
      if (unknown.length) throw invalid(`unknown scope(s): ${unknown.join(', ')}`);
      const beyond = scopes.filter((s) => !principal.scopes.has(s));
      if (beyond.length) throw new DomainError('forbidden', 'permission_denied', `a key cannot grant scopes it does not hold: ${beyond.join(', ')}`);
      const created = await createApiKey(ctx.db, principal.tenantId, scopes as Scope[], { environment: request.body.environment === 'test' ? 'test' : 'live', name: request.body.name }).catch(notFound);
      request.log.info({ key_id: created.key_id }, 'API key created from the dashboard');
      return sendPage(request, reply, 'keys', 'Key created', secretShown(request, created, `Key “${request.body.name}” created.`));
    },
  );

  app.post<{ Params: { id: string } }>('/ui/keys/:id/rotate', pageRoute('keys', { params: uuidParam }), async (request, reply) => {
    const rotated = await rotateApiKey(ctx.db, request.params.id, request.viewer.principal.tenantId).catch(notFound);
    request.log.info({ key_id: rotated.key_id, rotated_from: request.params.id }, 'API key rotated from the dashboard');
    return sendPage(request, reply, 'keys', 'Key rotated', secretShown(request, rotated, `New secret issued; the previous one works until ${rotated.old_key_expires_at}.`));
  });

  app.post<{ Params: { id: string } }>('/ui/keys/:id/revoke', pageRoute('keys', { params: uuidParam }), async (request, reply) => {
    await revokeApiKey(ctx.db, request.params.id, request.viewer.principal.tenantId).catch(notFound);
    request.log.info({ key_id: request.params.id }, 'API key revoked from the dashboard');
    return redirectWith(reply, '/ui/keys', 'Key revoked.');
  });
}
