import { createRemoteJWKSet, errors, jwtVerify, SignJWT, type JWTVerifyGetKey } from 'jose';
import { CredentialCache, DEFAULT_AUTH_CACHE_SECONDS } from './credential-cache.ts';
import type { Scope } from './scopes.ts';

export interface Principal {
  tenantId: string;
  scopes: Set<string>;
  subject?: string;
  /** Set when the credential is an API key (src/auth/api-keys.ts); JWTs count as live. */
  keyId?: string;
  keyPrefix?: string;
  environment?: 'live' | 'test';
}

export interface JwtSettings {
  secret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
}

export class InvalidTokenError extends Error {}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Verifies bearer tokens. The algorithm is pinned by the key type: HS256 for a shared secret,
 * RS256/ES256 for a JWKS; `alg: none` and everything else is refused by jose. A verified token is
 * remembered (CredentialCache) until its `exp` and at most `cacheSeconds`; refusals are not.
 */
export function createTokenVerifier(settings: JwtSettings, cacheSeconds = DEFAULT_AUTH_CACHE_SECONDS): (token: string) => Promise<Principal> {
  const jwks: JWTVerifyGetKey | undefined = settings.jwksUrl ? createRemoteJWKSet(new URL(settings.jwksUrl)) : undefined;
  const secret = settings.secret ? new TextEncoder().encode(settings.secret) : undefined;
  if (!jwks && !secret) throw new Error('no JWT key configured');
  const options = {
    algorithms: jwks ? ['RS256', 'ES256'] : ['HS256'],
    issuer: settings.issuer,
    audience: settings.audience,
    requiredClaims: ['exp'],
  };
  const cache = new CredentialCache<Principal>(cacheSeconds * 1000);
  return async (token) => {
    const key = CredentialCache.key(token);
    const known = cache.get(key);
    if (known) return known;
    try {
      const { payload } = jwks ? await jwtVerify(token, jwks, options) : await jwtVerify(token, secret!, options);
      const tenantId = payload.tenant_id;
      if (typeof tenantId !== 'string' || !UUID.test(tenantId)) throw new InvalidTokenError('token has no valid tenant_id claim');
      const scope = typeof payload.scope === 'string' ? payload.scope : '';
      const principal = { tenantId: tenantId.toLowerCase(), scopes: new Set(scope.split(' ').filter(Boolean)), subject: payload.sub };
      // `exp` is required (requiredClaims): the cached token expires when the token does.
      cache.set(key, principal, payload.exp! * 1000);
      return principal;
    } catch (err) {
      if (err instanceof InvalidTokenError) throw err;
      if (err instanceof errors.JWTExpired) throw new InvalidTokenError('token expired');
      if (err instanceof errors.JOSEError) throw new InvalidTokenError(`invalid token: ${err.code}`);
      throw new InvalidTokenError('invalid token');
    }
  };
}

export interface IssueOptions {
  tenantId: string;
  scopes: readonly Scope[];
  ttl: string;
  issuer?: string;
  audience?: string;
}

/** Issues an HS256 token with the tenant in `tenant_id` and space-separated `scope` (RFC 8693 style). */
export async function issueToken(secret: string, options: IssueOptions): Promise<string> {
  let jwt = new SignJWT({ tenant_id: options.tenantId, scope: options.scopes.join(' ') })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(`tenant:${options.tenantId}`)
    .setIssuedAt()
    .setExpirationTime(options.ttl);
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
