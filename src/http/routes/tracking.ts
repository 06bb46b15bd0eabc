import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { verifyToken, type TokenPayload } from '../../tracking/links.ts';
import { recordEngagement, type EngagementType } from '../../tracking/record.ts';
import { unsubscribeByLink } from '../../tracking/unsubscribe.ts';
import type { AppDeps } from '../app.ts';
import { HttpError } from '../errors.ts';

// A transparent 1x1 GIF89a (43 bytes).
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');

const invalidLink = () => new HttpError(400, 'invalid_token', 'the link is invalid or has been altered');

// Pages are static apart from the request id: nothing from the token or the database is echoed.
const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}
button{font:inherit;padding:.5rem 1.25rem;cursor:pointer}small{color:#777}</style></head><body>${body}</body></html>`;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function invalidPage(request: FastifyRequest, reply: FastifyReply) {
  return reply
    .code(400)
    .headers(PAGE_HEADERS)
    .type('text/html; charset=utf-8')
    .send(page('Invalid link', `<h1>This link is not valid</h1><p>It may have been altered or cut short. Please use the link from the email itself.</p><p><small>Request ${escapeHtml(request.id)}</small></p>`));
}

/** The token after the route's prefix: a wildcard, since tokens exceed find-my-way's 100-character param limit. */
function tokenOf<T extends TokenPayload['type']>(request: FastifyRequest, secret: string, type: T): Extract<TokenPayload, { type: T }> | undefined {
  const raw = (request.params as { '*'?: string })['*'] ?? '';
  const payload = verifyToken(secret, raw);
  return payload?.type === type ? (payload as Extract<TokenPayload, { type: T }>) : undefined;
}

/**
 * Public recipient-facing routes (no bearer token; the signed token is the authority):
 * open pixel, click redirect, and the unsubscribe page with its RFC 8058 one-click POST.
 * Request logging stays at warn: URLs carry tokens, and click tokens carry target URLs.
 */
export async function trackingRoutes(app: FastifyInstance, deps: AppDeps) {
  const { secret } = deps.config.tracking;

  // Whatever a one-click POST carries (List-Unsubscribe=One-Click as a form, multipart, nothing
  // at all) is read, bounded and ignored: the token alone decides. Scoped to these routes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (_request, _body, done) => done(null, undefined));

  async function record(request: FastifyRequest, messageId: string, type: EngagementType, data: Record<string, unknown>) {
    // HEAD is a link checker, not a person. A recording failure never breaks the pixel or the redirect.
    if (request.method === 'HEAD') return;
    const ua = request.headers['user-agent'];
    try {
      await recordEngagement(deps.db, messageId, type, { ...data, user_agent: typeof ua === 'string' ? ua.slice(0, 512) : null });
    } catch (err) {
      request.log.error({ err: (err as Error).message, message_id: messageId, type }, 'recording engagement failed');
    }
  }

  app.get(
    '/t/o/*',
    { logLevel: 'warn', schema: { summary: 'Open-tracking pixel (signed token)', tags: ['tracking'] } },
    async (request, reply) => {
      const p = tokenOf(request, secret, 'o');
      if (!p) throw invalidLink();
      await record(request, p.messageId, 'open', {});
      return reply
        .headers({ 'cache-control': 'no-store, no-cache, must-revalidate, private', pragma: 'no-cache', expires: '0' })
        .type('image/gif')
        .send(PIXEL);
    },
  );

  app.get(
    '/t/c/*',
    { logLevel: 'warn', schema: { summary: 'Click redirect (signed token naming the target)', tags: ['tracking'] } },
    async (request, reply) => {
      // Only a URL we signed is ever a Location: a tampered token never redirects.
      const p = tokenOf(request, secret, 'c');
      if (!p) throw invalidLink();
      await record(request, p.messageId, 'click', { url: p.url });
      return reply.code(302).headers({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', location: p.url }).send();
    },
  );

  app.get(
    '/u/*',
    { logLevel: 'warn', schema: { summary: 'Unsubscribe confirmation page', tags: ['tracking'] } },
    async (request, reply) => {
      if (!tokenOf(request, secret, 'u')) return invalidPage(request, reply);
      // A GET never unsubscribes (mail scanners prefetch links); the form POSTs the one-click body
      // back here, marked as the visible link's confirmation (source "link").
      return reply
        .headers(PAGE_HEADERS)
        .type('text/html; charset=utf-8')
        .send(
          page(
            'Unsubscribe',
            `<h1>Unsubscribe</h1><p>Stop receiving emails from this list?</p><form method="post" action="?source=link"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`,
          ),
        );
    },
  );

  app.post<{ Querystring: { source?: string } }>(
    '/u/*',
    {
      logLevel: 'warn',
      schema: {
        summary: 'RFC 8058 one-click unsubscribe (List-Unsubscribe=One-Click), also the unsubscribe page\'s confirmation',
        tags: ['tracking'],
        querystring: {
          type: 'object',
          properties: { source: { type: 'string', description: '"link" from the unsubscribe page\'s form; anything else is a one-click' } },
        },
      },
    },
    async (request, reply) => {
      const wantsHtml = /text\/html/.test(request.headers.accept ?? '');
      const p = tokenOf(request, secret, 'u');
      if (!p) {
        if (wantsHtml) return invalidPage(request, reply);
        throw invalidLink();
      }
      // Answered 200 whether it changed anything or not (repeats, an unknown member): one-click
      // clients only need to know the request was taken, and nobody learns who is on a list.
      // Only attribution: a forged "link" still unsubscribes only the member the token names.
      await unsubscribeByLink(deps.db, p, request.query.source === 'link' ? 'link' : 'one_click');
      reply.headers(PAGE_HEADERS);
      if (wantsHtml) {
        return reply
          .type('text/html; charset=utf-8')
          .send(page('Unsubscribed', '<h1>You are unsubscribed</h1><p>You will no longer receive emails from this list.</p>'));
      }
      return reply.type('application/json').send({ status: 'unsubscribed' });
    },
  );
}
