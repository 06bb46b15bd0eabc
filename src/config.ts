import { isIP } from 'node:net';
import path from 'node:path';
import { channelSettings, ChannelConfigError, type ChannelSettings } from './channels/config.ts';
import { DEFAULT_AUTH_CACHE_SECONDS } from './auth/credential-cache.ts';
import { deriveSecretsKey } from './secrets.ts';
import { deriveTrackingSecret, type TrackingSettings } from './tracking/links.ts';

/**
 * The engine's whole configuration, read once from the environment and validated.
 * Every variable is documented in docs/configuration.md and .env.example.
 */
export interface Config {
  port: number;
  host: string;
  logLevel: string;
  /** External PostgreSQL; when absent the embedded server is used. */
  databaseUrl?: string;
  dataDir: string;
  embeddedPgPort: number;
  /** How long the embedded server may take to accept connections (crash recovery included). */
  embeddedPgStartTimeoutSeconds: number;
  /** SIGINT/SIGTERM: how long a graceful stop may take before the process exits non-zero. */
  shutdownTimeoutSeconds: number;
  jwt: {
    secret?: string;
    jwksUrl?: string;
    issuer?: string;
    audience?: string;
  };
  /** How long a verified JWT or API key is trusted without checking it again (src/auth/credential-cache.ts); 0: never. */
  authCacheSeconds: number;
  /** `capture`, `ses` or an `smtp://` / `smtps://` URL. */
  transport: string;
  ses: { region: string; endpoint?: string };
  dkim?: { domainName: string; keySelector: string; privateKey: string };
  dispatch: {
    batchSize: number;
    concurrency: number;
    leaseSeconds: number;
    pollMs: number;
    maxAttempts: number;
    retryBaseMs: number;
    retryMaxMs: number;
  };
  idempotencyTtlHours: number;
  /** List send jobs (src/jobs). */
  jobs: {
    defaultFrom?: string;
    /** Per-tenant send rate (messages/s) when neither the job nor the tenant sets one; undefined: unlimited. */
    defaultRatePerSecond?: number;
    fanoutChunkSize: number;
    /** Render threads of a worker (RENDER_THREADS, src/jobs/render.ts); undefined: defaultRenderThreads() (the cores less one, 1 to 4). */
    renderThreads?: number;
  };
  /** Accepted clock difference for signed Member Center webhooks (X-Timestamp), in seconds. */
  webhookToleranceSeconds: number;
  /** Provider feedback (src/events): webhook authentication, suppression and guardrail rules. */
  events: {
    sesWebhookSecret?: string;
    snsTopicArns: string[];
    softBounceLimit: number;
    softBounceWindowDays: number;
    guardrail: { complaintRatePercent: number; bounceRatePercent: number; minSent: number; windowDays: number };
  };
  /** Signed open/click/unsubscribe links (src/tracking). */
  tracking: TrackingSettings;
  /** Per-tenant API request limits (src/http/plugins/rate-limit.ts), requests per sliding minute. */
  rateLimit: { livePerMinute: number; testPerMinute: number; authFailuresPerMinute: number; sendLivePerMinute: number; sendTestPerMinute: number };
  /**
   * Fastify's trustProxy (TRUST_PROXY): false, true (any peer), or the proxies' addresses and
   * CIDRs. Decides whether X-Forwarded-For chooses request.ip, which the auth-failure limit counts by.
   */
  trustProxy: boolean | string[];
  /** Outbound webhooks (src/webhooks): delivery worker and HTTP client. */
  webhooks: {
    allowPrivate: boolean;
    concurrency: number;
    endpointConcurrency: number;
    batchSize: number;
    leaseSeconds: number;
    pollMs: number;
    timeoutMs: number;
  };
  commit?: string;
  /** AES-256 key for secrets at rest (SECRETS_KEY, else derived from JWT_SECRET or TRACKING_SECRET; embedded mode generates one). */
  secretsKey?: Buffer;
  /** Sending domains (src/domains): DNS checks, the records we ask for, the send-time rule. */
  domains: DomainSettings;
  /** SMS and WhatsApp (src/channels/config.ts). */
  channels: ChannelSettings;
  /**
   * ADMIN_TOKEN, the operator credential: the dashboard's operator sign-in (every tenant), the
   * admin API (/v1/admin/*: 403 admin_disabled when unset) and operator-only routes (src/http/operator.ts).
   */
  adminToken?: string;
  /** The dashboard (src/ui): session signing and lifetime. */
  ui: UiSettings;
  /** Prometheus /metrics (src/metrics): a bearer token on the API port, and/or a port of its own. */
  metrics: { token?: string; port?: number; host: string };
}

