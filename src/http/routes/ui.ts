import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createApiKeyVerifier, isApiKeyToken, principalOfKey } from '../../auth/api-keys.ts';
import type { Principal } from '../../auth/jwt.ts';
import { SCOPES, type Scope } from '../../auth/scopes.ts';
import { dnsChecker } from '../../domains/dns-check.ts';
import { hitRateLimit } from '../../observability/rate-limit.ts';
import { listTenants } from '../../tenants/tenants.ts';
import { dashboardAssets } from '../../ui/assets.ts';
import { html } from '../../ui/html.ts';
import { bare, layout, type Viewer } from '../../ui/layout.ts';
import { PAGES } from '../../ui/pages.ts';
import { isOperatorToken, readSession, SESSION_COOKIE, sessionKey, signSession, type Session } from '../../ui/session.ts';
import { loginPage } from '../../ui/views/login.ts';
import type { AppDeps } from '../app.ts';
import type { TemplateRenderer } from '../../templates/templates.ts';
import { clientError, HttpError } from '../errors.ts';
import type { UiContext } from './ui-page.ts';
import { uiDomainRoutes } from './ui-domains.ts';
import { uiJobRoutes } from './ui-jobs.ts';
import { uiKeyRoutes } from './ui-keys.ts';
import { uiListRoutes } from './ui-lists.ts';
import { uiMessageRoutes } from './ui-messages.ts';
import { uiOverviewRoutes } from './ui-overview.ts';
import { uiSuppressionRoutes } from './ui-suppressions.ts';
import { uiWebhookRoutes } from './ui-webhooks.ts';
import { uiCampaignRoutes } from './ui-campaigns.ts';
import { uiContactRoutes } from './ui-contacts.ts';
import { uiTemplateRoutes } from './ui-templates.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A dashboard page: a session is required, and `scope` when set (null: any signed-in viewer). */
    ui?: { scope: Scope | null };
  }
  interface FastifyRequest {
    viewer: Viewer;
  }
}

const ALL_SCOPES = new Set(Object.keys(SCOPES));

const SECURITY_HEADERS = {
  'Cache-Control': 'no-store',
  'Content-Security-Policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
};

/** An error as a page that names the request (the id support asks for), never a stack. */
function errorPage(err: Error, request: FastifyRequest, reply: FastifyReply) {
  const known = clientError(err);
  const status = known?.status ?? 500;
  if (!known) request.log.error({ err }, 'unhandled error');
  const message = known?.message ?? 'internal error';
  const hint = status === 401 ? html`<p><a href="/ui/login">Sign in</a></p>` : status === 403 ? html`<p>Your key does not carry the scope this needs. <a href="/">Back to the overview</a></p>` : html`<p><a href="/">Back to the overview</a></p>`;
  return reply
    .code(status)
    .headers(known?.headers ?? {})
    .type('text/html; charset=utf-8')
    .send(bare(`${status} error`, html`<h1>${status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'Something went wrong'}</h1>
      <div class="notice bad" role="alert"><p>${message}</p><p class="muted">Error <code>${known?.code ?? 'internal_error'}</code>, request id <code>${request.id}</code></p></div>${hint}`).value);
}

