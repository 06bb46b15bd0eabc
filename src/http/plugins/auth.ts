import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { createApiKeyVerifier, isApiKeyToken } from '../../auth/api-keys.ts';
import { createTokenVerifier, InvalidTokenError, type JwtSettings, type Principal } from '../../auth/jwt.ts';
import type { Scope } from '../../auth/scopes.ts';
import type { Db } from '../../db/pool.ts';
import { tenantExists } from '../../tenants/tenants.ts';
import { forbidden, HttpError, unauthorized, unprocessable } from '../errors.ts';
import { createRateLimiter, type RateBudget, type RateLimitSettings } from './rate-limit.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes that name a scope require a bearer token carrying it; routes without are public. */
    scope?: Scope;
    /** Any valid credential, no particular scope (GET /v1/_scopes). */
    authenticated?: boolean;
    /**
     * Where the credential comes from on routes that speak another provider's API (src/compat):
     * a header carrying the bare key (`api-key` for Brevo, `x-postmark-server-token` for Postmark).
     * Default: `Authorization: Bearer <token>`.
     */
    credentialHeader?: string;
    /** The rate budget the route spends (src/http/plugins/rate-limit.ts); `api` unless said. */
    rateBudget?: RateBudget;
  }
  interface FastifyRequest {
    principal: Principal;
  }
}

const TENANT_CACHE_MS = 60_000;

/** A header holding the bare key, shaped like the Bearer match ([1] is the token). */
function bareCredential(value: string | string[] | undefined): [string, string] | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9._~+/-]+=*$/.test(value) ? [value, value] : undefined;
}

export const authPlugin = fp(async (app: FastifyInstance, opts: { jwt: JwtSettings; db: Db; authCacheSeconds?: number; rateLimit?: RateLimitSettings }) => {
  const verifyJwt = createTokenVerifier(opts.jwt, opts.authCacheSeconds);
  const verifyKey = createApiKeyVerifier(opts.db, opts.authCacheSeconds);
  const limiter = opts.rateLimit ? createRateLimiter(opts.db, opts.rateLimit) : undefined;
  if (limiter) app.addHook('onClose', () => limiter.close());
  // Bearer tokens shaped like our API keys are looked up by hash; everything else is a JWT.
  const verify = async (token: string) => {
    if (!isApiKeyToken(token)) return verifyJwt(token);
    const principal = await verifyKey(token);
    if (!principal) throw new InvalidTokenError('invalid API key');
    return principal;
  };
  // Known tenants only: a miss is looked up again next time, so a new tenant works at once.
  const knownTenants = new Map<string, number>();

  async function requireTenant(tenantId: string) {
    const until = knownTenants.get(tenantId);
    if (until && until > Date.now()) return;
    if (!(await tenantExists(opts.db, tenantId))) throw unprocessable(`tenant ${tenantId} not found`, 'unknown_tenant');
    knownTenants.set(tenantId, Date.now() + TENANT_CACHE_MS);
  }

  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const scope = request.routeOptions.config?.scope;
    if (!scope && !request.routeOptions.config?.authenticated) return;
    if (limiter?.ipBlocked(request, reply)) return reply;
    const credentialHeader = request.routeOptions.config?.credentialHeader;
    const match = credentialHeader ? bareCredential(request.headers[credentialHeader]) : request.headers.authorization?.match(/^Bearer ([A-Za-z0-9._~+/-]+=*)$/);
    let failure = match ? undefined : credentialHeader ? `missing or malformed ${credentialHeader} header` : 'missing or malformed Authorization: Bearer header';
    if (match) {
      try {
        request.principal = await verify(match[1]);
      } catch (err) {
        if (!(err instanceof InvalidTokenError)) throw err;
        failure = err.message;
      }
    }
    if (failure) {
      // Repeated failures from one address turn into 429s (credential stuffing, scanners).
      if (limiter && (await limiter.authFailed(request, reply))) return reply;
      throw unauthorized(failure);
    }
    if (limiter && (await limiter.consume(request, reply, request.principal))) return reply;
    if (scope && !request.principal.scopes.has(scope)) throw new HttpError(403, 'permission_denied', `missing scope: ${scope}`);
    await requireTenant(request.principal.tenantId);
  });
});

/** A body may name a tenant; it must be the credential's own. */
export function assertActsFor(request: FastifyRequest, tenantId: string | undefined) {
  if (tenantId !== undefined && tenantId.toLowerCase() !== request.principal.tenantId) {
    throw forbidden(`credential may not act for tenant ${tenantId}`);
  }
}
