import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../../auth/jwt.ts';
import type { Db } from '../../db/pool.ts';
import type { Config } from '../../config.ts';
import { budgetLimit, createRateCounter, pruneRateCounters, type RateBudget, type RateDecision } from '../../observability/rate-limit.ts';
import { errorBody, errorContentType } from '../errors.ts';

export type RateLimitSettings = Config['rateLimit'];
export type { RateBudget };

const PRUNE_EVERY_MS = 60_000;
const MAX_BLOCKED_IPS = 10_000;

function setHeaders(reply: FastifyReply, d: RateDecision) {
  reply.header('X-RateLimit-Limit', d.limit);
  reply.header('X-RateLimit-Remaining', d.remaining);
  reply.header('X-RateLimit-Reset', d.allowed ? d.resetSeconds : d.retryAfterSeconds);
}

function refuse(request: FastifyRequest, reply: FastifyReply, retryAfter: number, message: string) {
  reply
    .code(429)
    .header('Retry-After', retryAfter)
    .type(errorContentType(request))
    .send({ ...errorBody(request, 429, 'rate_limited', message), retry_after: retryAfter });
  return reply;
}

/**
 * Called by the auth plugin (src/http/plugins/auth.ts) on bearer routes only: public routes
 * (health, webhooks, tracking) are never counted. Per tenant and key environment, in
 * PostgreSQL so the limit holds across API processes.
 */
export function createRateLimiter(db: Db, settings: RateLimitSettings) {
  // IPs this process has seen exceed the auth-failure limit. Other processes learn it from the
  // shared counter on their next failure from that IP.
  const blockedIps = new Map<string, number>();
  const counter = createRateCounter(db);
  let nextPrune = 0;

  function prune() {
    if (Date.now() < nextPrune) return;
    nextPrune = Date.now() + PRUNE_EVERY_MS;
    pruneRateCounters(db).catch(() => {});
  }

  return {
    /** Answers 429 (and returns true) when the caller's IP is blocked for repeated auth failures. */
    ipBlocked(request: FastifyRequest, reply: FastifyReply): boolean {
      const until = blockedIps.get(request.ip);
      if (!until) return false;
      if (until <= Date.now()) {
        blockedIps.delete(request.ip);
        return false;
      }
      refuse(request, reply, Math.ceil((until - Date.now()) / 1000), 'too many failed authentication attempts from this address');
      return true;
    },

    /** Counts a failed authentication; answers 429 (and returns true) once the IP is over its limit. */
    async authFailed(request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
      const d = await counter.hit(`authfail:${request.ip}`, settings.authFailuresPerMinute);
      if (d.allowed) return false;
      if (blockedIps.size >= MAX_BLOCKED_IPS) blockedIps.clear();
      blockedIps.set(request.ip, Date.now() + d.retryAfterSeconds * 1000);
      refuse(request, reply, d.retryAfterSeconds, 'too many failed authentication attempts from this address');
      return true;
    },

    /**
     * Spends one request of the tenant's budget for this route (api, or send); sets the headers;
     * answers 429 when none is left.
     */
    async consume(request: FastifyRequest, reply: FastifyReply, principal: Principal): Promise<boolean> {
      prune();
      const environment = principal.environment ?? 'live';
      const budget: RateBudget = request.routeOptions.config?.rateBudget ?? 'api';
      const limit = budgetLimit(settings, budget, environment);
      // The API bucket keeps its old name: counters in flight during an upgrade still count.
      const bucket = budget === 'send' ? `send:${principal.tenantId}:${environment}` : `tenant:${principal.tenantId}:${environment}`;
      const d = await counter.hit(bucket, limit);
      setHeaders(reply, d);
      if (d.allowed) return false;
      refuse(request, reply, d.retryAfterSeconds, budget === 'send'
        ? `send rate limit of ${limit} send requests per minute exceeded`
        : `rate limit of ${limit} requests per minute exceeded`);
      return true;
    },

    /** Writes the requests this process admitted on its own count (src/observability/rate-limit.ts). */
    close: () => counter.flushAll(),
  };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
