import PgBoss from 'pg-boss';
import { withSchemaLock } from '../db/migrate.ts';
import type { Db } from '../db/pool.ts';
import { retryTransient } from '../db/transient.ts';
import { checkDueDomains, type DomainContext } from '../domains/domains.ts';
import { dnsChecker } from '../domains/dns-check.ts';
import { bossScheduler, createSendJobQueues, registerSendJobWorkers, type JobScheduler, type RunnerOptions } from '../jobs/runner.ts';
import type { Logger } from '../log.ts';
import { purgeExpiredIdempotencyKeys } from '../sending/idempotency.ts';

export interface Orchestration {
  scheduler: JobScheduler;
  stop(): Promise<void>;
}

/**
 * Job-level orchestration on pg-boss (its own `pgboss` schema in the same database): send jobs'
 * start, window end and completion, and recurring maintenance. Per-recipient work never goes
 * here (that is the messages table's job). API processes only enqueue; workers also work.
 */
export async function startOrchestration(
  databaseUrl: string,
  db: Db,
  log: Logger,
  options: { worker: boolean; sendJobs: RunnerOptions; domains?: DomainContext },
): Promise<Orchestration> {
  const purge = 'maintenance.idempotency-purge';
  // pg-boss's schema and queue setup is DDL: processes starting at once deadlock on it, so it runs
  // under the schema lock, and a transient failure retries with a fresh instance.
  const boss = await retryTransient(
    'pg-boss start',
    () =>
      withSchemaLock(db, async () => {
        const boss = new PgBoss({
          connectionString: databaseUrl,
          max: 3,
          application_name: 'send-engine-boss',
          supervise: options.worker,
          schedule: options.worker,
        });
        let stopping = false;
        boss.on('stopped', () => (stopping = true));
        // Connections dropping while the database shuts down are expected, not errors.
        boss.on('error', (err) => (stopping ? log.debug : log.error).call(log, { err: err.message }, 'pg-boss error'));
        try {
          await boss.start();
          await createSendJobQueues(boss);
          if (options.worker) {
            await boss.createQueue(purge);
            // pg-boss keeps one schedule per name however many workers declare it, and runs it once per tick.
            await boss.schedule(purge, '17 * * * *');
            if (options.domains) {
              await boss.createQueue(DOMAIN_CHECK_QUEUE);
              await boss.schedule(DOMAIN_CHECK_QUEUE, '* * * * *');
            }
          }
          return boss;
        } catch (err) {
          await boss.stop({ graceful: false, wait: true, timeout: 1000 }).catch(() => {});
          throw err;
        }
      }),
    (info) => log.warn(info, 'orchestration setup failed; retrying'),
  );

  if (options.worker) {
    await registerSendJobWorkers(boss, db, options.sendJobs, log);
    await boss.work(purge, async () => {
      const deleted = await purgeExpiredIdempotencyKeys(db);
      log.info({ deleted }, 'expired idempotency keys purged');
    });
    if (options.domains) await scheduleDomainChecks(boss, db, log, options.domains);
  }
  return {
    scheduler: bossScheduler(boss),
    stop: () => boss.stop({ graceful: true, wait: true, timeout: 10_000 }),
  };
}

const DOMAIN_CHECK_QUEUE = 'domains.verify';

/** Sending domains' DNS re-checks: every minute, whatever is due (pending with backoff for 72 h, verified daily). */
async function scheduleDomainChecks(boss: PgBoss, db: Db, log: Logger, domains: DomainContext) {
  const checker = dnsChecker(domains.settings.dnsServers);
  await boss.work(DOMAIN_CHECK_QUEUE, async () => {
    const checked = await checkDueDomains(db, domains, checker);
    if (checked) log.info({ checked }, 'sending domains re-checked');
  });
}
