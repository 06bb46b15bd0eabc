import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import type { Config } from '../config.ts';
import type { Db } from '../db/pool.ts';
import { newId } from '../ids.ts';
import type { Logger } from '../log.ts';
import type { SnsFetcher } from '../events/sns.ts';
import { findUnstorableText, printable } from '../text.ts';
import { errorHandler, HttpError, PROBLEM_TYPE_BASE } from './errors.ts';
import { authPlugin } from './plugins/auth.ts';
import { accountRoutes } from './routes/account.ts';
import { domainRoutes } from './routes/domains.ts';
import { healthRoutes } from './routes/health.ts';
import { observabilityRoutes } from './routes/observability.ts';
import { reportRoutes } from './routes/reports.ts';
import { proxySendRoutes } from './routes/proxy-send-jobs.ts';
import { sendJobRoutes } from './routes/send-jobs.ts';
import type { JobScheduler } from '../jobs/runner.ts';
import { JobRenderer } from '../jobs/render.ts';
import { templateRoutes } from './routes/templates.ts';
import { listRoutes } from './routes/lists.ts';
import { contactRoutes } from './routes/contacts.ts';
import { campaignRoutes } from './routes/campaigns.ts';
import { adminRoutes } from './routes/admin.ts';
import { sesWebhookRoutes } from './routes/webhooks-ses.ts';
import { smsRoutes } from './routes/sms.ts';
import { whatsappRoutes } from './routes/whatsapp.ts';
import { trackingRoutes } from './routes/tracking.ts';
import { uiRoutes } from './routes/ui.ts';
import { undeliverableRoutes } from './routes/undeliverable.ts';
import { webhookEndpointRoutes } from './routes/webhook-endpoints.ts';
import { ErrorResponse } from './schemas.ts';
import { Metrics } from '../metrics/metrics.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { resendAndPostmarkRoutes } from '../compat/root.ts';
import { useSendRoutes } from '../compat/usesend/routes.ts';
import { sendGridRoutes } from '../compat/sendgrid/routes.ts';
import { brevoCompat } from '../compat/brevo/index.ts';

export interface AppDeps {
  config: Config;
  db: Db;
  logger: Logger;
  /** GETs SNS certificates and SubscribeURLs; tests inject one so nothing reaches the network. */
  snsFetcher?: SnsFetcher;
  /** Schedules list send jobs (pg-boss); absent in apps that do not serve /api/send-jobs. */
  scheduler?: JobScheduler;
  /** Render threads for stored templates (the worker's, in `start`); without, the app starts its own on first use. */
  renderer?: JobRenderer;
  /** Sees every route as it is registered (test/http/fuzz-routes.test.ts fuzzes them all). */
  onRoute?: (route: RouteOptions) => void;
  /** The process's Prometheus metrics (src/metrics); one is made when absent. */
  metrics?: Metrics;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * RFC 3339 as ajv-formats checks it, and also a time JavaScript and PostgreSQL can represent:
 * ajv-formats accepts a leap second (`23:59:60Z`) that `new Date()` turns into NaN.
 */
const rfc3339 = fullFormats['date-time'] as { validate: (s: string) => boolean; compare: (a: string, b: string) => number | undefined };
const dateTime = { ...rfc3339, validate: (s: string) => rfc3339.validate(s) && Number.isFinite(Date.parse(s)) };

function makeAjv(coerceTypes: boolean) {
  // Bodies are validated as sent (no coercion, nothing silently removed); query strings are coerced.
  const ajv = new Ajv({ coerceTypes, removeAdditional: false, useDefaults: true, allErrors: false, strict: false });
  addFormats.default(ajv);
  ajv.addFormat('date-time', { type: 'string', ...dateTime });
  ajv.addSchema(ErrorResponse);
  return ajv;
}

/**
 * Every string a request carries (path, query, body, and the keys of its objects) must be text
 * PostgreSQL can store: one check here, for every route, instead of a 500 from the first INSERT.
 */
async function refuseUnstorableText(request: FastifyRequest) {
  for (const [part, value] of [['path', request.params], ['query', request.query], ['body', request.body]] as const) {
    const at = findUnstorableText(value, part);
    if (at !== undefined) {
      throw new HttpError(422, 'invalid_text', `${printable(at)} must not contain NUL (\\u0000) or an unpaired UTF-16 surrogate`);
    }
  }
}

/** Errors raised before a route is found (`/v1/messages/%ff`, a path parameter over the router's limit). */
function frameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  reply.header('X-Request-Id', request.id);
  const code = err.code === 'FST_ERR_BAD_URL' ? 'invalid_url' : err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'uri_too_long' : 'bad_request';
  return errorHandler(new HttpError(err.statusCode && err.statusCode < 500 ? err.statusCode : 400, code, err.message), request, reply);
}

/**
 * Errors Node's HTTP parser raises before there is a request (a request line or headers over
 * 16 KB, a malformed request): the same error body, with a request id minted here.
 */
