import { Dispatcher } from '../../src/dispatch/dispatcher.ts';
import { DomainSigner } from '../../src/domains/signing.ts';
import type { Db } from '../../src/db/pool.ts';
import { buildApp } from '../../src/http/app.ts';
import { JobRenderer } from '../../src/jobs/render.ts';
import { createLogger } from '../../src/log.ts';
import { startOrchestration, type Orchestration } from '../../src/orchestration/boss.ts';
import { smtpTransport } from '../../src/transports/smtp.ts';
import { testConfig, type TestApp } from './app.ts';

export interface TestEngine extends TestApp {
  dispatcher?: Dispatcher;
  orchestration: Orchestration;
}

/**
 * The whole engine in this process (API, pg-boss orchestration and, given an SMTP URL, the
 * dispatcher) against a test database, with short timings so tests run quickly.
 */
export async function startTestEngine(db: Db, databaseUrl: string, options: { smtpUrl?: string; env?: Record<string, string> } = {}): Promise<TestEngine> {
  const config = testConfig(databaseUrl, { DISPATCH_POLL_MS: '100', SEND_RETRY_BASE_MS: '50', DEFAULT_FROM_ADDRESS: 'news@acme.test', ...options.env });
  const logger = createLogger('silent');
  const worker = Boolean(options.smtpUrl);
  const orchestration = await startOrchestration(databaseUrl, db, logger, {
    worker,
    sendJobs: { chunkSize: config.jobs.fanoutChunkSize, defaultRatePerSecond: config.jobs.defaultRatePerSecond ?? null, checkEverySeconds: 1 },
  });
  let dispatcher: Dispatcher | undefined;
  const transport = options.smtpUrl ? smtpTransport({ url: options.smtpUrl, maxConnections: 4 }) : undefined;
  if (transport) {
    const signer = config.secretsKey ? new DomainSigner(db, config.secretsKey) : undefined;
    dispatcher = new Dispatcher(db, databaseUrl, transport, config.dispatch, logger, new JobRenderer(db, config.tracking), signer);
    await dispatcher.start();
  }
  const app = await buildApp({ config, db, logger, scheduler: orchestration.scheduler });
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    baseUrl,
    config,
    dispatcher,
    orchestration,
    async close() {
      await app.close();
      await dispatcher?.stop();
      await orchestration.stop();
      await transport?.close();
    },
  };
}
