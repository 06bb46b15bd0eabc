import type { FastifyInstance } from 'fastify';
import { createChannelTransports } from './channels/index.ts';
import type { ChannelTransports } from './channels/types.ts';
import { ConfigError, type Config } from './config.ts';
import { openDatabase, type OpenDatabase } from './db/open.ts';
import { Dispatcher } from './dispatch/dispatcher.ts';
import { DomainSigner } from './domains/signing.ts';
import { buildApp } from './http/app.ts';
import { createLogger, type Logger } from './log.ts';
import { JobRenderer } from './jobs/render.ts';
import { startUndeliverableApplier } from './observability/undeliverable.ts';
import { startOrchestration, type Orchestration } from './orchestration/boss.ts';
import { deriveSecretsKey, loadLocalSecrets } from './secrets.ts';
import { deriveTrackingSecret } from './tracking/links.ts';
import { createTransport } from './transports/index.ts';
import { startWebhookDelivery } from './webhooks/worker.ts';
import type { Transport } from './transports/transport.ts';
import { Metrics } from './metrics/metrics.ts';
import { startMetricsServer } from './metrics/server.ts';
import type { Server } from 'node:http';

/** Embedded mode needs no configuration: a JWT secret is generated once and kept in the data folder. */
export async function withEmbeddedDefaults(config: Config): Promise<Config> {
  const needsJwt = !config.jwt.secret && !config.jwt.jwksUrl;
  if (config.databaseUrl && !config.tracking.secret) {
    throw new ConfigError('With DATABASE_URL and no JWT_SECRET, configure TRACKING_SECRET (at least 32 characters) to sign tracking and unsubscribe links');
  }
  if (config.databaseUrl && !config.secretsKey) {
    throw new ConfigError('With DATABASE_URL, configure SECRETS_KEY (32 bytes, base64) to encrypt DKIM keys at rest');
  }
  if (config.databaseUrl || (!needsJwt && config.tracking.secret && config.secretsKey)) return config;
  const { jwtSecret, secretsKey } = await loadLocalSecrets(config.dataDir);
  // The tracking key follows the generated secret, so links in sent mail survive restarts.
  const tracking = { ...config.tracking, secret: config.tracking.secret || deriveTrackingSecret(jwtSecret) };
  const atRest = config.secretsKey ?? (secretsKey ? Buffer.from(secretsKey, 'base64') : deriveSecretsKey(jwtSecret));
  return { ...config, jwt: needsJwt ? { ...config.jwt, secret: jwtSecret } : config.jwt, tracking, secretsKey: atRest };
}

export interface Engine {
  database: OpenDatabase;
  app?: FastifyInstance;
  dispatcher?: Dispatcher;
  logger: Logger;
  /** Graceful: stop taking requests and claims, finish in-flight sends, close everything. */
  stop(): Promise<void>;
}

export async function startEngine(input: Config, roles: { api: boolean; worker: boolean }, logger: Logger = createLogger(input.logLevel)): Promise<Engine> {
  const config = await withEmbeddedDefaults(input);
  const database = await openDatabase(config, { logger });
  let app: FastifyInstance | undefined;
  let dispatcher: Dispatcher | undefined;
  let transport: Transport | undefined;
  let channels: ChannelTransports = {};
  let undeliverableApplier: { stop(): Promise<void> } | undefined;
  let orchestration: Orchestration | undefined;
  let webhooks: { stop(): Promise<void> } | undefined;
  let renderer: JobRenderer | undefined;
  let metricsServer: Server | undefined;
  const metrics = new Metrics(database.db);

  /**
   * The order matters: requests and claims stop first while in-flight sends finish and are recorded
   * (the pool is still open), then orchestration, then the pool, and the embedded server last.
   */
  async function stop() {
    const failed: string[] = [];
    // A step that fails is logged and the next ones still run: the pool and the server always close.
    const step = async (name: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        failed.push(name);
        logger.error({ step: name, err: (err as Error).message }, 'shutdown step failed');
      }
    };
    await Promise.all([
      step('http', async () => app?.close()),
      step('dispatcher', async () => dispatcher?.stop()),
      step('metrics', () => new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()))),
    ]);
    await step('undeliverable applier', async () => undeliverableApplier?.stop());
    await step('webhook delivery', async () => webhooks?.stop());
    await step('orchestration', async () => orchestration?.stop());
    await step('transport', async () => transport?.close());
    await step('sms and whatsapp transports', () => Promise.all(Object.values(channels).map((c) => c.close())));
    await step('database', () => database.close());
    if (failed.length) throw new Error(`shutdown steps failed: ${failed.join(', ')}`);
  }

  try {
    orchestration = await startOrchestration(database.url, database.db, logger, {
      worker: roles.worker,
      sendJobs: { chunkSize: config.jobs.fanoutChunkSize, defaultRatePerSecond: config.jobs.defaultRatePerSecond ?? null, checkEverySeconds: 2 },
      domains: { settings: config.domains, secretsKey: config.secretsKey },
    });
    if (roles.worker) {
      transport = metrics.instrumentTransport(createTransport(config));
      const signer = config.secretsKey ? new DomainSigner(database.db, config.secretsKey) : undefined;
      renderer = new JobRenderer(database.db, config.tracking, { threads: config.jobs.renderThreads });
      channels = createChannelTransports(config, database.db, logger);
      dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, logger, renderer, signer, channels);
      await dispatcher.start();
      undeliverableApplier = startUndeliverableApplier(database.db, logger);
      webhooks = await startWebhookDelivery(database.db, database.url, config, logger);
    }
    if (roles.api) {
      // One pool of render threads per process: `start` shares the dispatcher's with the API.
      app = await buildApp({ config, db: database.db, logger, scheduler: orchestration.scheduler, renderer, metrics });
      await app.listen({ port: config.port, host: config.host });
    }
    if (config.metrics.port) metricsServer = await startMetricsServer(metrics, { port: config.metrics.port, host: config.metrics.host, token: config.metrics.token });
  } catch (err) {
    // A half-started engine still stops what it started (the embedded server included).
    await stop().catch((stopErr) => logger.error({ err: (stopErr as Error).message }, 'stopping after a failed start failed'));
    throw err;
  }
  logger.info(
    {
      api: roles.api,
      worker: roles.worker,
      embedded_db: database.embedded ? { port: database.embedded.port, owner: database.embedded.owner } : false,
      transport: transport?.name,
      dispatch_concurrency: roles.worker ? config.dispatch.concurrency : undefined,
      port: roles.api ? config.port : undefined,
    },
    'send-engine started',
  );

  return {
    database,
    app,
    dispatcher,
    logger,
    async stop() {
      await stop();
      logger.info('send-engine stopped');
    },
  };
}