export async function uiRoutes(app: FastifyInstance, deps: AppDeps & { renderer: TemplateRenderer }) {
  const { db, config } = deps;
  const key = sessionKey(config);
  const verifyKey = createApiKeyVerifier(db, config.authCacheSeconds);
  const ctx: UiContext = {
    ...deps,
    domains: { settings: config.domains, secretsKey: config.secretsKey },
    checker: dnsChecker(config.domains.dnsServers),
  };
  const cookieOptions = { path: '/', httpOnly: true, sameSite: 'lax', secure: 'auto' } as const;

  // Encapsulated: form bodies, cookies and HTML errors are the dashboard's only, never the API's.
  await app.register(async (ui) => {
    await ui.register(cookie);
    await ui.register(formbody, { bodyLimit: 64 * 1024 });
    await ui.register(csrf, { sessionPlugin: '@fastify/cookie', cookieOpts: cookieOptions });
    ui.setErrorHandler(errorPage);
    ui.decorateRequest('viewer', null as unknown as Viewer);

    const setSession = (reply: FastifyReply, session: Omit<Session, 'exp'>) =>
      reply.setCookie(SESSION_COOKIE, signSession(key, { ...session, exp: Math.floor(Date.now() / 1000) + config.ui.sessionHours * 3600 }), {
        ...cookieOptions, maxAge: config.ui.sessionHours * 3600,
      });

    /** The session's principal: a live key's own, or the operator acting for the chosen tenant. */
    async function principalOf(session: Session | null, tenants: () => Promise<Array<{ id: string; name: string }>>): Promise<Principal | null> {
      if (session?.kind === 'key' && session.keyId) return principalOfKey(db, session.keyId);
      if (session?.kind !== 'operator' || !config.adminToken) return null;
      const all = await tenants();
      const tenant = all.find((t) => t.id === session.tenantId) ?? all[0];
      return { tenantId: tenant?.id ?? '', scopes: ALL_SCOPES, subject: 'operator:dashboard' };
    }

    ui.addHook('onRequest', async (request, reply) => {
      reply.headers(SECURITY_HEADERS);
      const page = request.routeOptions.config?.ui;
      if (!page) return;
      const session = readSession(key, request.cookies[SESSION_COOKIE]);
      let tenants: Array<{ id: string; name: string }> | undefined;
      const loadTenants = async () => (tenants ??= (await listTenants(db, { limit: 500 })).data.map((t) => ({ id: t.id, name: t.name })));
      const principal = await principalOf(session, loadTenants);
      if (!principal) {
        if (request.method === 'GET') return reply.redirect(`/ui/login?next=${encodeURIComponent(request.url)}`, 303);
        throw new HttpError(401, 'unauthenticated', 'your session has ended: sign in again');
      }
      if (page.scope && !principal.scopes.has(page.scope)) throw new HttpError(403, 'permission_denied', `this page needs the scope ${page.scope}`);
      const operator = session!.kind === 'operator';
      request.viewer = {
        principal,
        operator,
        label: operator ? 'operator' : `${principal.keyPrefix}…`,
        tenantName: operator ? (tenants?.find((t) => t.id === principal.tenantId)?.name ?? null) : null,
        tenants: tenants ?? [],
        csrf: reply.generateCsrf(),
      };
      if (!principal.tenantId && request.url !== '/ui/logout') {
        return reply.type('text/html; charset=utf-8').send(
          layout(request.viewer, null, 'No tenants yet', html`<div class="panel"><p>There is no tenant to look at yet. Create one:</p>
            <pre><code>npx send-engine tenant create --name Acme --json</code></pre><p>then reload this page.</p></div>`).value,
        );
      }
    });
    // Every form, sign-in included, carries the token of the _csrf cookie (double submit, signed).
    ui.addHook('preHandler', (request, reply, done) => (request.method === 'POST' ? ui.csrfProtection(request, reply, done) : done()));

    ui.get<{ Params: { name: string } }>(
      '/ui/assets/:name',
      { schema: { hide: true, params: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 64 } } } } },
      async (request, reply) => {
        const asset = dashboardAssets()[request.params.name];
        if (!asset) throw new HttpError(404, 'not_found', `no asset ${request.params.name}`);
        reply.header('Cache-Control', 'public, max-age=3600').header('ETag', asset.etag);
        if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
        return reply.type(asset.type).send(asset.body);
      },
    );

    const nextParam = { type: 'string', maxLength: 2000 } as const;
    /** Only a path of ours: never an open redirect. */
    const safeNext = (next: string | undefined) => (next && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) && !next.startsWith('/ui/login') ? next : '/');

    ui.get<{ Querystring: { next?: string } }>(
      '/ui/login',
      { schema: { hide: true, querystring: { type: 'object', properties: { next: nextParam } } } },
      async (request, reply) =>
        reply.type('text/html; charset=utf-8').send(loginPage({ csrf: reply.generateCsrf(), next: safeNext(request.query.next), operatorEnabled: !!config.adminToken }).value),
    );

    ui.post<{ Body: { api_key?: string; next?: string } }>(
      '/ui/login',
      {
        schema: {
          hide: true,
          body: { type: 'object', properties: { api_key: { type: 'string', maxLength: 512 }, next: nextParam, _csrf: { type: 'string', maxLength: 512 } } },
        },
      },
      async (request, reply) => {
        const given = (request.body?.api_key ?? '').trim();
        const next = safeNext(request.body?.next);
        let session: Omit<Session, 'exp'> | undefined;
        let scopes: Set<string> = ALL_SCOPES;
        if (given && isOperatorToken(config, given)) session = { kind: 'operator', tenantId: null };
        else if (isApiKeyToken(given)) {
          const principal = await verifyKey(given);
          if (principal) session = { kind: 'key', keyId: principal.keyId, tenantId: principal.tenantId };
          if (principal) scopes = principal.scopes;
        }
        if (!session) {
          // The API's auth-failure budget per address: a guessing loop here is refused like one there.
          const [d] = await hitRateLimit(db, `authfail:${request.ip}`, config.rateLimit.authFailuresPerMinute);
          if (!d.allowed) throw new HttpError(429, 'rate_limited', 'too many failed sign-ins from this address: wait a minute', { 'Retry-After': String(d.retryAfterSeconds) });
          request.log.info('dashboard sign-in refused');
          return reply.code(401).type('text/html; charset=utf-8').send(
            loginPage({ csrf: reply.generateCsrf(), next, operatorEnabled: !!config.adminToken, error: 'That key is not valid (unknown, revoked or expired). Paste an API key (se_live_… or se_test_…) or the operator token.', requestId: request.id }).value,
          );
        }
        setSession(reply, session);
        request.log.info({ kind: session.kind, key_id: session.keyId }, 'dashboard sign-in');
        // A key without the overview's scope lands on the first page it may open.
        const landing = next === '/' ? (Object.values(PAGES).find((p) => scopes.has(p.scope))?.path ?? '/') : next;
        return reply.redirect(landing, 303);
      },
    );

    ui.post('/ui/logout', { config: { ui: { scope: null } }, schema: { hide: true } }, async (_request, reply) =>
      reply.clearCookie(SESSION_COOKIE, { path: '/' }).clearCookie('_csrf', { path: '/' }).redirect('/ui/login', 303),
    );

    ui.post<{ Body: { tenant_id: string } }>(
      '/ui/tenant',
      {
        config: { ui: { scope: null } },
        schema: { hide: true, body: { type: 'object', required: ['tenant_id'], properties: { tenant_id: { type: 'string', format: 'uuid' }, _csrf: { type: 'string', maxLength: 512 } } } },
      },
      async (request, reply) => {
        if (!request.viewer.operator) throw new HttpError(403, 'permission_denied', 'only the operator switches tenants');
        const tenant = request.viewer.tenants.find((t) => t.id === request.body.tenant_id.toLowerCase());
        if (!tenant) throw new HttpError(404, 'not_found', `tenant ${request.body.tenant_id} not found`);
        setSession(reply, { kind: 'operator', tenantId: tenant.id });
        return reply.redirect('/', 303);
      },
    );

    for (const pageRoutes of [uiOverviewRoutes, uiJobRoutes, uiMessageRoutes, uiCampaignRoutes, uiTemplateRoutes, uiListRoutes, uiContactRoutes, uiDomainRoutes, uiSuppressionRoutes, uiWebhookRoutes, uiKeyRoutes]) {
      pageRoutes(ui, ctx);
    }
  });
}