function clientError(err: NodeJS.ErrnoException, socket: Duplex) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'headers_too_large', 'the request line and headers exceed 16 KB']
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request_timeout', 'the request was not received in time']
    : [400, 'bad_request', 'the request is not valid HTTP'];
  const requestId = newId();
  const body = JSON.stringify({
    error: code, message, request_id: requestId,
    type: `${PROBLEM_TYPE_BASE}invalid_request`, title: STATUS_CODES[status], status, detail: message,
  });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Honour a caller's X-Request-Id when it is sane, so a request can be traced across systems.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : newId();
    },
    bodyLimit: 10 * 1024 * 1024,
    // Off unless configured: an X-Forwarded-For from anyone else would choose the client address
    // the auth-failure limit counts by.
    trustProxy: deps.config.trustProxy,
    frameworkErrors: frameworkError,
    clientErrorHandler: clientError,
  });
  if (deps.onRoute) app.addHook('onRoute', deps.onRoute);
  // A JSON body of zero bytes is no body (a bodiless POST from a client that always sets the type).
  const parseJson = app.getDefaultJsonParser('error', 'ignore');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) =>
    body === '' ? done(null, undefined) : parseJson(request, body as string, done),
  );
  const bodyAjv = makeAjv(false);
  const queryAjv = makeAjv(true);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : queryAjv).compile(schema));
  app.addSchema(ErrorResponse);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) =>
    errorHandler(Object.assign(new Error(`route ${request.method} ${request.url.split('?')[0]} not found`), { statusCode: 404 }), request, reply),
  );
  app.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-Id', request.id);
  });
  app.addHook('preHandler', refuseUnstorableText);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Send Engine API', version: '0.1.0', description: 'Send Engine external API and webhooks.' },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          adminToken: { type: 'http', scheme: 'bearer', description: 'the operator credential ADMIN_TOKEN (/v1/admin/*)' },
          webhookSignature: { type: 'apiKey', in: 'header', name: 'X-Signature' },
          webhookTimestamp: { type: 'apiKey', in: 'header', name: 'X-Timestamp' },
          webhookNonce: { type: 'apiKey', in: 'header', name: 'X-Nonce' },
          webhookClientId: { type: 'apiKey', in: 'header', name: 'X-Client-Id' },
          sesSignature: { type: 'apiKey', in: 'header', name: 'X-Amz-Sns-Signature' },
        },
      },
    },
  });
  const metrics = deps.metrics ?? new Metrics(deps.db);
  metrics.instrumentHttp(app);
  if (deps.config.metrics.token) await app.register(metricsRoutes, { metrics, token: deps.config.metrics.token });
  await app.register(authPlugin, { jwt: deps.config.jwt, db: deps.db, authCacheSeconds: deps.config.authCacheSeconds, rateLimit: deps.config.rateLimit });
  await app.register(healthRoutes, deps);
  await app.register(observabilityRoutes, deps);
  await app.register(accountRoutes, deps);
  await app.register(reportRoutes, deps);
  // Template renders (previews, template sends) run in render threads, never on this event loop.
  const renderer = deps.renderer ?? new JobRenderer(deps.db, deps.config.tracking, { threads: deps.config.jobs.renderThreads });
  if (!deps.renderer) app.addHook('onClose', () => renderer.close());
  await app.register(proxySendRoutes, { ...deps, renderer });
  await app.register(templateRoutes, { ...deps, renderer });
  await app.register(sendJobRoutes, deps);
  await app.register(listRoutes, deps);
  await app.register(contactRoutes, deps);
  await app.register(campaignRoutes, deps);
  await app.register(adminRoutes, deps);
  await app.register(sesWebhookRoutes, deps);
  await app.register(trackingRoutes, deps);
  await app.register(undeliverableRoutes, deps);
  await app.register(domainRoutes, deps);
  await app.register(webhookEndpointRoutes, deps);
  await app.register(smsRoutes, deps);
  await app.register(whatsappRoutes, deps);
  await app.register(uiRoutes, { ...deps, renderer });
  // Other providers' APIs (docs/compat/): each layer its own plugin with its own error shape.
  await app.register(resendAndPostmarkRoutes, { ...deps, renderer });
  // useSend's API (docs/compat/usesend.md): its SDK appends /api/v1 to the base URL it is given.
  for (const prefix of ['/api/v1', '/compat/usesend/api/v1']) await app.register(useSendRoutes, { ...deps, renderer, prefix });
  // SendGrid's POST /v3/mail/send only (docs/compat/sendgrid.md): Brevo's API shares the /v3 prefix.
  for (const prefix of ['/v3/mail', '/compat/sendgrid/v3/mail']) await app.register(sendGridRoutes, { ...deps, renderer, prefix });
  // Drop-in layers for other providers' SDKs (src/compat, docs/compat/).
  await app.register(brevoCompat, { ...deps, renderer });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