export interface UiSettings {
  /** SESSION_SECRET signs session cookies; unset: derived from the secrets key (see ui/session.ts). */
  sessionSecret?: string;
  sessionHours: number;
}

export interface DomainSettings {
  /** Resolvers for verification, "host" or "host:port"; empty: the system's. */
  dnsServers: string[];
  /** Refuse sends from unverified domains when mail leaves through smtp or ses. */
  requireVerified: boolean;
  returnPathSubdomain: string;
  returnPathMx: string;
  /** The SPF mechanisms asked for on the return-path host, e.g. ["include:amazonses.com"]. */
  spfMechanisms: string[];
  trackingSubdomain: string;
  trackingCnameTarget?: string;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return value;
}

function num(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new ConfigError(`${name} must be a number >= 0, got "${raw}"`);
  return value;
}

function str(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

/**
 * PUBLIC_BASE_URL is where recipients reach this engine (links in mail). TRACKING_SECRET signs
 * them; without it the key is derived from JWT_SECRET (and in embedded mode from the generated
 * one, see runtime.ts), which keeps links valid across restarts but not across a JWT_SECRET change.
 */
function trackingSettings(env: Env): TrackingSettings {
  const raw = str(env, 'PUBLIC_BASE_URL') ?? `http://127.0.0.1:${int(env, 'PORT', 3000)}`;
  const shown = raw.replace(/\/\/.*@/, '//***@');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`PUBLIC_BASE_URL must be an absolute http(s) URL, got "${shown}"`);
  }
  if (!['http:', 'https:'].includes(url.protocol) || url.search || url.hash || url.username || url.password) {
    throw new ConfigError(`PUBLIC_BASE_URL must be an http(s) URL without query, fragment or credentials, got "${shown}"`);
  }
  const secret = str(env, 'TRACKING_SECRET');
  if (secret !== undefined && secret.length < 32) throw new ConfigError('TRACKING_SECRET must be at least 32 characters');
  const jwtSecret = str(env, 'JWT_SECRET');
  return {
    baseUrl: url.toString().replace(/\/+$/, ''),
    // Empty when there is nothing to derive from (JWKS only): withEmbeddedDefaults (runtime.ts)
    // derives it in embedded mode and refuses DATABASE_URL without one.
    secret: secret ?? (jwtSecret ? deriveTrackingSecret(jwtSecret) : ''),
  };
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function hostname(env: Env, name: string, fallback: string): string {
  const value = (str(env, name) ?? fallback).replace(/\.$/, '').toLowerCase();
  if (!HOSTNAME.test(value)) throw new ConfigError(`${name} must be a host name, got "${value}"`);
  return value;
}

/**
 * The records a domain is asked to publish. With SES the return path is SES's custom MAIL FROM
 * (its feedback MX and SPF include); otherwise our own host, named by PUBLIC_BASE_URL.
 */
function domainSettings(env: Env, transport: string, sesRegion: string, publicHost: string): DomainSettings {
  const ses = transport === 'ses';
  const dnsServers = (str(env, 'DNS_SERVERS') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const server of dnsServers) {
    if (!/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:]+\])(:\d{1,5})?$|^[0-9a-f:]+$/i.test(server)) {
      throw new ConfigError(`DNS_SERVERS must list IP addresses (with an optional :port), got "${server}"`);
    }
  }
  const include = str(env, 'SPF_INCLUDE') ?? (ses ? 'amazonses.com' : undefined);
  const ip4 = (str(env, 'SPF_IP4') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const ip of ip4) {
    if (!/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(ip)) throw new ConfigError(`SPF_IP4 must list IPv4 addresses or ranges, got "${ip}"`);
  }
  const spfMechanisms = [...(include ? [`include:${include}`] : []), ...ip4.map((ip) => `ip4:${ip}`)];
  const target = str(env, 'TRACKING_CNAME_TARGET');
  const fallbackMx = ses ? `feedback-smtp.${sesRegion}.amazonses.com` : publicHost;
  return {
    dnsServers,
    requireVerified: !['false', '0', 'no', 'off'].includes((str(env, 'REQUIRE_VERIFIED_DOMAIN') ?? 'true').toLowerCase()),
    returnPathSubdomain: hostname(env, 'RETURN_PATH_SUBDOMAIN', 'bounces'),
    returnPathMx: hostname(env, 'RETURN_PATH_MX', fallbackMx),
    // Without an include or addresses, "mx": the return-path host's MX (our host) may send.
    spfMechanisms: spfMechanisms.length ? spfMechanisms : ['mx'],
    trackingSubdomain: hostname(env, 'TRACKING_SUBDOMAIN', 'track'),
    trackingCnameTarget: target === undefined ? undefined : hostname(env, 'TRACKING_CNAME_TARGET', target),
  };
}

