import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DnsChecker } from '../../domains/dns-check.ts';
import type { DomainContext } from '../../domains/domains.ts';
import type { Scope } from '../../auth/scopes.ts';
import type { TemplateRenderer } from '../../templates/templates.ts';
import type { Html } from '../../ui/html.ts';
import { layout, type Notice } from '../../ui/layout.ts';
import { PAGES, type PageName } from '../../ui/pages.ts';
import type { AppDeps } from '../app.ts';
import { HttpError } from '../errors.ts';

/** What the dashboard's route files share (docs/dashboard.md). */
export interface UiContext extends Omit<AppDeps, 'renderer'> {
  domains: DomainContext;
  checker: DnsChecker;
  /** The API's render threads (previews, template checks): tenant Liquid never runs on the event loop. */
  renderer: TemplateRenderer;
}

/** A page's writes may need more than its view scope (templates.manage, lists.manage): 403 naming it. */
export function requireScope(request: FastifyRequest, scope: Scope, what: string) {
  if (!request.viewer.principal.scopes.has(scope)) throw new HttpError(403, 'permission_denied', `${what} needs the scope ${scope}`);
}

export const canDo = (request: FastifyRequest, scope: Scope) => request.viewer.principal.scopes.has(scope);

export const csrfBody = { _csrf: { type: 'string', maxLength: 512 } } as const;

/** Route options of a page: hidden from /openapi.json (pages, not API), guarded by the page's scope. */
export const pageRoute = <S extends object>(scope: PageName | null, schema: S = {} as S) => ({
  config: { ui: { scope: scope === null ? null : PAGES_SCOPE[scope] } },
  schema: { hide: true, ...schema },
});

const PAGES_SCOPE = Object.fromEntries(Object.entries(PAGES).map(([k, v]) => [k, v.scope])) as Record<PageName, (typeof PAGES)[PageName]['scope']>;

export function sendPage(request: FastifyRequest, reply: FastifyReply, name: PageName | null, title: string, body: Html, flash?: Notice) {
  return reply.type('text/html; charset=utf-8').send(layout(request.viewer, name, title, body, flash).value);
}

/** A fragment for htmx (no shell). */
export const sendFragment = (reply: FastifyReply, body: Html) => reply.type('text/html; charset=utf-8').send(body.value);

/** After a form: back to a page with a notice (POST, redirect, GET). */
export function redirectWith(reply: FastifyReply, path: string, notice: string, kind: Notice['kind'] = 'ok') {
  const url = new URL(path, 'http://x');
  url.searchParams.set('notice', notice);
  url.searchParams.set('kind', kind);
  return reply.redirect(`${url.pathname}${url.search}`, 303);
}

/** The notice a redirect carried, shown as text (escaped like everything else). */
export function flashOf(query: { notice?: string; kind?: string }): Notice | undefined {
  if (!query.notice) return undefined;
  return { kind: query.kind === 'bad' || query.kind === 'warn' ? query.kind : 'ok', text: query.notice.slice(0, 300) };
}

export const flashQuery = { notice: { type: 'string', maxLength: 300 }, kind: { type: 'string', enum: ['ok', 'bad', 'warn'] } } as const;
export const uuidParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', format: 'uuid' } } } as const;
