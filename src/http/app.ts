import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import type { Db } from '../db/pool.ts';
import { newId } from '../ids.ts';
import type { Logger } from '../log.ts';
import type { SnsFetcher } from '../events/sns.ts';
import { errorHandler } from './errors.ts';
import { authPlugin } from './plugins/auth.ts';
import { accountRoutes } from './routes/account.ts';
import { healthRoutes } from './routes/health.ts';
import { observabilityRoutes } from './routes/observability.ts';
import { reportRoutes } from './routes/reports.ts';
import { proxySendRoutes } from './routes/proxy-send-jobs.ts';
import { sendJobRoutes } from './routes/send-jobs.ts';
import type { JobScheduler } from '../jobs/runner.ts';
import { listRoutes } from './routes/lists.ts';
import { sesWebhookRoutes } from './routes/webhooks-ses.ts';
import { trackingRoutes } from './routes/tracking.ts';
import { undeliverableRoutes } from './routes/undeliverable.ts';
import { webhookEndpointRoutes } from './routes/webhook-endpoints.ts';
import { ErrorResponse } from './schemas.ts';

export interface AppDeps {
  config: Config;
  db: Db;
  logger: Logger;
  /** GETs SNS certificates and SubscribeURLs; tests inject one so nothing reaches the network. */
  snsFetcher?: SnsFetcher;
  /** Schedules list send jobs (pg-boss); absent in apps that do not serve /api/send-jobs. */
  scheduler?: JobScheduler;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function makeAjv(coerceTypes: boolean) {
  // Bodies are validated as sent (no coercion, nothing silently removed); query strings are coerced.
  const ajv = new Ajv({ coerceTypes, removeAdditional: false, useDefaults: true, allErrors: false, strict: false });
  addFormats.default(ajv);
  ajv.addSchema(ErrorResponse);
  return ajv;
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
    trustProxy: true,
  });
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

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Send Engine API', version: '0.1.0', description: 'Send Engine external API and webhooks.' },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          webhookSignature: { type: 'apiKey', in: 'header', name: 'X-Signature' },
          webhookTimestamp: { type: 'apiKey', in: 'header', name: 'X-Timestamp' },
          webhookNonce: { type: 'apiKey', in: 'header', name: 'X-Nonce' },
          webhookClientId: { type: 'apiKey', in: 'header', name: 'X-Client-Id' },
          sesSignature: { type: 'apiKey', in: 'header', name: 'X-Amz-Sns-Signature' },
        },
      },
    },
  });
  await app.register(authPlugin, { jwt: deps.config.jwt, db: deps.db, rateLimit: deps.config.rateLimit });
  await app.register(healthRoutes, deps);
  await app.register(observabilityRoutes, deps);
  await app.register(accountRoutes, deps);
  await app.register(reportRoutes, deps);
  await app.register(proxySendRoutes, deps);
  await app.register(sendJobRoutes, deps);
  await app.register(listRoutes, deps);
  await app.register(sesWebhookRoutes, deps);
  await app.register(trackingRoutes, deps);
  await app.register(undeliverableRoutes, deps);
  await app.register(webhookEndpointRoutes, deps);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