function secretsKey(env: Env): Buffer | undefined {
  const raw = str(env, 'SECRETS_KEY');
  if (raw === undefined) {
    // Any server secret will do as HKDF input; changing it makes stored DKIM keys unreadable.
    const base = str(env, 'JWT_SECRET') ?? str(env, 'TRACKING_SECRET');
    return base ? deriveSecretsKey(base) : undefined;
  }
  const key = Buffer.from(raw, 'base64');
  if (key.length !== 32) throw new ConfigError('SECRETS_KEY must be 32 bytes, base64-encoded (openssl rand -base64 32)');
  return key;
}

/** proxy-addr's names for address ranges, accepted beside addresses and CIDRs. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function trustProxy(env: Env): boolean | string[] {
  const raw = str(env, 'TRUST_PROXY')?.trim();
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  const entries = raw.split(',').map((e) => e.trim()).filter(Boolean);
  for (const entry of entries) {
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address);
    const validBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (!PROXY_RANGE_NAMES.has(entry) && (!family || !validBits || extra !== undefined)) {
      throw new ConfigError(`TRUST_PROXY must be "false", "true" or a comma-separated list of proxy addresses or CIDRs, got "${entry}"`);
    }
  }
  return entries.length ? entries : false;
}

function channelsOrConfigError(env: Env): ChannelSettings {
  try {
    return channelSettings(env);
  } catch (err) {
    if (err instanceof ChannelConfigError) throw new ConfigError(err.message);
    throw err;
  }
}

export function loadConfig(env: Env = process.env): Config {
  const transport = str(env, 'SEND_ENGINE_TRANSPORT') ?? 'capture';
  if (!['capture', 'ses'].includes(transport) && !/^smtps?:\/\//.test(transport)) {
    throw new ConfigError(
      `SEND_ENGINE_TRANSPORT must be "capture", "ses" or an smtp:// URL, got "${transport.replace(/\/\/.*@/, '//***@')}"`,
    );
  }
  const dkimKey = str(env, 'DKIM_PRIVATE_KEY');
  const dkimDomain = str(env, 'DKIM_DOMAIN');
  if ((dkimKey || dkimDomain) && !(dkimKey && dkimDomain)) {
    throw new ConfigError('DKIM_DOMAIN and DKIM_PRIVATE_KEY must be set together');
  }
  const tracking = trackingSettings(env);
  const sesRegion = str(env, 'SES_REGION') ?? str(env, 'AWS_REGION') ?? 'us-east-1';
  const config: Config = {
    port: int(env, 'PORT', 3000),
    host: str(env, 'HOST') ?? '127.0.0.1',
    logLevel: str(env, 'LOG_LEVEL') ?? 'info',
    databaseUrl: str(env, 'DATABASE_URL'),
    dataDir: path.resolve(str(env, 'SEND_ENGINE_DATA_DIR') ?? '.send-engine'),
    embeddedPgPort: int(env, 'EMBEDDED_PG_PORT', 54329, 1),
    embeddedPgStartTimeoutSeconds: int(env, 'EMBEDDED_PG_START_TIMEOUT_SECONDS', 300, 1),
    shutdownTimeoutSeconds: int(env, 'SHUTDOWN_TIMEOUT_SECONDS', 30, 1),
    jwt: {
      secret: str(env, 'JWT_SECRET'),
      jwksUrl: str(env, 'JWT_JWKS_URL'),
      issuer: str(env, 'JWT_ISSUER'),
      audience: str(env, 'JWT_AUDIENCE'),
    },
    authCacheSeconds: int(env, 'AUTH_CACHE_SECONDS', DEFAULT_AUTH_CACHE_SECONDS),
    transport,
    ses: { region: sesRegion, endpoint: str(env, 'SES_ENDPOINT') },
    dkim:
      dkimKey && dkimDomain
        ? { domainName: dkimDomain, keySelector: str(env, 'DKIM_SELECTOR') ?? 'default', privateKey: dkimKey.replace(/\\n/g, '\n') }
        : undefined,
    dispatch: {
      batchSize: int(env, 'DISPATCH_BATCH_SIZE', 100, 1),
      concurrency: int(env, 'DISPATCH_CONCURRENCY', 10, 1),
      leaseSeconds: int(env, 'DISPATCH_LEASE_SECONDS', 120, 1),
      pollMs: int(env, 'DISPATCH_POLL_MS', 1000, 10),
      maxAttempts: int(env, 'SEND_MAX_ATTEMPTS', 8, 1),
      retryBaseMs: int(env, 'SEND_RETRY_BASE_MS', 2000, 1),
      retryMaxMs: int(env, 'SEND_RETRY_MAX_MS', 15 * 60_000, 1),
    },
    idempotencyTtlHours: int(env, 'IDEMPOTENCY_TTL_HOURS', 24, 1),
    jobs: {
      defaultFrom: str(env, 'DEFAULT_FROM_ADDRESS'),
      defaultRatePerSecond: num(env, 'SEND_RATE_PER_SECOND', 0) || undefined,
      fanoutChunkSize: int(env, 'FANOUT_CHUNK_SIZE', 5000, 1),
      renderThreads: int(env, 'RENDER_THREADS', 0, 1) || undefined,
    },
    webhookToleranceSeconds: int(env, 'WEBHOOK_TOLERANCE_SECONDS', 300, 1),
    events: {
      sesWebhookSecret: str(env, 'SES_WEBHOOK_SECRET'),
      snsTopicArns: (str(env, 'SNS_TOPIC_ARNS') ?? '').split(',').map((a) => a.trim()).filter(Boolean),
      softBounceLimit: int(env, 'SOFT_BOUNCE_LIMIT', 3, 1),
      softBounceWindowDays: int(env, 'SOFT_BOUNCE_WINDOW_DAYS', 7, 1),
      guardrail: {
        complaintRatePercent: num(env, 'GUARDRAIL_COMPLAINT_RATE_PERCENT', 0.3),
        bounceRatePercent: num(env, 'GUARDRAIL_BOUNCE_RATE_PERCENT', 5),
        minSent: int(env, 'GUARDRAIL_MIN_SENT', 500, 1),
        windowDays: int(env, 'GUARDRAIL_WINDOW_DAYS', 7, 1),
      },
    },
    tracking,
    rateLimit: {
      livePerMinute: int(env, 'RATE_LIMIT_LIVE_PER_MINUTE', 600, 1),
      testPerMinute: int(env, 'RATE_LIMIT_TEST_PER_MINUTE', 60, 1),
      authFailuresPerMinute: int(env, 'RATE_LIMIT_AUTH_FAILURES_PER_MINUTE', 20, 1),
      // POST /v1/send-jobs: its own budget, so sending is never capped by the read budget above.
      sendLivePerMinute: int(env, 'SEND_RATE_LIMIT_LIVE_PER_MINUTE', 300_000, 1),
      sendTestPerMinute: int(env, 'SEND_RATE_LIMIT_TEST_PER_MINUTE', 600, 1),
    },
    trustProxy: trustProxy(env),
    webhooks: {
      allowPrivate: str(env, 'WEBHOOK_ALLOW_PRIVATE') === 'true',
      concurrency: int(env, 'WEBHOOK_CONCURRENCY', 64, 1),
      endpointConcurrency: int(env, 'WEBHOOK_ENDPOINT_CONCURRENCY', 16, 1),
      batchSize: int(env, 'WEBHOOK_BATCH_SIZE', 200, 1),
      leaseSeconds: int(env, 'WEBHOOK_LEASE_SECONDS', 120, 20),
      pollMs: int(env, 'WEBHOOK_POLL_MS', 1000, 10),
      timeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 15_000, 100),
    },
    commit: str(env, 'SEND_ENGINE_COMMIT'),
    secretsKey: secretsKey(env),
    domains: domainSettings(env, transport, sesRegion, new URL(tracking.baseUrl).hostname),
    channels: channelsOrConfigError(env),
    adminToken: str(env, 'ADMIN_TOKEN'),
    ui: { sessionSecret: str(env, 'SESSION_SECRET'), sessionHours: int(env, 'SESSION_HOURS', 12, 1) },
    metrics: {
      token: str(env, 'METRICS_TOKEN'),
      port: str(env, 'METRICS_PORT') === undefined ? undefined : int(env, 'METRICS_PORT', 0, 1),
      host: str(env, 'METRICS_HOST') ?? '127.0.0.1',
    },
  };
  for (const [name, value] of [['ADMIN_TOKEN', config.adminToken], ['SESSION_SECRET', config.ui.sessionSecret], ['METRICS_TOKEN', config.metrics.token]] as const) {
    if (value !== undefined && value.length < 32) throw new ConfigError(`${name} must be at least 32 characters (openssl rand -base64 32)`);
  }
  if (config.databaseUrl && !config.jwt.secret && !config.jwt.jwksUrl) {
    throw new ConfigError('With DATABASE_URL set, configure JWT_SECRET or JWT_JWKS_URL (only embedded mode generates a secret)');
  }
  if (config.events.sesWebhookSecret && config.events.sesWebhookSecret.length < 16) {
    throw new ConfigError('SES_WEBHOOK_SECRET must be at least 16 characters');
  }
  if (config.jwt.secret && config.jwt.secret.length < 32) {
    throw new ConfigError('JWT_SECRET must be at least 32 characters');
  }
  return config;
}
