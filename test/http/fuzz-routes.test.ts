import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import type { RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../src/auth/jwt.ts';
import { SCOPES, type Scope } from '../../src/auth/scopes.ts';
import { buildApp } from '../../src/http/app.ts';
import { signWebhook } from '../../src/index.ts';
import { createWebhookClient } from '../../src/lists/webhook-clients.ts';
import { createLogger } from '../../src/log.ts';
import { startOrchestration, type Orchestration } from '../../src/orchestration/boss.ts';
import { clickUrl, openPixelUrl, unsubscribeUrl } from '../../src/tracking/links.ts';
import { TEST_JWT_SECRET, tenantWithToken, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { seedList } from '../jobs/helpers.ts';

/**
 * Every route the app registers (collected from the app itself, so routes added later are fuzzed
 * without touching this file) gets requests whose path, query and body values are hostile: NUL,
 * lone surrogates, control characters, huge strings, wrong types, impossible dates, `%ff`.
 * Authenticated with every scope, and signed where the route is one of our HMAC webhooks.
 * Never a 5xx; every error body is ours; a 4xx writes nothing.
 */
type Schema = Record<string, any>;
interface Route {
  method: string;
  url: string;
  schema: Schema;
  /** A compat layer's route (src/compat): under /compat/<provider>, or at the root picked by the credential header. */
  layer?: string;
}

// Per route; the route count grows with every layer (set FUZZ_RUNS_PER_ROUTE higher for a deeper run).
const RUNS_PER_ROUTE = Number(process.env.FUZZ_RUNS_PER_ROUTE ?? 15);
const SES_SECRET = 'fuzz-ses-secret-0123456789abcdef';
const CHANNEL_SECRET = 'fuzz-channel-secret-0123456789abcdef';

let database: TestDatabase;
let orchestration: Orchestration;
let baseUrl: string;
let close: () => Promise<void>;
let token: string;
const routes: Route[] = [];
/** Real values a request may carry, by JSON type and property or parameter name: they reach deeper code than random ones. */
const known = new Map<string, fc.Arbitrary<unknown>>();
let signers: Array<{ matches: (url: string) => boolean; headers: (raw: string) => Record<string, string> }>;

beforeAll(async () => {
  database = await createTestDatabase();
  const config = testConfig(database.url, {
    DEFAULT_FROM_ADDRESS: 'news@acme.test', SES_WEBHOOK_SECRET: SES_SECRET, RATE_LIMIT_LIVE_PER_MINUTE: '1000000',
    TRACKING_SECRET: 'fuzz-tracking-secret-0123456789abcdef',
    // SMS and WhatsApp routes past their "not configured" answers (nothing listens on port 1).
    SMS_PROVIDER_URL: 'smpp://fuzz:pw@127.0.0.1:1', SMS_WEBHOOK_TOKEN: CHANNEL_SECRET, SMS_PROVIDER_WEBHOOK_SECRET: CHANNEL_SECRET,
    WHATSAPP_VERIFY_TOKEN: CHANNEL_SECRET, WHATSAPP_APP_SECRET: CHANNEL_SECRET, WHATSAPP_PHONE_NUMBER_ID: '100200300', WHATSAPP_ACCESS_TOKEN: 'fuzz',
  });
  const logger = createLogger(process.env.TEST_LOG ?? 'silent');
  orchestration = await startOrchestration(database.url, database.db, logger, { worker: false, sendJobs: { chunkSize: 100, defaultRatePerSecond: null, checkEverySeconds: 1 } });
  const app = await buildApp({
    config, db: database.db, logger, scheduler: orchestration.scheduler,
    onRoute: (r: RouteOptions) => {
      // Read later: the compat plugin's own onRoute hook sets the root copies' constraint after this one runs.
      const layer = () => (r.constraints as { compatLayer?: string } | undefined)?.compatLayer ?? r.url.match(/^\/compat\/([a-z]+)\//)?.[1];
      for (const method of [r.method].flat()) routes.push({ method, url: r.url, schema: (r.schema ?? {}) as Schema, get layer() { return layer(); } });
    },
  });
  baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  close = () => app.close();

  const { tenantId } = await tenantWithToken(database.db);
  token = await issueToken(TEST_JWT_SECRET, { tenantId, scopes: Object.keys(SCOPES) as Scope[], ttl: '1h' });
  const { listId, members } = await seedList(database.db, tenantId, { count: 2, domain: 'fuzz.test' });
  const job = await post('/api/send-jobs', { list_id: listId, subject: 'Hi', body_text: 'x', scheduled_at: new Date(Date.now() + 3_600_000).toISOString() });
  const messageId = '01890000-0000-7000-8000-00000000f022';
  await database.db.query(`INSERT INTO messages (id, tenant_id, recipient, status, provider_message_id) VALUES ($1, $2, $3, 'sent', 'ses-fuzz')`, [messageId, tenantId, members[0].email]);
  await post('/v1/suppressions', { email: members[1].email, reason: 'manual' });
  const client = await createWebhookClient(database.db, tenantId);
  const tracking = config.tracking;
  const tokenOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);

  const emails = fc.constantFrom(members[0].email, members[1].email, 'nobody@fuzz.test');
  known.set('string:id', fc.constantFrom(messageId, job.send_job_id, listId, 'ses-fuzz'));
  known.set('string:email', emails);
  known.set('string:list_id', fc.constant(listId));
  known.set('string:tenant_id', fc.constant(tenantId));
  known.set('string:message_id', fc.constantFrom(messageId, 'ses-fuzz'));
  known.set('string:from', fc.constant('news@acme.test'));
  known.set('string:token', fc.constant(CHANNEL_SECRET));
  known.set('string:senderId', fc.constant('ACME'));
  await database.db.query(`INSERT INTO sms_sender_ids (id, tenant_id, sender_id, status) VALUES ('01890000-0000-7000-8000-0000000005a5', $1, 'ACME', 'approved')`, [tenantId]);
  known.set('string:to', fc.constantFrom('+33612345678', 'ACME'));
  known.set('object:template', fc.record({ subject: fc.constant('Hi {{ email }}'), html: fc.constant('<p>{{ email }}</p>'), text: fc.constant('x') }, { requiredKeys: ['html'] }));
  known.set('string:*', fc.constantFrom(
    tokenOf(openPixelUrl(tracking, messageId)),
    tokenOf(clickUrl(tracking, messageId, 'https://acme.example/日本')),
    tokenOf(unsubscribeUrl(tracking, { tenantId, listId, subscriberId: members[0].id })),
  ));
  signers = [
    { matches: (url) => url.startsWith('/webhooks/subscriptions') || url.startsWith('/webhooks/lists/'), headers: (raw) => ({ ...signWebhook({ clientId: client.clientId, secret: client.secret, body: raw }) }) },
    { matches: (url) => url === '/v1/webhooks/sms/provider', headers: (raw) => ({ 'x-signature': `sha256=${createHmac('sha256', CHANNEL_SECRET).update(raw).digest('hex')}` }) },
    { matches: (url) => url === '/v1/webhooks/whatsapp', headers: (raw) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', CHANNEL_SECRET).update(raw).digest('hex')}` }) },
    { matches: (url) => url === '/webhooks/ses', headers: (raw) => ({ 'x-amz-sns-signature': createHmac('sha256', SES_SECRET).update(raw).digest('hex') }) },
  ];
}, 60_000);
afterAll(async () => {
  await close?.();
  await orchestration?.stop();
  await database?.drop();
});

async function post(path: string, body: unknown) {
  const res = await fetch(`${baseUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  if (res.status >= 300) throw new Error(`seeding ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

// ---- hostile values -------------------------------------------------------------------------

const HOSTILE_TEXT = [
  '\u0000', 'a\u0000b', '\ud800', 'x\udc00y', '\udbff\udbff', 'a\x0bb', '\x1b[2J', '\x7f', 'a\r\nBcc: x@evil.test', '\n', '\t',
  '%ff', '%00', '%', '2020-99-99 99:99:99Z', '2030-06-30T23:59:60Z', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59Z',
  '+275760-09-13T00:00:00.000Z', '-1', '1e309', 'NaN', '', ' ', '../../etc/passwd', '日本', '😀', 'café', '{{ x }}', '{% for i in (1..99999999) %}x{% endfor %}',
  "'; DROP TABLE messages; --", '__proto__', 'constructor',
];
const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_TEXT) },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom('\u0000', '\ud800', '\udc00', '\x0b', '\x1b', '\x7f', '\r', '\n', 'é', '日', '😀', 'a', '%', '"', '\\'), maxLength: 30 }) },
  { weight: 1, arbitrary: fc.constantFrom(300, 5_000, 200_000).map((n) => 'a'.repeat(n)) },
);
const hostileNumber = fc.oneof(
  fc.constantFrom(0, -0, -1, 1e-300, 1e300, -1e300, 0.5, 2 ** 31, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, Number.MIN_VALUE),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const wrongType = fc.constantFrom<unknown>(null, true, [], {}, [1, 'a'], { a: { b: 1 } }, '1', 1);
const hostile = fc.oneof({ weight: 3, arbitrary: hostileString }, { weight: 1, arbitrary: hostileNumber }, { weight: 1, arbitrary: wrongType });

// ---- generators from a route's own schemas -----------------------------------------------------

class NoGenerator extends Error {}

const alnum = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_.'), minLength: 1, maxLength: 16 });

/** A value the schema accepts (most of the time), for the property `name`. */
function valid(schema: Schema, name: string, where: string, h = 1): fc.Arbitrary<unknown> {
  if (schema.$ref) {
    throw new NoGenerator(`${where}: $ref ${schema.$ref}`);
  }
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const type = [schema.type ?? (schema.properties ? 'object' : undefined)].flat().find((t) => t !== 'null');
  const mine = known.get(`${type}:${name}`);
  if (mine) return mine;
  switch (type) {
    case 'string':
      switch (schema.format) {
        case 'uuid': return fc.uuid();
        case 'email': return fc.constantFrom('a@fuzz.test', 'b@example.com');
        case 'date-time': return fc.integer({ min: -10, max: 10 }).map((d) => new Date(Date.now() + d * 86_400_000).toISOString());
        case 'uri': return fc.constantFrom('https://acme.example/u', 'https://acme.example/日本?q=café');
        case undefined: return alnum;
        default: throw new NoGenerator(`${where}: string format ${schema.format}`);
      }
    case 'integer':
      return fc.integer({ min: Math.max(schema.minimum ?? 0, -1000), max: Math.min(schema.maximum ?? 1000, 1000) });
    case 'number':
      return fc.double({ min: Math.max(schema.minimum ?? 0.01, -1000), max: Math.min(schema.maximum ?? 1000, 1000), noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(leaf(schema.items ?? {}, name, `${where}[]`, h), { minLength: schema.minItems ?? 0, maxLength: Math.min(schema.maxItems ?? 3, 3) });
    case 'object': {
      const properties = Object.entries((schema.properties ?? {}) as Record<string, Schema>);
      const record = fc.record(Object.fromEntries(properties.map(([k, s]) => [k, leaf(s, k, `${where}.${k}`, h)])), { requiredKeys: schema.required ?? [] });
      // Free-form objects (preferences, tags) also get hostile keys.
      return schema.additionalProperties === false || h === 0 ? record : fc.tuple(record, fc.dictionary(hostileString, hostile, { maxKeys: 2 })).map(([r, extra]) => ({ ...extra, ...r }));
    }
    case undefined:
      if (Object.keys(schema).every((k) => ['description', 'additionalProperties'].includes(k))) return fc.anything();
      throw new NoGenerator(`${where}: no type in ${JSON.stringify(schema).slice(0, 200)}`);
    default:
      throw new NoGenerator(`${where}: type ${type}`);
  }
}

/** Mostly the valid value, sometimes (weight h in 5) a hostile one, so that requests reach past the first check. */
const leaf = (schema: Schema, name: string, where: string, h: number) =>
  h === 0 ? valid(schema, name, where, h) : fc.oneof({ weight: 5 - h, arbitrary: valid(schema, name, where, h) }, { weight: h, arbitrary: hostile });

/** A string as it goes into a URL: percent-encoded (lone surrogates as the bytes a careless client sends), or one of the raw hostile escapes. */
function urlPart(value: unknown): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value) ?? '';
  try {
    return encodeURIComponent(s);
  } catch {
    return [...s].map((c) => (/[\ud800-\udfff]/.test(c) ? `%${c.charCodeAt(0).toString(16)}` : encodeURIComponent(c))).join('');
  }
}
const rawUrlPart = fc.constantFrom('%ff', '%00', '%ED%A0%80', '%', '%zz', '..%2f..', '%0d%0a', 'a'.repeat(300));

interface FuzzRequest {
  method: string;
  path: string;
  body?: string;
  contentType?: string;
}

/**
 * Everything a request to this route can carry, from its URL and schemas; throws NoGenerator when
 * a part cannot be generated. One request in five is made of valid values only, so that the
 * routes' success paths (and their writes) run too.
 */
function generatorFor(route: Route): fc.Arbitrary<FuzzRequest> {
  return fc.oneof({ weight: 1, arbitrary: requests(route, 0) }, { weight: 4, arbitrary: requests(route, 1) });
}

function requests(route: Route, h: number): fc.Arbitrary<FuzzRequest> {
  const where = `${route.method} ${route.url}`;
  const names = [...route.url.matchAll(/:([A-Za-z0-9_]+)|\*/g)].map((m) => m[1] ?? '*');
  const paramSchemas = (route.schema.params?.properties ?? {}) as Record<string, Schema>;
  const params = names.map((n) =>
    fc.oneof(
      { weight: 4, arbitrary: leaf(paramSchemas[n] ?? { type: 'string' }, n, `${where} path ${n}`, h).map(urlPart) },
      { weight: h, arbitrary: rawUrlPart },
    ),
  );
  const queryProps = Object.entries((route.schema.querystring?.properties ?? {}) as Record<string, Schema>);
  const query = fc.array(
    fc.oneof(
      ...queryProps.map(([k, s]) => fc.tuple(fc.constant(k), fc.oneof({ weight: 4, arbitrary: leaf(s, k, `${where} query ${k}`, h).map(urlPart) }, { weight: h, arbitrary: rawUrlPart }))),
      fc.tuple(alnum, h ? rawUrlPart : alnum),
    ),
    { maxLength: queryProps.length + 1 },
  );
  const hasBody = !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(route.method);
  const bodySchema = route.schema.body as Schema | undefined;
  const body: fc.Arbitrary<{ body?: string; contentType?: string }> = !hasBody
    ? fc.constant({})
    : fc.oneof(
        { weight: 8, arbitrary: (bodySchema ? valid(bodySchema, '', `${where} body`, h) : fc.anything()).map((v) => ({ body: JSON.stringify(v) ?? 'null', contentType: 'application/json' })) },
        { weight: h, arbitrary: fc.oneof(fc.json(), fc.string(), fc.constant('')).map((raw) => ({ body: raw, contentType: 'application/json' })) },
        { weight: h, arbitrary: fc.constantFrom<{ body?: string; contentType?: string }>({}, { body: 'a=1', contentType: 'application/x-www-form-urlencoded' }, { body: '\u0000', contentType: 'text/plain' }) },
      );
  return fc.tuple(fc.tuple(...params), query, body).map(([values, pairs, b]) => {
    let i = 0;
    const path = route.url.replace(/:([A-Za-z0-9_]+)|\*/g, () => values[i++]);
    const qs = pairs.map(([k, v]) => `${k}=${v}`).join('&');
    return { method: route.method, path: qs ? `${path}?${qs}` : path, ...b };
  });
}

/**
 * Our error body, or on a compatibility layer's paths (src/compat) that provider's, whose `error`
 * is not a string: there `request_id` stays beside it (and in the X-Request-Id header).
 */
const COMPAT_ERRORS: Array<[RegExp, (id: string) => object]> = [
  [/^(\/compat\/usesend)?\/api\/v1\//, (id) => ({ error: { code: expect.any(String), message: expect.any(String) }, request_id: id })],
  [/^(\/compat\/sendgrid)?\/v3\/mail\//, (id) => ({ errors: [expect.objectContaining({ message: expect.any(String) })], request_id: id })],
];
const BEFORE_ROUTING = new Set(['invalid_url', 'uri_too_long', 'headers_too_large', 'bad_request']);
function errorShape(path: string, text: string, requestId: string): object {
  // A URL or request line refused before any route (or layer) is found answers our own body.
  const native = BEFORE_ROUTING.has(JSON.parse(text).error);
  const compat = native ? undefined : COMPAT_ERRORS.find(([prefix]) => prefix.test(path));
  return compat ? compat[1](requestId) : { error: expect.any(String), message: expect.any(String), request_id: requestId };
}

// ---- the property -----------------------------------------------------------------------------

/** Row counts of every table, in one statement. Rate-limit counters and webhook nonces are bookkeeping, not data: an authenticated request spends them whatever its body says. */
let countSql: string | undefined;
async function rowCounts(): Promise<Record<string, number>> {
  if (!countSql) {
    const { rows } = await database.db.query<{ t: string }>(
      `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND tablename NOT IN ('api_rate_counters', 'webhook_nonces') ORDER BY 1`,
    );
    countSql = rows.map((r) => `SELECT '${r.t}' AS t, count(*)::int AS n FROM ${r.t}`).join(' UNION ALL ');
  }
  const { rows } = await database.db.query(countSql);
  return Object.fromEntries(rows.map((c) => [c.t, c.n]));
}

async function send(req: FuzzRequest, route: Route) {
  // Postmark's routes take the key in its own header, Brevo's in `api-key` (src/compat).
  const headers: Record<string, string> = route.layer === 'postmark' ? { 'x-postmark-server-token': token } : { authorization: `Bearer ${token}` };
  headers['api-key'] = token;
  if (req.contentType) headers['content-type'] = req.contentType;
  const signer = req.body !== undefined ? signers.find((s) => s.matches(req.path)) : undefined;
  if (signer) Object.assign(headers, signer.headers(req.body!));
  const res = await fetch(`${baseUrl}${req.path}`, { method: req.method, headers, body: req.body, redirect: 'manual' });
  return { status: res.status, type: res.headers.get('content-type') ?? '', requestId: res.headers.get('x-request-id'), text: await res.text() };
}

describe('every route, hostile input', () => {
  it('collects the routes from the app, and has a generator for each', () => {
    const urls = routes.map((r) => `${r.method} ${r.url}`);
    // A few we know must be there: the collection really is the app's.
    expect(urls).toEqual(expect.arrayContaining(['POST /v1/send-jobs', 'POST /api/send-jobs', 'GET /v1/messages/:id', 'POST /webhooks/ses', 'GET /t/c/*']));
    const missing: string[] = [];
    for (const route of routes) {
      try {
        generatorFor(route);
      } catch (err) {
        if (!(err instanceof NoGenerator)) throw err;
        missing.push(err.message);
      }
    }
    expect(missing, 'routes whose inputs this fuzz cannot generate: extend valid()').toEqual([]);
  });

  it('never answers 5xx, answers every error with our body, and writes nothing on a 4xx', async () => {
    const statuses = new Map<string, Set<number>>();
    // HEAD routes are Fastify's copies of the GET ones (same handler, no body to check).
    for (const route of routes.filter((r) => r.method !== 'HEAD')) {
      const where = `${route.method} ${route.url}`;
      const seen = new Set<number>();
      statuses.set(where, seen);
      await fc.assert(
        fc.asyncProperty(generatorFor(route), async (req) => {
          const before = await rowCounts();
          const res = await send(req, route);
          seen.add(res.status);
          const shown = `${req.method} ${req.path.slice(0, 300)} ${String(req.body).slice(0, 300)} -> ${res.status} ${res.text.slice(0, 300)}`;
          expect(res.status < 500, shown).toBe(true);
          if (res.status < 400) return;
          expect(res.requestId, shown).toBeTruthy();
          if (res.type.startsWith('text/html')) {
            // The recipient-facing unsubscribe page: a page for a person, which still names the request.
            expect(res.text, shown).toContain(res.requestId);
          } else if (route.layer && JSON.parse(res.text).error === undefined && !COMPAT_ERRORS.some(([prefix]) => prefix.test(req.path))) {
            // A compat layer answers its provider's error shape, with request_id beside it.
            const body = JSON.parse(res.text);
            expect(body, shown).toMatchObject({ request_id: res.requestId });
            expect(typeof (body.message ?? body.Message), shown).toBe('string');
          } else {
            expect(JSON.parse(res.text), shown).toMatchObject(errorShape(req.path, res.text, res.requestId!));
          }
          expect(await rowCounts(), `a ${res.status} wrote rows: ${shown}`).toEqual(before);
        }),
        { numRuns: RUNS_PER_ROUTE },
      );
    }
    // The fuzz reached past validation somewhere: some route answered 2xx, some 404 and some 422.
    if (process.env.FUZZ_REPORT) console.log([...statuses].map(([r, s]) => `${r}: ${[...s].sort().join(' ')}`).join('\n'));
    const all = new Set([...statuses.values()].flatMap((s) => [...s]));
    expect([...all]).toEqual(expect.arrayContaining([200, 404, 422]));
  }, 600_000);
});
