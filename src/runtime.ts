import type { FastifyInstance } from 'fastify';
import { ConfigError, type Config } from './config.ts';
import { openDatabase, type OpenDatabase } from './db/open.ts';
import { Dispatcher } from './dispatch/dispatcher.ts';
import { buildApp } from './http/app.ts';
import { createLogger, type Logger } from './log.ts';
import { JobRenderer } from './jobs/render.ts';
import { startUndeliverableApplier } from './observability/undeliverable.ts';
import { startOrchestration, type Orchestration } from './orchestration/boss.ts';
import { loadLocalSecrets } from './secrets.ts';
import { deriveTrackingSecret } from './tracking/links.ts';
import { createTransport } from './transports/index.ts';
import { startWebhookDelivery } from './webhooks/worker.ts';
import type { Transport } from './transports/transport.ts';

/** Embedded mode needs no configuration: a JWT secret is generated once and kept in the data folder. */
export async function withEmbeddedDefaults(config: Config): Promise<Config> {
  const needsJwt = !config.jwt.secret && !config.jwt.jwksUrl;
  if (config.databaseUrl && !config.tracking.secret) {
    throw new ConfigError('With DATABASE_URL and no JWT_SECRET, configure TRACKING_SECRET (at least 32 characters) to sign tracking and unsubscribe links');
  }
  if (config.databaseUrl || (!needsJwt && config.tracking.secret)) return config;
  const { jwtSecret } = await loadLocalSecrets(config.dataDir);
  // The tracking key follows the generated secret, so links in sent mail survive restarts.
  const tracking = { ...config.tracking, secret: config.tracking.secret || deriveTrackingSecret(jwtSecret) };
  return { ...config, jwt: needsJwt ? { ...config.jwt, secret: jwtSecret } : config.jwt, tracking };
}

export interface Engine {
  database: OpenDatabase;
  app?: FastifyInstance;
  dispatcher?: Dispatcher;
  logger: Logger;
  /** Graceful: stop taking requests and claims, finish in-flight sends, close everything. */
  stop(): Promise<void>;
}

export async function startEngine(input: Config, roles: { api: boolean; worker: boolean }): Promise<Engine> {
  const config = await withEmbeddedDefaults(input);
  const logger = createLogger(config.logLevel);
  const database = await openDatabase(config);
  let app: FastifyInstance | undefined;
  let dispatcher: Dispatcher | undefined;
  let transport: Transport | undefined;
  let undeliverableApplier: { stop(): Promise<void> } | undefined;
  let webhooks: { stop(): Promise<void> } | undefined;
  const orchestration: Orchestration = await startOrchestration(database.url, database.db, logger, {
    worker: roles.worker,
    sendJobs: { chunkSize: config.jobs.fanoutChunkSize, defaultRatePerSecond: config.jobs.defaultRatePerSecond ?? null, checkEverySeconds: 2 },
  });

  if (roles.worker) {
    transport = createTransport(config);
    dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, logger, new JobRenderer(database.db, config.tracking));
    await dispatcher.start();
    undeliverableApplier = startUndeliverableApplier(database.db, logger);
    webhooks = await startWebhookDelivery(database.db, database.url, config, logger);
  }
  if (roles.api) {
    app = await buildApp({ config, db: database.db, logger, scheduler: orchestration.scheduler });
    await app.listen({ port: config.port, host: config.host });
  }
  logger.info(
    { api: roles.api, worker: roles.worker, embedded_db: database.embedded, transport: transport?.name, port: roles.api ? config.port : undefined },
    'send-engine started',
  );

  return {
    database,
    app,
    dispatcher,
    logger,
    async stop() {
      await app?.close();
      await dispatcher?.stop();
      await undeliverableApplier?.stop();
      await webhooks?.stop();
      await orchestration.stop();
      await transport?.close();
      await database.close();
      logger.info('send-engine stopped');
    },
  };
}
